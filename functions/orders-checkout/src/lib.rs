//! `POST /orders/checkout/:order_id`: the order service's `checkout` endpoint as a Spin component.
spin_kit::endpoint!(POST "/orders/checkout/:order_id" => order_service::checkout);
