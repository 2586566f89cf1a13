//! `POST /stock/add/:item_id/:amount`: the stock service's `add` endpoint as a Spin component.
spin_kit::endpoint!(POST "/stock/add/:item_id/:amount" => stock_service::add);
