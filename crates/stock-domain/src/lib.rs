//! The stock service's domain: what an item is, what its endpoints accept, and the SQL that
//! changes it atomically.
//!
//! No Spin types here: the component glue (`stock-service`) performs the I/O this crate
//! describes, and this crate is unit-tested natively.
//!
//! Data ownership: Postgres schema `stock` (role `stock_service`) holds the items and the saga
//! reservations. In Redis the service owns only the prefix `stock:` (its `Idempotency-Key`
//! records). `find` reads Postgres: a primary-key lookup answers as fast as a Redis cache did
//! for random items (see the README's benchmark), and is exact with no cache protocol.

pub mod item;
pub mod reservation;
pub mod sql;

pub use item::{BatchInit, Item, StockChange};
