//! `POST /accounts/register`: the accounts service's `register` as a Spin component.
spin_kit::endpoint!(POST "/accounts/register" => accounts_service::register);
