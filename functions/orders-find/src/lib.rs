//! `GET /orders/find/:order_id`: the order service's `find` endpoint as a Spin component.
spin_kit::endpoint!(GET "/orders/find/:order_id" => order_service::find);
