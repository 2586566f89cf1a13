//! `POST /stock/subtract/:item_id/:amount`: the stock service's `subtract` endpoint as a Spin component.
spin_kit::endpoint!(POST "/stock/subtract/:item_id/:amount" => stock_service::subtract);
