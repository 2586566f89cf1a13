//! The stock service's rule violations, mapped once to the API error every endpoint answers with
//! (the same pattern as every service: a typed error in the domain crate, one `From` into
//! [`ApiError`]).

use market_core::ApiError;
use std::fmt;

/// A request the stock rules refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockError {
    /// No item with this id.
    UnknownItem { item_id: String },
    /// Taking `amount` units would take the item's stock below zero.
    InsufficientStock { item_id: String, amount: i64 },
    /// Adding `amount` would take the stock past the largest 64-bit integer.
    StockOverflow { item_id: String },
    /// A saga's reservation refused by the stock as it is (the reason names the item).
    ReservationRefused { reason: String },
    /// A saga's release refused: an item cannot take its units back without overflowing; the
    /// units stay reserved by the saga, on record.
    ReleaseRefused { reason: String },
    /// The item cannot be deleted: a rental holds it (an open reservation of a rental saga).
    ActiveRental { item_id: String },
}

impl fmt::Display for StockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StockError::UnknownItem { item_id } => write!(f, "item {item_id} not found"),
            StockError::InsufficientStock { item_id, amount } => {
                write!(f, "item {item_id} has fewer than {amount} units in stock")
            }
            StockError::StockOverflow { item_id } => {
                write!(f, "adding that amount to item {item_id} overflows its stock")
            }
            StockError::ReservationRefused { reason } => f.write_str(reason),
            StockError::ReleaseRefused { reason } => write!(f, "release refused: {reason}"),
            StockError::ActiveRental { item_id } => {
                write!(f, "the item has an active rental: item {item_id} cannot be deleted while a rental holds it")
            }
        }
    }
}

impl std::error::Error for StockError {}

impl From<StockError> for ApiError {
    fn from(e: StockError) -> Self {
        let message = e.to_string();
        match e {
            StockError::UnknownItem { .. } => ApiError::NotFound(message),
            StockError::InsufficientStock { .. }
            | StockError::ReservationRefused { .. }
            | StockError::ReleaseRefused { .. }
            | StockError::ActiveRental { .. } => ApiError::Conflict(message),
            StockError::StockOverflow { .. } => ApiError::BadRequest(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_errors_are_client_errors() {
        let status = |e: StockError| ApiError::from(e).status();
        assert_eq!(status(StockError::UnknownItem { item_id: "a".into() }), 404);
        assert_eq!(status(StockError::InsufficientStock { item_id: "a".into(), amount: 1 }), 409);
        assert_eq!(status(StockError::StockOverflow { item_id: "a".into() }), 400);
        assert_eq!(status(StockError::ReservationRefused { reason: "out of stock".into() }), 409);
        let release: ApiError = StockError::ReleaseRefused { reason: "overflow".into() }.into();
        assert_eq!((release.status(), release.message()), (409, "release refused: overflow".to_string()));
        let rented: ApiError = StockError::ActiveRental { item_id: "a".into() }.into();
        assert_eq!(rented.status(), 409);
        assert!(rented.message().starts_with("the item has an active rental"), "{rented}");
    }
}
