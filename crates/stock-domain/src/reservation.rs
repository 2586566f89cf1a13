//! Reservations for the checkout saga: the request the order service sends, and what the
//! server-side functions `stock.reserve` / `stock.release` answer (see infra/functions/stock.sql).

use crate::error::StockError;
use market_core::{ApiError, parse_id};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 1_000;

/// Items and quantities as `stock.reserve` takes them: two arrays, one entry per item.
pub type Columns = (Vec<Option<String>>, Vec<Option<i64>>);

/// `POST /stock/reserve/{saga_id}` body: `{"items": [["<item_id>", quantity], ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub items: Vec<(String, i64)>,
}

impl ReserveRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let req: ReserveRequest = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("body must be {{\"items\": [[item_id, quantity], ...]}}: {e}"))
        })?;
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
    pub fn columns(&self) -> Result<Columns, ApiError> {
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
///
/// Each saga is also checked on its own: one that `reserve` would refuse as invalid (a bad id,
/// a quantity below 1, more than [`MAX_LINES`] lines, an item's quantities summing past 64 bits)
/// gets that 400 as its own answer, and the others are reserved as if it were not there. Only a
/// body that is not such a list at all, or longer than [`MAX_BATCH_SAGAS`], is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveManyRequest {
    /// Each saga in order: its merged, sorted lines, or why it is invalid.
    pub sagas: Vec<Result<SagaLines, ApiError>>,
}

/// A valid saga of a batch: its id and its lines as [`ReserveRequest::columns`] makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaLines {
    pub saga_id: String,
    pub items: Vec<Option<String>>,
    pub quantities: Vec<Option<i64>>,
}

impl SagaLines {
    fn parse(entry: serde_json::Value) -> Result<Self, ApiError> {
        let saga: SagaReservation = serde_json::from_value(entry).map_err(|e| {
            ApiError::BadRequest(format!(
                "a saga must be {{\"saga_id\": id, \"items\": [[item_id, quantity], ...]}}: {e}"
            ))
        })?;
        parse_id("saga_id", &saga.saga_id)?;
        saga.lines.validate()?;
        let (items, quantities) = saga.lines.columns()?;
        Ok(SagaLines { saga_id: saga.saga_id, items, quantities })
    }
}

/// The four arrays `stock.reserve_many` takes (infra/functions/stock.sql).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReserveManyColumns {
    pub sagas: Vec<Option<String>>,
    pub line_counts: Vec<Option<i64>>,
    pub items: Vec<Option<String>>,
    pub quantities: Vec<Option<i64>>,
}

impl ReserveManyRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        struct Envelope {
            sagas: Vec<serde_json::Value>,
        }
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "body must be {{\"sagas\": [{{\"saga_id\": id, \"items\": [[item_id, quantity], ...]}}, ...]}}: {e}"
            ))
        })?;
        if envelope.sagas.len() > MAX_BATCH_SAGAS {
            return Err(ApiError::BadRequest(format!("at most {MAX_BATCH_SAGAS} sagas per batch")));
        }
        Ok(ReserveManyRequest { sagas: envelope.sagas.into_iter().map(SagaLines::parse).collect() })
    }

    /// The valid sagas' lines, one saga after the other: the arguments of `stock.reserve_many`.
    pub fn columns(&self) -> ReserveManyColumns {
        let mut out = ReserveManyColumns::default();
        for saga in self.sagas.iter().flatten() {
            out.sagas.push(Some(saga.saga_id.clone()));
            out.line_counts.push(Some(saga.items.len() as i64));
            out.items.extend(saga.items.iter().cloned());
            out.quantities.extend(saga.quantities.iter().copied());
        }
        out
    }

    /// Every saga's answer, in order: `outcomes` are those of the valid sagas (what
    /// `stock.reserve_many` returned for [`ReserveManyRequest::columns`]), each becoming `Ok` or
    /// its refusal (409); an invalid saga answers its 400. `Err` if the count does not match.
    pub fn answers(&self, outcomes: &[String]) -> Result<Vec<Result<(), ApiError>>, ApiError> {
        let valid = self.sagas.iter().filter(|s| s.is_ok()).count();
        if outcomes.len() != valid {
            return Err(ApiError::Internal(format!("{} outcomes for {valid} sagas", outcomes.len())));
        }
        let mut outcomes = outcomes.iter();
        Ok(self
            .sagas
            .iter()
            .map(|saga| match saga {
                Err(invalid) => Err(invalid.clone()),
                Ok(_) => match outcomes.next().map(|o| StepOutcome::parse(o)) {
                    Some(StepOutcome::Refused(reason)) => Err(StockError::ReservationRefused { reason }.into()),
                    _ => Ok(()),
                },
            })
            .collect())
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
        let req =
            ReserveRequest::parse(br#"{"items": [["b", 1], ["a_1", 2], ["b", 3], ["A", 1], ["a-1", 1]]}"#).unwrap();
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
        let cols = ReserveManyRequest::parse(body).unwrap().columns();
        let text = |v: Vec<Option<String>>| v.into_iter().map(Option::unwrap).collect::<Vec<_>>();
        assert_eq!(text(cols.sagas), ["o1.0.0", "o2.0.0", "o3.0.0"]);
        assert_eq!(cols.line_counts, [Some(2), Some(0), Some(1)]);
        assert_eq!(text(cols.items), ["a", "b", "c"]);
        assert_eq!(cols.quantities, [Some(1), Some(2), Some(5)]);
        for bad in [&b"[]"[..], b"{}", br#"{"sagas": 3}"#] {
            assert_eq!(ReserveManyRequest::parse(bad).unwrap_err().status(), 400, "{}", String::from_utf8_lossy(bad));
        }
        let many = serde_json::json!({ "sagas": (0..=MAX_BATCH_SAGAS).map(|i| serde_json::json!({"saga_id": format!("s{i}"), "items": []})).collect::<Vec<_>>() });
        assert_eq!(ReserveManyRequest::parse(many.to_string().as_bytes()).unwrap_err().status(), 400);
    }

    #[test]
    fn an_invalid_saga_gets_its_own_400_and_the_others_go_on() {
        let huge = i64::MAX;
        let long: Vec<_> = (0..=MAX_LINES).map(|_| serde_json::json!(["a", 1])).collect();
        let body = serde_json::json!({ "sagas": [
            {"saga_id": "ok1", "items": [["a", 1]]},
            {"saga_id": "", "items": []},
            {"saga_id": "zero", "items": [["a", 0]]},
            {"items": []},
            {"saga_id": "overflow", "items": [["a", huge], ["a", huge]]},
            {"saga_id": "long", "items": long},
            "not a saga",
            {"saga_id": "ok2", "items": [["b", 2]]},
        ]});
        let batch = ReserveManyRequest::parse(body.to_string().as_bytes()).unwrap();
        let cols = batch.columns();
        assert_eq!(cols.sagas, [Some("ok1".to_string()), Some("ok2".to_string())], "only the valid ones reach SQL");
        assert_eq!((cols.line_counts, cols.quantities), (vec![Some(1), Some(1)], vec![Some(1), Some(2)]));
        let answers = batch.answers(&["reserved".into(), "refused: out of stock: b".into()]).unwrap();
        let statuses: Vec<u16> = answers.iter().map(|a| a.as_ref().map_or_else(|e| e.status(), |()| 200)).collect();
        assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 409]);
        let message = |i: usize| answers[i].clone().unwrap_err().message();
        assert!(
            message(4).contains("too large") && message(5).contains("at most 1000"),
            "{} / {}",
            message(4),
            message(5)
        );
        assert_eq!(batch.answers(&["reserved".into()]).unwrap_err().status(), 500, "a count that does not match");
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
