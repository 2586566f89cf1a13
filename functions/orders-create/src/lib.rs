//! `POST /orders/create/:user_id`: the order service's `create` endpoint as a Spin component.
spin_kit::endpoint!(POST, order_service::create);
