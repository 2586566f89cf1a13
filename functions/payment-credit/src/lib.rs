//! `POST /payment/credit/:saga_id/:user_id/:amount`: the payment service's `credit` saga step of the rental saga (private route) as a Spin component.
spin_kit::endpoint!(POST "/payment/credit/:saga_id/:user_id/:amount" => payment_service::credit);
