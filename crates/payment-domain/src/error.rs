//! The payment service's rule violations, mapped once to the API error every endpoint answers with.

use market_core::ApiError;
use std::fmt;

/// A request the payment rules refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentError {
    /// No user with this id.
    UnknownUser { user_id: String },
    /// Paying `amount` would take the user's credit below zero.
    InsufficientCredit { user_id: String, amount: i64 },
    /// Adding `amount` would take the credit past the largest 64-bit integer.
    CreditOverflow { user_id: String },
    /// A saga's charge arrived after the saga was refunded (or compensated before charging).
    SagaAlreadyRefunded { saga_id: String },
    /// Refunding the saga's charge would take the credit past the largest 64-bit integer: refused,
    /// the charge stays on record.
    RefundWouldOverflow { saga_id: String },
    /// A saga's credit refused by an earlier call (an unknown user, or a credit past the largest
    /// 64-bit integer): nothing credited.
    CreditRefused { saga_id: String },
    /// Crediting the saga's amount would take the user's credit past the largest 64-bit
    /// integer: refused, nothing credited.
    CreditWouldOverflow { saga_id: String, user_id: String },
    /// A saga's credit arrived after its reverse: nothing credited.
    CreditBlocked { saga_id: String },
    /// A saga's credit arrived again after it was made and reversed: nothing credited again.
    CreditAlreadyReversed { saga_id: String },
    /// Reversing the saga's credit would take the owner's credit below zero (the owner spent
    /// it): refused, the credit stays on record.
    ReverseCreditRefused { saga_id: String },
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentError::UnknownUser { user_id } => write!(f, "user {user_id} not found"),
            PaymentError::InsufficientCredit { user_id, amount } => {
                write!(f, "user {user_id} has less than {amount} credit")
            }
            PaymentError::CreditOverflow { user_id } => {
                write!(f, "adding that amount to the credit of user {user_id} overflows it")
            }
            PaymentError::SagaAlreadyRefunded { saga_id } => {
                write!(f, "saga {saga_id} was already refunded; nothing is charged")
            }
            PaymentError::RefundWouldOverflow { saga_id } => write!(
                f,
                "refund of saga {saga_id} refused: the credit cannot take the amount back; the charge stays on record"
            ),
            PaymentError::CreditRefused { saga_id } => write!(f, "the credit of saga {saga_id} was refused"),
            PaymentError::CreditWouldOverflow { saga_id, user_id } => write!(
                f,
                "credit of saga {saga_id} refused: adding the amount to the credit of user {user_id} overflows it"
            ),
            PaymentError::CreditBlocked { saga_id } => {
                write!(f, "credit of saga {saga_id} refused: the credit was reversed before it was made")
            }
            PaymentError::CreditAlreadyReversed { saga_id } => {
                write!(f, "credit of saga {saga_id} refused: the credit was already made and reversed")
            }
            PaymentError::ReverseCreditRefused { saga_id } => write!(
                f,
                "reverse of the credit of saga {saga_id} refused: the owner no longer has the amount; the credit stays on record"
            ),
        }
    }
}

impl std::error::Error for PaymentError {}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        let message = e.to_string();
        match e {
            PaymentError::UnknownUser { .. } => ApiError::NotFound(message),
            PaymentError::InsufficientCredit { .. }
            | PaymentError::SagaAlreadyRefunded { .. }
            | PaymentError::RefundWouldOverflow { .. }
            | PaymentError::CreditRefused { .. }
            | PaymentError::CreditWouldOverflow { .. }
            | PaymentError::CreditBlocked { .. }
            | PaymentError::CreditAlreadyReversed { .. }
            | PaymentError::ReverseCreditRefused { .. } => ApiError::Conflict(message),
            PaymentError::CreditOverflow { .. } => ApiError::BadRequest(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_errors_are_client_errors() {
        let unknown: ApiError = PaymentError::UnknownUser { user_id: "u".into() }.into();
        assert_eq!(unknown.status(), 404);
        let short: ApiError = PaymentError::InsufficientCredit { user_id: "u".into(), amount: 3 }.into();
        assert_eq!(short.status(), 409);
        assert!(short.message().contains("less than 3"), "{short}");
        let overflow: ApiError = PaymentError::CreditOverflow { user_id: "u".into() }.into();
        assert_eq!(overflow.status(), 400);
    }
}
