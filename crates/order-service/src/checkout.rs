//! `POST /orders/checkout/:order_id` and `GET /orders/checkout/:order_id/status`.
//!
//! The request drives its own saga (no waiting for a worker), holding the saga's lease. Its
//! reserve, charge and mark paid go out in one batch with those of every checkout in flight, in
//! any instance ([`crate::batch_queue`]); the batch ends the sagas its answers decide, so such a
//! checkout makes one round trip to Redis of its own (`BEGIN`). A step the batch could not do is
//! retried by the saga's driver on its own ([`crate::batch_steps::AnsweredSteps`]); if a
//! participant keeps failing, the checkout hands the saga to the worker (due again after a
//! back-off) and waits for the outcome. A checkout of an order whose saga is already running
//! waits for that saga. The response is only given once the outcome is final; if it is not final
//! within [`WAIT_LIMIT_MS`], the answer is 503 (the saga goes on, see the status endpoint) —
//! never a guess. A saga that is stuck (not finished after its drive limit, the application
//! variable `saga_max_drives`) is answered 503 at once: it waits for an operator
//! ([`crate::operator`]).

use crate::batch_queue::Ticket;
use crate::batch_steps::AnsweredSteps;
use crate::orders::load;
use crate::plan_copy;
use crate::saga_runner;
use crate::saga_store::{self, Begun, LEASE_MS, Lease, SagaNext, WallClock, unique_token};
use market_core::metrics::{CheckoutOutcome, Tally};
use market_core::{ApiError, parse_id};
use order_domain::error::OrderError;
use order_domain::saga::{
    Clock, DriveResult, ORDER_CHANGED, Plan, Record, RetryPolicy, State, drive, parse_drive_limit, retry_delay_ms,
};
use spin_kit::{Reply, Request, respond, route};

/// Longest a checkout request waits for its saga's outcome.
pub const WAIT_LIMIT_MS: u64 = 20_000;

/// The checkout request's retries of a failing step before it hands the saga to the worker.
fn inline_policy() -> RetryPolicy {
    RetryPolicy { backoff_ms: vec![20, 100, 300], renew_every_ms: LEASE_MS / 3 }
}

pub async fn checkout(req: Request) -> Result<Reply, ApiError> {
    let mut counted = Tally::new();
    let mut reply = checkout_counting(req, &mut counted).await?;
    spin_kit::metrics::add(&mut reply, counted);
    Ok(reply)
}

/// The checkout; the drives and batches it did are added to `counted` (its outcome is counted
/// with its reply: [`outcome_reply`]).
async fn checkout_counting(req: Request, counted: &mut Tally) -> Result<Reply, ApiError> {
    let order_id = parse_id("order_id", route::param(&req, "order_id")?)?;
    spin_kit::request_context::add_field("order_id", order_id);
    // Where tokens are required, the saga starts only for the order's own user: BEGIN checks
    // the plan copy's user (no extra call); Postgres decides when the copy says another.
    let caller = spin_kit::auth::caller(&req).await?.map(|claims| claims.sub);
    let clock = WallClock;
    let started = clock.now_ms();
    let owner = unique_token("checkout");
    let drive_limit = drive_limit().await?;
    // Whether this request already read the order from Postgres and refreshed its plan copy.
    let mut refreshed = false;
    loop {
        let ticket = Ticket::new();
        let begun =
            saga_store::begin(order_id, &owner, clock.now_ms(), drive_limit, &ticket, caller.as_deref()).await?;
        let (plan, leading) = match begun {
            Begun::Join { record: Some(r), .. } if r.state != State::Running => return Ok(outcome_reply(&r)),
            Begun::Join { saga_id, .. } => {
                spin_kit::request_context::add_field("saga_id", saga_id.as_str());
                return wait_for(order_id, &saga_id, started).await;
            }
            Begun::Drive { plan, leading } => {
                spin_kit::request_context::add_field("saga_id", plan.saga_id.as_str());
                (plan, leading)
            }
            Begun::OtherUser if refreshed => {
                return Err(ApiError::Forbidden("the token's user may not act for another user".into()));
            }
            Begun::OtherUser => {
                // 403 if Postgres says so too; else the copy was old: begin again from the new one.
                if let Some(paid) = refresh_copy(order_id, caller.as_deref()).await? {
                    return Ok(paid);
                }
                refreshed = true;
                continue;
            }
            Begun::NoCopy if refreshed => {
                return Err(ApiError::Unavailable(format!("the plan copy of order {order_id} cannot be stored")));
            }
            Begun::NoCopy => {
                // Unknown order (404), or its copy was never written.
                if let Some(paid) = refresh_copy(order_id, caller.as_deref()).await? {
                    return Ok(paid);
                }
                refreshed = true;
                continue;
            }
        };
        let now = clock.now_ms();
        let mut record = Record::new(plan.clone(), now).with_drive_limit(drive_limit);
        let lease = Lease { saga_id: &plan.saga_id, owner: &owner };
        let mut answered = ticket.answers(leading).await;
        counted.merge(std::mem::take(&mut answered.led));
        // Whether the shared batch already ended the saga with the answers it gave.
        let settled = answered.settled;
        let steps = AnsweredSteps::new(answered.steps);
        let report = drive(&plan, &steps, &clock, &lease, &inline_policy(), "checkout").await;
        counted.saga_drives(1, report.compensations(&order_domain::saga::CHECKOUT));
        let now = clock.now_ms();
        record.apply(&report, now);
        match report.result {
            DriveResult::Final { .. } => {
                if settled || saga_store::save(&record, &owner, SagaNext::Final, now).await? {
                    if started_from_an_old_copy(&record) && !refreshed {
                        // The order has changed since its copy was written (or the copy was
                        // behind): check out what the order is now.
                        if let Some(paid) = refresh_copy(order_id, caller.as_deref()).await? {
                            return Ok(paid);
                        }
                        refreshed = true;
                        continue;
                    }
                    return Ok(outcome_reply(&record));
                }
            }
            DriveResult::Retry { .. } => {
                let due = now + retry_delay_ms(record.drives);
                let written = saga_store::save(&record, &owner, SagaNext::RetryAt(due), now).await?;
                if written && record.state == State::Stuck {
                    return Ok(outcome_reply(&record));
                }
                saga_store::ring_doorbell().await;
            }
            DriveResult::Fenced => {}
        }
        // Someone else (the worker) owns the saga now: wait for its outcome.
        return wait_for(order_id, &plan.saga_id, started).await;
    }
}

/// How many drives a new saga gets before it is stuck: the application variable
/// `saga_max_drives`; a value that is not a whole number from 1 is a deployment error (500).
pub(crate) async fn drive_limit() -> Result<u32, ApiError> {
    let raw = spin_kit::vars::get("saga_max_drives").await?;
    parse_drive_limit(&raw).map_err(ApiError::Misconfigured)
}

/// Reads the order from Postgres and refreshes its plan copy: the reply if it is already paid,
/// `None` if a checkout should begin again; 404 for an unknown order, 403 for another user's
/// (where tokens are required: `caller`).
async fn refresh_copy(order_id: &str, caller: Option<&str>) -> Result<Option<Reply>, ApiError> {
    let stored = plan_copy::refresh(order_id).await?;
    if caller.is_some_and(|caller| caller != stored.order.user_id) {
        return Err(ApiError::Forbidden("the token's user may not act for another user".into()));
    }
    Ok(stored.order.paid.then(|| {
        let mut reply = paid_reply(order_id, None);
        let mut paid = Tally::new();
        paid.checkout(CheckoutOutcome::Paid);
        spin_kit::metrics::add(&mut reply, paid);
        reply
    }))
}

/// Whether the saga failed because "mark paid" found the order changed since the plan was read.
fn started_from_an_old_copy(record: &Record) -> bool {
    record.state == State::Failed && record.reason.as_deref() == Some(ORDER_CHANGED)
}

/// Waits for the saga's outcome (at most until [`WAIT_LIMIT_MS`] after `started`).
async fn wait_for(order_id: &str, saga_id: &str, started: u64) -> Result<Reply, ApiError> {
    match saga_runner::wait_for_end::<Plan>(saga_id, started, WAIT_LIMIT_MS).await? {
        Some(record) => Ok(outcome_reply(&record)),
        None => Err(ApiError::InProgress(format!(
            "checkout of order {order_id} is still in progress (saga {saga_id}); see /orders/checkout/{order_id}/status"
        ))),
    }
}

fn paid_reply(order_id: &str, saga_id: Option<&str>) -> Reply {
    respond::ok(&serde_json::json!({ "order_id": order_id, "paid": true, "saga_id": saga_id }))
}

/// 200 when the saga paid the order; 409 with the reason when it was refused; 400 when a
/// participant called it invalid (the order cannot be paid as it is); 503 when it is stuck.
fn outcome_reply(record: &Record) -> Reply {
    let mut reply = outcome_answer(record);
    if let Some(outcome) = record.checkout_outcome() {
        let mut tally = Tally::new();
        tally.checkout(outcome);
        spin_kit::metrics::add(&mut reply, tally);
    }
    reply
}

fn outcome_answer(record: &Record) -> Reply {
    let reason = record.reason.as_deref().unwrap_or("unknown reason");
    let saga_id = &record.plan.saga_id;
    match record.state {
        State::Paid => paid_reply(&record.plan.order_id, Some(saga_id)),
        State::Failed if record.failed_as_invalid() => {
            respond::error(&OrderError::CheckoutInvalid { reason: reason.into() }.into())
        }
        State::Stuck => respond::error(&ApiError::InProgress(format!(
            "checkout of order {} is stuck (saga {saga_id}, {} drives: {reason}); it waits for an operator: POST /orders/saga/{saga_id}/redrive",
            record.plan.order_id, record.drives
        ))),
        _ => respond::error(&OrderError::CheckoutRefused { reason: reason.into() }.into()),
    }
}

/// `GET /orders/checkout/:order_id/status`: the order's current saga, its state and history.
pub async fn checkout_status(req: Request) -> Result<Reply, ApiError> {
    let order_id = parse_id("order_id", route::param(&req, "order_id")?)?;
    let caller = spin_kit::auth::caller(&req).await?;
    let stored = load(order_id).await?;
    if let Some(claims) = caller {
        spin_kit::auth::require_same_user(&claims, &stored.order.user_id)?;
    }
    let saga = match saga_store::current_attempt(order_id, stored.generation).await? {
        Some(attempt) => saga_store::load::<Plan>(&Plan::saga_id(order_id, stored.generation, attempt)).await?,
        None => None,
    };
    let saga_json = saga.map(|r| {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        v["saga_id"] = serde_json::Value::String(r.plan.saga_id.clone());
        v["attempt"] = serde_json::Value::from(r.plan.attempt);
        v
    });
    Ok(respond::ok(&serde_json::json!({
        "order_id": order_id,
        "paid": stored.order.paid,
        "generation": stored.generation,
        "saga": saga_json,
    })))
}
