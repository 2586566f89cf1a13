//! The accounts service's domain: what a username and a password may be, how passwords are
//! stored (argon2id), when failed logins are limited, what a token says, and the SQL of the
//! `accounts` schema.
//!
//! No Spin types here: the component glue (`accounts-service`) performs the I/O this crate
//! describes, and this crate is unit-tested natively (its Lua scripts against the Redis of
//! `./dev test`).
//!
//! Data ownership: Postgres schema `accounts` (role `accounts_service`, migration 0010) is the
//! truth about users. Redis keys under `accounts:` hold the failed-login counters and the list of
//! revoked tokens (`auth_token::revocation_key`), which every component that checks tokens
//! reads.

pub mod credentials;
pub mod error;
pub mod login_limit;
pub mod password;
pub mod sql;
pub mod token;

pub use credentials::{Credentials, Registration};
pub use error::AccountsError;
pub use login_limit::LoginLimits;
