//! `POST /orders/addItem/:order_id/:item_id/:quantity`: the order service's `add_item` endpoint as a Spin component.
spin_kit::endpoint!(POST "/orders/addItem/:order_id/:item_id/:quantity" => order_service::add_item);
