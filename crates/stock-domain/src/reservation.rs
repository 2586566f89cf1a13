//! Reservations for the checkout saga: the request the order service sends, and what the
//! server-side functions `stock.reserve` / `stock.release` answer (see migrations 0004, 0005, 0008).

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
        req.validate()?;
        Ok(req)
    }

    fn validate(&self) -> Result<(), ApiError> {
        if self.items.len() > MAX_LINES {
            return Err(ApiError::BadRequest(format!("at most {MAX_LINES} lines per reservation")));
        }
        for (item, quantity) in &self.items {
            parse_id("item_id", item)?;
            if *quantity < 1 {
                return Err(ApiError::BadRequest(format!("quantity of {item} must be at least 1")));
            }
        }
        Ok(())
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

/// Most sagas one batched reserve may hold.
pub const MAX_BATCH_SAGAS: usize = 256;

/// One saga's reservation in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaReservation {
    pub saga_id: String,
    #[serde(flatten)]
    pub lines: ReserveRequest,
}

/// `POST /stock/reserve_many` body: `{"sagas": [{"saga_id": "<id>", "items": [[item_id,
/// quantity], ...]}, ...]}`: the reserves of several sagas, applied in one statement, each saga
/// on its own (all its lines or none), as [`ReserveRequest`] would be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveManyRequest {
    pub sagas: Vec<SagaReservation>,
}

/// The four arrays `stock.reserve_many` takes (migration 0006).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReserveManyColumns {
    pub sagas: Vec<Option<String>>,
    pub line_counts: Vec<Option<i64>>,
    pub items: Vec<Option<String>>,
    pub quantities: Vec<Option<i64>>,
}

impl ReserveManyRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let req: ReserveManyRequest = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "body must be {{\"sagas\": [{{\"saga_id\": id, \"items\": [[item_id, quantity], ...]}}, ...]}}: {e}"
            ))
        })?;
        if req.sagas.len() > MAX_BATCH_SAGAS {
            return Err(ApiError::BadRequest(format!("at most {MAX_BATCH_SAGAS} sagas per batch")));
        }
        for saga in &req.sagas {
            parse_id("saga_id", &saga.saga_id)?;
            saga.lines.validate()?;
        }
        Ok(req)
    }

    /// Each saga's lines as [`ReserveRequest::columns`] makes them, one after the other.
    pub fn columns(&self) -> Result<ReserveManyColumns, ApiError> {
        let mut out = ReserveManyColumns::default();
        for saga in &self.sagas {
            let (items, quantities) = saga.lines.columns()?;
            out.sagas.push(Some(saga.saga_id.clone()));
            out.line_counts.push(Some(items.len() as i64));
            out.items.extend(items);
            out.quantities.extend(quantities);
        }
        Ok(out)
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
    fn batches_concatenate_each_sagas_merged_sorted_lines() {
        let body = br#"{"sagas": [{"saga_id": "o1.0.0", "items": [["b", 1], ["a", 1], ["b", 1]]}, {"saga_id": "o2.0.0", "items": []}, {"saga_id": "o3.0.0", "items": [["c", 5]]}]}"#;
        let cols = ReserveManyRequest::parse(body).unwrap().columns().unwrap();
        let text = |v: Vec<Option<String>>| v.into_iter().map(Option::unwrap).collect::<Vec<_>>();
        assert_eq!(text(cols.sagas), ["o1.0.0", "o2.0.0", "o3.0.0"]);
        assert_eq!(cols.line_counts, [Some(2), Some(0), Some(1)]);
        assert_eq!(text(cols.items), ["a", "b", "c"]);
        assert_eq!(cols.quantities, [Some(1), Some(2), Some(5)]);
        for bad in [
            &br#"{"sagas": [{"saga_id": "", "items": []}]}"#[..],
            br#"{"sagas": [{"saga_id": "s", "items": [["a", 0]]}]}"#,
            br#"{"sagas": [{"items": []}]}"#,
            b"[]",
        ] {
            assert_eq!(ReserveManyRequest::parse(bad).unwrap_err().status(), 400, "{}", String::from_utf8_lossy(bad));
        }
        let many = serde_json::json!({ "sagas": (0..=MAX_BATCH_SAGAS).map(|i| serde_json::json!({"saga_id": format!("s{i}"), "items": []})).collect::<Vec<_>>() });
        assert_eq!(ReserveManyRequest::parse(many.to_string().as_bytes()).unwrap_err().status(), 400);
    }

    #[test]
    fn parses_outcomes() {
        assert_eq!(StepOutcome::parse("reserved"), StepOutcome::Reserved);
        assert_eq!(StepOutcome::parse("refused: out of stock: a"), StepOutcome::Refused("out of stock: a".into()));
        assert_eq!(StepOutcome::parse("nothing reserved"), StepOutcome::NothingReserved);
        assert_eq!(StepOutcome::parse("released"), StepOutcome::Released);
        assert_eq!(StepOutcome::parse("refused: stock overflow: a"), StepOutcome::Refused("stock overflow: a".into()));
    }
}
