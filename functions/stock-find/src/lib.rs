//! `GET /stock/find/:item_id`: the stock service's `find` endpoint as a Spin component.
spin_kit::endpoint!(GET "/stock/find/:item_id" => stock_service::find);
