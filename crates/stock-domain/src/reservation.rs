//! Reservations for the checkout saga: the request the order service sends, and what the
//! server-side functions `stock.reserve` / `stock.release` answer (see migration 0004).

use crate::cache::CachedItem;
use market_core::{ApiError, parse_id};
use serde::{Deserialize, Serialize};

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 1_000;

/// `POST /stock/reserve/{saga_id}` body: `{"items": [["<item_id>", quantity], ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub items: Vec<(String, i64)>,
}

impl ReserveRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let req: ReserveRequest = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("body must be {{\"items\": [[item_id, quantity], ...]}}: {e}")))?;
        if req.items.len() > MAX_LINES {
            return Err(ApiError::BadRequest(format!("at most {MAX_LINES} lines per reservation")));
        }
        for (item, quantity) in &req.items {
            parse_id("item_id", item)?;
            if *quantity < 1 {
                return Err(ApiError::BadRequest(format!("quantity of {item} must be at least 1")));
            }
        }
        Ok(req)
    }

    /// The items and quantities as the two arrays `stock.reserve` takes.
    pub fn columns(&self) -> (Vec<Option<String>>, Vec<Option<i64>>) {
        self.items.iter().map(|(i, q)| (Some(i.clone()), Some(*q))).unzip()
    }
}

/// What a reserve or release did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Reserved,
    Released,
    NothingReserved,
    Refused(String),
}

impl StepOutcome {
    pub fn parse(outcome: &str) -> Self {
        match outcome {
            "reserved" => StepOutcome::Reserved,
            "released" => StepOutcome::Released,
            "nothing reserved" => StepOutcome::NothingReserved,
            other => StepOutcome::Refused(other.strip_prefix("refused: ").unwrap_or(other).to_string()),
        }
    }
}

/// The `changed` column: `[[item_id, stock, price, version], ...]`, for the cache.
pub fn parse_changed(raw: serde_json::Value) -> Vec<(String, CachedItem)> {
    let rows: Vec<(String, i64, i64, i64)> = serde_json::from_value(raw).unwrap_or_default();
    rows.into_iter().map(|(id, stock, price, version)| (id, CachedItem { version, stock, price })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_refuses_bad_lines() {
        let req = ReserveRequest::parse(br#"{"items": [["a", 2], ["b", 1]]}"#).unwrap();
        assert_eq!(req.columns(), (vec![Some("a".into()), Some("b".into())], vec![Some(2), Some(1)]));
        assert_eq!(ReserveRequest::parse(b"nope").unwrap_err().status(), 400);
        assert_eq!(ReserveRequest::parse(br#"{"items": [["a", 0]]}"#).unwrap_err().status(), 400);
        assert_eq!(ReserveRequest::parse(br#"{"items": [["", 1]]}"#).unwrap_err().status(), 400);
    }

    #[test]
    fn parses_outcomes_and_changes() {
        assert_eq!(StepOutcome::parse("reserved"), StepOutcome::Reserved);
        assert_eq!(StepOutcome::parse("refused: out of stock: a"), StepOutcome::Refused("out of stock: a".into()));
        assert_eq!(StepOutcome::parse("nothing reserved"), StepOutcome::NothingReserved);
        assert_eq!(
            parse_changed(serde_json::json!([["a", 1, 2, 3]])),
            vec![("a".to_string(), CachedItem { version: 3, stock: 1, price: 2 })]
        );
        assert!(parse_changed(serde_json::json!([])).is_empty());
    }
}
