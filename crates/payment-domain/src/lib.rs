//! The payment service's domain: what a user's account is, what its endpoints accept, the
//! errors of its rules, the outcomes of the checkout saga's `charge` and `refund` steps and of
//! the rental saga's `credit` and `reverse_credit` steps, and the SQL that changes credit
//! atomically.
//!
//! No Spin types here: the component glue (`payment-service`) performs the I/O this crate
//! describes, and this crate is unit-tested natively.
//!
//! Data ownership: Postgres schema `payment` (role `payment_service`, migration 0002) is the
//! truth; there is no cache. Redis keys under `payment:` hold only `Idempotency-Key` records.

pub mod client;
pub mod error;
pub mod saga;
pub mod sql;
pub mod user;

pub use error::PaymentError;
pub use saga::{
    ChargeManyRequest, ChargeOutcome, ChargeStep, CreditOutcome, CreditStep, MoneyStep, RefundOutcome, RefundStep,
    ReverseCreditOutcome, ReverseCreditStep, SagaCredit, UndoStep,
};
pub use user::{BatchInit, CreditChange, User};
