//! `POST /stock/release/:saga_id`: the stock service's `release` saga step as a Spin component.
spin_kit::endpoint!(POST "/stock/release/:saga_id" => stock_service::release);
