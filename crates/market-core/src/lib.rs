//! Spin-free building blocks shared by every service of the marketplace.
//!
//! Owns the one error type every endpoint answers with ([`ApiError`], mapped once to an HTTP
//! status and a JSON body), the rules of `Idempotency-Key` (with the SHA-256 that fingerprints a
//! request's body), Redis Lua scripts named by their SHA-1 ([`Script`], with a `const fn` SHA-1),
//! the parsing of path parameters, so that bad input is refused with a 4xx the same way
//! everywhere, and of the settings components read from their variables. Nothing here touches
//! Spin, Redis or Postgres: it is tested natively (its scripts against the Redis of `./dev test`).

pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod params;
pub mod script;
pub mod service_call;
pub mod settings;
pub mod sha1;
pub mod sha256;

pub use error::ApiError;
pub use params::{parse_count, parse_id, parse_non_negative};
pub use script::Script;
pub use settings::parse_switch;
