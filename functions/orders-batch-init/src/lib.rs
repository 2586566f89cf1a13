//! `POST /orders/batch_init/:n/:n_items/:n_users/:item_price`: the order service's `batch_init` endpoint as a Spin component.
spin_kit::endpoint!(POST "/orders/batch_init/:n/:n_items/:n_users/:item_price" => order_service::batch_init);
