//! The order service's domain and the checkout saga, free of Spin types.
//!
//! * [`order`]: what an order is and what its endpoints accept.
//! * [`saga`]: the checkout saga — its record, its state machine and the driver that runs it
//!   against any [`saga::Participants`] (HTTP calls in production, fakes in tests); the record
//!   and the driver serve every workflow of the saga table ([`saga::SagaPlan`]).
//! * [`rental`]: renting an item and giving it back, two more workflows of the same table.
//! * [`sql`], [`redis_scripts`]: the statements and scripts the service runs.
//! * [`worker_health`]: whether the saga worker is doing its job (the health checks' verdict).
//!
//! Data ownership: Postgres schema `orders` (role `orders_service`) holds the orders and the
//! rentals; Redis
//! database 1, prefix `orders:`, holds the saga table and its work structures.

pub mod error;
pub mod order;
pub mod redis_scripts;
pub mod rental;
pub mod saga;
pub mod sql;
pub mod worker_health;
