//! `POST /payment/refund/:saga_id`: the payment service's `refund` saga compensation (private route) as a Spin component.
spin_kit::endpoint!(POST "/payment/refund/:saga_id" => payment_service::refund);
