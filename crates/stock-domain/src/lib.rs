//! The stock service's domain: what an item is (its stock and price, and its listing in the
//! sharing-economy inventory: owner, title, description, category, daily price), what its
//! endpoints accept, and the SQL that changes it atomically.
//!
//! No Spin types here: the component glue (`stock-service`) performs the I/O this crate
//! describes, and this crate is unit-tested natively.
//!
//! Data ownership: Postgres schema `stock` (role `stock_service`) holds the items and the saga
//! reservations. In Redis the service owns the prefix `stock:`: its `Idempotency-Key` records
//! and the view that answers `find` and the items' pages ([`find_view`], kept exact by a protocol every writer
//! follows).

pub mod client;
pub mod error;
pub mod find_view;
pub mod item;
pub mod listing;
pub mod reservation;
pub mod sql;

pub use item::{BatchInit, Item, StockChange};
