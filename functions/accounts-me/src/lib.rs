//! `GET /accounts/me`: the accounts service's `me` as a Spin component.
spin_kit::endpoint!(GET "/accounts/me" => accounts_service::me);
