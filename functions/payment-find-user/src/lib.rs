//! `GET /payment/find_user/:user_id`: the payment service's `find user` endpoint as a Spin component.
spin_kit::endpoint!(GET "/payment/find_user/:user_id" => payment_service::find_user);
