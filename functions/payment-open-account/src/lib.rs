//! `POST /payment/open_account/:user_id`: the payment service's `open_account` (private route, reached by the accounts service's register) as a Spin component.
spin_kit::endpoint!(POST "/payment/open_account/:user_id" => payment_service::open_account);
