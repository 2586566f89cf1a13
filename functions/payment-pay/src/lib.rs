//! `POST /payment/pay/:user_id/:amount`: the payment service's `pay` endpoint as a Spin component.
spin_kit::endpoint!(POST "/payment/pay/:user_id/:amount" => payment_service::pay);
