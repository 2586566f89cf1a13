//! `POST /payment/add_funds/:user_id/:amount`: the payment service's `add funds` endpoint as a Spin component.
spin_kit::endpoint!(POST "/payment/add_funds/:user_id/:amount" => payment_service::add_funds);
