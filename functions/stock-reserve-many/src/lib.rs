//! `POST /stock/reserve_many`: the stock service's batched `reserve` saga step as a Spin component.
spin_kit::endpoint!(POST "/stock/reserve_many" => stock_service::reserve_many);
