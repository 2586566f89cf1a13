//! `POST /accounts/login`: the accounts service's `login` (the only component holding the token signing key) as a Spin component.
spin_kit::endpoint!(POST "/accounts/login" => accounts_service::login);
