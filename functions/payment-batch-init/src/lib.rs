//! `POST /payment/batch_init/:n/:starting_money`: the payment service's `batch init` endpoint as a Spin component.
spin_kit::endpoint!(POST "/payment/batch_init/:n/:starting_money" => payment_service::batch_init);
