//! The order service's rule violations, mapped once to the API error every endpoint answers with
//! (the same pattern as every service: a typed error in the domain crate, one `From` into
//! [`ApiError`]).

use market_core::ApiError;
use std::fmt;

/// A request the order rules refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// No order with this id.
    UnknownOrder { order_id: String },
    /// The order is paid: it can no longer change.
    AlreadyPaid { order_id: String },
    /// The order changed between two statements of one request (it was re-created).
    ChangedMeanwhile { order_id: String },
    /// The order would get more lines than one stock reservation takes.
    TooManyLines { order_id: String, lines: i64, max: usize },
    /// The order's quantities would add up past the largest 64-bit integer.
    QuantitiesOverflow { order_id: String },
    /// The payment service knows no such user.
    UnknownUser { user_id: String },
    /// The stock service knows no such item.
    UnknownItem { item_id: String },
    /// The checkout's saga ended without paying; the reason is the participant's.
    CheckoutRefused { reason: String },
    /// The checkout cannot pay the order as it is (a participant called the request invalid).
    CheckoutInvalid { reason: String },
    /// No saga with this id (operator routes).
    UnknownSaga { saga_id: String },
    /// Only a stuck saga is re-driven.
    SagaNotStuck { saga_id: String, state: String },
    /// Another re-drive took the saga first.
    SagaRedrivenMeanwhile { saga_id: String },
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::UnknownOrder { order_id } => write!(f, "order {order_id} not found"),
            OrderError::AlreadyPaid { order_id } => write!(f, "order {order_id} is paid and can no longer change"),
            OrderError::ChangedMeanwhile { order_id } => write!(f, "order {order_id} changed meanwhile; try again"),
            OrderError::TooManyLines { order_id, lines, max } => write!(
                f,
                "order {order_id} has {lines} lines: an order holds at most {max} (what one stock reservation takes)"
            ),
            OrderError::QuantitiesOverflow { order_id } => {
                write!(f, "the quantities of order {order_id} would add up to more than {} (2^63 - 1)", i64::MAX)
            }
            OrderError::UnknownUser { user_id } => write!(f, "user {user_id} not found"),
            OrderError::UnknownItem { item_id } => write!(f, "item {item_id} not found"),
            OrderError::CheckoutRefused { reason } | OrderError::CheckoutInvalid { reason } => {
                write!(f, "checkout refused: {reason}")
            }
            OrderError::UnknownSaga { saga_id } => write!(f, "saga {saga_id} not found"),
            OrderError::SagaNotStuck { saga_id, state } => {
                write!(f, "saga {saga_id} is {state}, not stuck: only a stuck saga is re-driven")
            }
            OrderError::SagaRedrivenMeanwhile { saga_id } => {
                write!(f, "saga {saga_id} was re-driven by another request meanwhile")
            }
        }
    }
}

impl std::error::Error for OrderError {}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        let message = e.to_string();
        match e {
            OrderError::UnknownOrder { .. }
            | OrderError::UnknownUser { .. }
            | OrderError::UnknownItem { .. }
            | OrderError::UnknownSaga { .. } => ApiError::NotFound(message),
            OrderError::AlreadyPaid { .. }
            | OrderError::ChangedMeanwhile { .. }
            | OrderError::CheckoutRefused { .. }
            | OrderError::SagaNotStuck { .. }
            | OrderError::SagaRedrivenMeanwhile { .. } => ApiError::Conflict(message),
            OrderError::TooManyLines { .. }
            | OrderError::QuantitiesOverflow { .. }
            | OrderError::CheckoutInvalid { .. } => ApiError::BadRequest(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_errors_are_client_errors() {
        let status = |e: OrderError| ApiError::from(e).status();
        assert_eq!(status(OrderError::UnknownOrder { order_id: "o".into() }), 404);
        assert_eq!(status(OrderError::AlreadyPaid { order_id: "o".into() }), 409);
        assert_eq!(status(OrderError::TooManyLines { order_id: "o".into(), lines: 1000, max: 1000 }), 400);
        assert_eq!(status(OrderError::CheckoutRefused { reason: "out of stock".into() }), 409);
        assert_eq!(status(OrderError::CheckoutInvalid { reason: "too many lines".into() }), 400);
        assert_eq!(status(OrderError::SagaRedrivenMeanwhile { saga_id: "s".into() }), 409);
    }
}
