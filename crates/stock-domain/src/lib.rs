//! The stock service's domain: what an item is, what its endpoints accept, the SQL that changes
//! it atomically, and the format of its Redis read-through cache.
//!
//! No Spin types here: the component glue (`stock-service`) performs the I/O this crate
//! describes, and this crate is unit-tested natively.
//!
//! Data ownership: Postgres schema `stock` (role `stock_service`) is the truth; Redis keys under
//! the prefix `stock:` are only a cache of it.

pub mod cache;
pub mod item;
pub mod reservation;
pub mod sql;

pub use item::{BatchInit, Item, StockChange};
