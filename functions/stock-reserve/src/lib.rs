//! `POST /stock/reserve/:saga_id`: the stock service's `reserve` saga step as a Spin component.
spin_kit::endpoint!(POST "/stock/reserve/:saga_id" => stock_service::reserve);
