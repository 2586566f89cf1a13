//! The operator's routes for sagas that got stuck (not finished after their drive limit, see
//! `order_domain::saga::State::Stuck`): `GET /orders/sagas/stuck` lists them,
//! `POST /orders/saga/:saga_id/redrive` hands one back to the drivers. Both exist only while the
//! application variable `admin_routes` is `"true"`; with `"false"` they answer 404, as if absent.
//!
//! A re-drive gives the saga another `saga_max_drives` drives and drives it once at once, in the
//! request, as the worker would (from its first step: steps already done answer "done"). Its
//! answer says where that left the saga: `paid` or `failed`, `running` (a step still failed: the
//! worker goes on with it), or `stuck` again (the operator's budget was one drive).

use crate::checkout::drive_limit;
use crate::saga_runner;
use crate::saga_store::{self, LEASE_MS, TakenStuck, WallClock, unique_token};
use market_core::metrics::Tally;
use market_core::{ApiError, parse_id};
use order_domain::error::OrderError;
use order_domain::rental::AnyRecord;
use order_domain::saga::{Clock, DriveResult, Record, RetryPolicy, SagaPlan};
use serde_json::{Value, json};
use spin_kit::{Reply, Request, respond, route};

/// Most sagas one listing shows (the stuck longest first); `total` says how many there are.
const LIST_LIMIT: usize = 100;

/// The operator's drive retries a failing step as the worker does.
fn operator_policy() -> RetryPolicy {
    RetryPolicy { backoff_ms: vec![50, 200], renew_every_ms: LEASE_MS / 3 }
}

/// What a listing and a re-drive show of a saga: a checkout's names its order, a rental's (or
/// its return's) its rental.
fn summary(record: &AnyRecord) -> Value {
    match record {
        AnyRecord::Checkout(r) => summary_of(r, ("order_id", &r.plan.order_id)),
        AnyRecord::Rental(r) => summary_of(r, ("rental_id", &r.plan.rental_id)),
    }
}

fn summary_of<P: SagaPlan>(record: &Record<P>, (about, id): (&str, &str)) -> Value {
    let mut summary = json!({
        "saga_id": record.plan.id(),
        "state": record.state,
        "reason": record.reason,
        "drives": record.drives,
        "drive_limit": record.drive_limit,
        "updated_ms": record.updated_ms,
    });
    summary[about] = Value::from(id);
    summary
}

/// `GET /orders/sagas/stuck` → `200 {"total": n, "sagas": [{"saga_id", "order_id", "state",
/// "reason", "drives", "drive_limit", "updated_ms"}, ...]}`, the stuck longest first, at most
/// [`LIST_LIMIT`]. The whole record of one: `GET /orders/checkout/{order_id}/status`.
pub async fn stuck_sagas(_req: Request) -> Result<Reply, ApiError> {
    spin_kit::admin::require_admin_routes().await?;
    let (total, records) = saga_store::stuck(LIST_LIMIT).await?;
    let sagas: Vec<Value> = records.iter().map(summary).collect();
    Ok(respond::ok(&json!({ "total": total, "sagas": sagas })))
}

/// `POST /orders/saga/:saga_id/redrive` → `200` with the saga (as listed) after one drive;
/// unknown saga → 404; a saga that is not stuck → 409, nothing changed.
pub async fn redrive_saga(req: Request) -> Result<Reply, ApiError> {
    spin_kit::admin::require_admin_routes().await?;
    let saga_id = parse_id("saga_id", route::param(&req, "saga_id")?)?;
    spin_kit::request_context::add_field("saga_id", saga_id);
    let budget = drive_limit().await?;
    let owner = unique_token("operator");
    let clock = WallClock;
    let record = match saga_store::take_stuck(saga_id, &owner, budget, clock.now_ms()).await? {
        TakenStuck::Taken(record) => *record,
        TakenStuck::Unknown => return Err(OrderError::UnknownSaga { saga_id: saga_id.into() }.into()),
        TakenStuck::NotStuck(state) => {
            let state = serde_json::to_value(state).unwrap_or_default();
            let state = state.as_str().unwrap_or("?").to_string();
            return Err(OrderError::SagaNotStuck { saga_id: saga_id.into(), state }.into());
        }
        TakenStuck::Raced => {
            return Err(OrderError::SagaRedrivenMeanwhile { saga_id: saga_id.into() }.into());
        }
    };
    let (record, driven) = saga_runner::drive_any(record, &owner, &operator_policy(), "operator").await;
    driven.written?;
    if matches!(driven.result, DriveResult::Retry { .. }) {
        saga_store::ring_doorbell().await;
    }
    let mut counted = Tally::new();
    counted.saga_drives(1, driven.compensations);
    let mut reply = respond::ok(&summary(&record));
    spin_kit::metrics::add(&mut reply, counted);
    Ok(reply)
}
