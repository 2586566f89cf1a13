//! `GET /orders/checkout/:order_id/status`: the order service's `checkout_status` endpoint as a Spin component.
spin_kit::endpoint!(GET "/orders/checkout/:order_id/status" => order_service::checkout_status);
