//! `POST /stock/batch_init/:n/:starting_stock/:item_price`: the stock service's `batch_init` endpoint as a Spin component.
spin_kit::endpoint!(POST "/stock/batch_init/:n/:starting_stock/:item_price" => stock_service::batch_init);
