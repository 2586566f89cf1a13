//! `POST /stock/item/create/:price`: the stock service's `create` endpoint as a Spin component.
spin_kit::endpoint!(POST "/stock/item/create/:price" => stock_service::create);
