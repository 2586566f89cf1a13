//! `POST /accounts/validate`: the accounts service's `validate` (token → claims, for services outside this app) as a Spin component.
spin_kit::endpoint!(POST "/accounts/validate" => accounts_service::validate);
