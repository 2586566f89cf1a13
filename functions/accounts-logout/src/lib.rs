//! `POST /accounts/logout`: the accounts service's `logout` as a Spin component.
spin_kit::endpoint!(POST "/accounts/logout" => accounts_service::logout);
