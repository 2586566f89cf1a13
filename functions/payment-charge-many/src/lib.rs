//! `POST /payment/charge_many`: the payment service's batched `charge` saga step as a Spin component.
spin_kit::endpoint!(POST "/payment/charge_many" => payment_service::charge_many);
