//! `POST /payment/reverse_credit/:saga_id`: the payment service's `reverse_credit` saga compensation of the rental saga (private route) as a Spin component.
spin_kit::endpoint!(POST "/payment/reverse_credit/:saga_id" => payment_service::reverse_credit);
