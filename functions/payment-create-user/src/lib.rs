//! `POST /payment/create_user`: the payment service's `create user` endpoint as a Spin component.
spin_kit::endpoint!(POST "/payment/create_user" => payment_service::create_user);
