//! The order service's endpoints (one component each) — `create`, `find`, `add_item`,
//! `batch_init`, `checkout`, `checkout_status`, the rentals' `rent`, `rental` and
//! `return_rental`, the operator's `stuck_sagas` and `redrive_saga` —
//! and the saga worker's `drain`; [`ops`]: what the health checks and metrics read (the worker's
//! heartbeat, the oldest due saga).
//!
//! Orders and rentals live in Postgres (schema `orders`); the saga table (checkouts, rentals,
//! returns) and the orders' plan
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
mod rentals;
mod saga_runner;
mod saga_store;
pub mod worker;

pub use checkout::{checkout, checkout_status};
pub use operator::{redrive_saga, stuck_sagas};
pub use orders::{add_item, batch_init, create, find};
pub use rentals::{rent, rental, return_rental};
