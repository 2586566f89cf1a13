//! `POST /orders/create/:user_id`: the order service's `create` endpoint as a Spin component.
spin_kit::endpoint!(POST "/orders/create/:user_id" => order_service::create);
