//! Reservations for the checkout saga: the request the order service sends, and what the
//! server-side functions `stock.reserve` / `stock.release` answer (see migrations 0004, 0005).

use market_core::{ApiError, parse_id};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

    /// The items and quantities as the two arrays `stock.reserve` takes: one line per item
    /// (repeated items summed), in ascending byte order of the id — the order in which every
    /// reservation locks rows, so that two of them cannot deadlock. 400 if a sum overflows.
    pub fn columns(&self) -> Result<(Vec<Option<String>>, Vec<Option<i64>>), ApiError> {
        let mut lines: BTreeMap<&str, i64> = BTreeMap::new();
        for (item, quantity) in &self.items {
            let sum = lines.entry(item).or_insert(0);
            *sum = sum
                .checked_add(*quantity)
                .ok_or_else(|| ApiError::BadRequest(format!("total quantity of {item} is too large")))?;
        }
        Ok(lines.into_iter().map(|(i, q)| (Some(i.to_string()), Some(q))).unzip())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_refuses_bad_lines() {
        let req = ReserveRequest::parse(br#"{"items": [["a", 2], ["b", 1]]}"#).unwrap();
        assert_eq!(req.columns().unwrap(), (vec![Some("a".into()), Some("b".into())], vec![Some(2), Some(1)]));
        assert_eq!(ReserveRequest::parse(b"nope").unwrap_err().status(), 400);
        assert_eq!(ReserveRequest::parse(br#"{"items": [["a", 0]]}"#).unwrap_err().status(), 400);
        assert_eq!(ReserveRequest::parse(br#"{"items": [["", 1]]}"#).unwrap_err().status(), 400);
    }

    #[test]
    fn columns_sum_repeated_items_and_sort_ids_bytewise() {
        let req = ReserveRequest::parse(br#"{"items": [["b", 1], ["a_1", 2], ["b", 3], ["A", 1], ["a-1", 1]]}"#).unwrap();
        let (items, quantities) = req.columns().unwrap();
        let items: Vec<_> = items.into_iter().map(Option::unwrap).collect();
        assert_eq!(items, ["A", "a-1", "a_1", "b"]);
        assert_eq!(quantities, [Some(1), Some(1), Some(2), Some(4)]);
        let huge = format!(r#"{{"items": [["a", {m}], ["a", {m}]]}}"#, m = i64::MAX);
        assert_eq!(ReserveRequest::parse(huge.as_bytes()).unwrap().columns().unwrap_err().status(), 400);
    }

    #[test]
    fn parses_outcomes() {
        assert_eq!(StepOutcome::parse("reserved"), StepOutcome::Reserved);
        assert_eq!(StepOutcome::parse("refused: out of stock: a"), StepOutcome::Refused("out of stock: a".into()));
        assert_eq!(StepOutcome::parse("nothing reserved"), StepOutcome::NothingReserved);
    }
}
