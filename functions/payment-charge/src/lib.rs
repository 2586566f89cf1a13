//! `POST /payment/charge/:saga_id/:user_id/:amount`: the payment service's `charge` saga step (private route) as a Spin component.
spin_kit::endpoint!(POST "/payment/charge/:saga_id/:user_id/:amount" => payment_service::charge);
