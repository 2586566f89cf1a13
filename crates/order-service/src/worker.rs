//! The saga worker, in two halves that Spin's rules keep apart.
//!
//! * [`wake`] runs in the Redis-triggered component `orders-saga-worker`, which Spin runs in a
//!   process of its own (`spin up -c orders-saga-worker`). Woken by a Redis message (a doorbell,
//!   a lease or alarm expiring), it looks whether any saga is due and, if so, asks the order
//!   service's HTTP endpoint `POST /orders/saga/drain` to drive them. It calls no other
//!   component: Spin allows local service chaining (`*.spin.internal`) only to HTTP-trigger
//!   components, and refuses to start an app whose Redis-trigger component asks for it.
//! * [`drain`] runs in the HTTP component `orders-saga-drain`: it claims the due sagas in
//!   batches and drives them concurrently, reaching stock and payment by service chaining, as a
//!   checkout does, until none is due or its time is up.
//!
//! The message itself carries nothing: Spin's Redis trigger delivers each message once, to one
//! invocation at a time, with no redelivery, so the work lives in Redis (`orders:sagas:active`)
//! and any message, or several, lead to the same drain.

use crate::saga_runner;
use crate::saga_store::{self, LEASE_MS, WallClock, unique_token};
use market_core::ApiError;
use market_core::metrics::Tally;
use order_domain::rental::AnyRecord;
use order_domain::saga::{Clock, RetryPolicy};
use serde::{Deserialize, Serialize};
use spin_kit::concurrent::join_all;
use spin_kit::{Reply, Request, respond, vars};

/// Sagas claimed and driven at once.
const BATCH: usize = 32;
/// Longest one drain request drives sagas before it answers (`more` then says whether any is
/// still due; the worker asks again).
const MAX_DRAIN_MS: u64 = 10_000;
/// Longest one worker invocation keeps asking for drains (the alarm the claims armed wakes the
/// next one).
const MAX_WAKE_MS: u64 = 30_000;
/// The header that carries the drain token (the application variable `saga_drain_token`).
pub const DRAIN_TOKEN_HEADER: &str = "x-saga-drain-token";

fn worker_policy() -> RetryPolicy {
    RetryPolicy { backoff_ms: vec![50, 200], renew_every_ms: LEASE_MS / 3 }
}

/// What one drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainReport {
    /// Sagas claimed and driven.
    pub driven: usize,
    /// Whether it stopped for time with sagas still due.
    pub more: bool,
}

/// `POST /orders/saga/drain`: drives every due saga (for at most [`MAX_DRAIN_MS`]). Only the
/// worker calls it, with the drain token; without it the route answers 404, as if absent.
pub async fn drain_endpoint(req: Request) -> Result<Reply, ApiError> {
    let expected = vars::get("saga_drain_token").await?;
    let given = req.headers().get(DRAIN_TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if expected.is_empty() || !same_secret(given, expected.as_bytes()) {
        return Err(ApiError::NotFound("no such route".into()));
    }
    let mut counted = Tally::new();
    let mut reply = respond::ok(&drain_counting(MAX_DRAIN_MS, &mut counted).await?);
    spin_kit::metrics::add(&mut reply, counted);
    Ok(reply)
}

/// Compares two secrets in a time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Drives every due saga, for at most `budget_ms`. Errors are Redis failures: the next message
/// retries.
pub async fn drain(budget_ms: u64) -> Result<DrainReport, ApiError> {
    drain_counting(budget_ms, &mut Tally::new()).await
}

/// [`drain`], adding the drives and their compensations to `counted`.
async fn drain_counting(budget_ms: u64, counted: &mut Tally) -> Result<DrainReport, ApiError> {
    let clock = WallClock;
    let started = clock.now_ms();
    let owner = unique_token("worker");
    let mut report = DrainReport::default();
    loop {
        let claimed = saga_store::claim(&owner, BATCH, clock.now_ms()).await?;
        if claimed.is_empty() {
            return Ok(report);
        }
        report.driven += claimed.len();
        let driven = claimed.len() as u64;
        let drives = claimed.into_iter().map(|record| {
            let saga_id = record.saga_id().to_string();
            spin_kit::request_context::with_field("saga_id", saga_id, drive_one(record, &owner))
        });
        let compensations: u64 = join_all(drives.collect()).await.into_iter().sum();
        counted.saga_drives(driven, compensations);
        if clock.now_ms().saturating_sub(started) > budget_ms {
            report.more = true;
            return Ok(report);
        }
    }
}

/// The Redis-triggered worker's whole job: while a saga is due, ask the drain endpoint to drive
/// the due ones. Errors (Redis or the HTTP app unreachable, a refused token) end the invocation;
/// the next doorbell or alarm tries again.
///
/// Every invocation first records the worker's heartbeat (`crate::ops`), whatever happens next,
/// and again after each drain: a worker busy draining is alive, and one whose drains fail still
/// runs (the health checks tell "not running" from "running but failing" by the heartbeat).
pub async fn wake() -> anyhow::Result<()> {
    let clock = WallClock;
    let started = clock.now_ms();
    beat().await;
    while saga_store::any_due(clock.now_ms()).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        let report = request_drain().await;
        beat().await;
        let report = report?;
        if !report.more || clock.now_ms().saturating_sub(started) > MAX_WAKE_MS {
            break;
        }
    }
    Ok(())
}

/// Records the heartbeat; a failure (Redis unreachable) is not the worker's to report: the
/// drain that follows fails on it too, and the checks see Redis down.
async fn beat() {
    let _ = crate::ops::record_worker_heartbeat().await;
}

async fn request_drain() -> anyhow::Result<DrainReport> {
    let url = vars::get("saga_drain_url").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = vars::get("saga_drain_token").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(&url)
        .header(DRAIN_TOKEN_HEADER, token)
        .header(http::header::CONTENT_LENGTH, 0)
        .body(String::new())?;
    let answer = spin_kit::chain::send(request).await.map_err(|e| anyhow::anyhow!("drain request: {e}"))?;
    if answer.status != 200 {
        anyhow::bail!("{url} answered {}: {}", answer.status, answer.message());
    }
    Ok(serde_json::from_slice(&answer.body)?)
}

/// Drives one claimed saga, of any workflow; the compensation steps it performed.
async fn drive_one(record: AnyRecord, owner: &str) -> u64 {
    let saga_id = record.saga_id().to_string();
    let (_, driven) = saga_runner::drive_any(record, owner, &worker_policy(), "worker").await;
    if let Err(e) = driven.written {
        spin_kit::log::write(
            spin_kit::log::Level::Warn,
            format_args!("saga {saga_id} record not written ({e}); its lease expires and it is driven again"),
            &[("saga_id", &saga_id)],
        );
    }
    driven.compensations
}
