//! Spin-free building blocks shared by every service of the marketplace.
//!
//! Owns the one error type every endpoint answers with ([`ApiError`], mapped once to an HTTP
//! status and a JSON body), the rules of `Idempotency-Key` (with the SHA-256 that fingerprints a
//! request's body), the parsing of path parameters, so that bad input is refused with a 4xx the
//! same way everywhere, and of the settings components read from their variables. Nothing here
//! touches Spin, Redis or Postgres: it is unit-tested natively.

pub mod error;
pub mod idempotency;
pub mod params;
pub mod service_call;
pub mod settings;
pub mod sha256;

pub use error::ApiError;
pub use params::{parse_count, parse_id, parse_non_negative};
pub use settings::parse_switch;
