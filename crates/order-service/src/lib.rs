//! The order service's endpoints (one component each) — `create`, `find`, `add_item`,
//! `batch_init`, `checkout`, `checkout_status`, the operator's `stuck_sagas` and `redrive_saga` —
//! and the saga worker's `drain`.
//!
//! Orders live in Postgres (schema `orders`); the checkout saga's table and the orders' plan
//! copies live in Redis (database 1, prefix `orders:`); stock and payment are reached only through their services'
//! endpoints, by service chaining.

mod batch_queue;
mod batch_steps;
mod checkout;
mod operator;
pub mod ops;
mod orders;
mod participants;
mod plan_copy;
mod saga_store;
pub mod worker;

pub use checkout::{checkout, checkout_status};
pub use operator::{redrive_saga, stuck_sagas};
pub use orders::{add_item, batch_init, create, find};
