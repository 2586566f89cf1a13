//! What an operator's endpoints (`/metrics`, health) read of the order service: the saga table's
//! gauges and the saga worker's heartbeat, read through this library so that no other
//! component names the order service's Redis keys.

use crate::saga_store::WallClock;
use market_core::ApiError;
use market_core::metrics::SagaGauges;
use order_domain::redis_scripts::{SAGA_GAUGES, WORKER_HEARTBEAT};
use order_domain::saga::Clock;
use spin_kit::redis_store::{redis_idempotent, reply_texts, script_idempotent};

/// `GET /metrics` (component `metrics`): the app's counters with the saga table's gauges. The
/// order service holds the only gauges today, so the endpoint is here; it reads the counters
/// through `spin_kit::metrics`, their owner.
pub async fn metrics_endpoint(_req: spin_kit::Request) -> Result<spin_kit::Reply, ApiError> {
    spin_kit::metrics::exposition(saga_gauges().await?).await
}

/// Most running records [`saga_gauges`] reads to find the oldest (see `saga_gauges.lua`).
const MOST_RECORDS_READ: usize = 1_000;

/// The saga table's gauges and the worker's heartbeat age, in one Redis call.
pub async fn saga_gauges() -> Result<SagaGauges, ApiError> {
    let now = WallClock.now_ms();
    let reply = script_idempotent(&SAGA_GAUGES, [now.to_string(), MOST_RECORDS_READ.to_string()]).await?;
    let values: Vec<i64> = reply_texts(&reply).iter().map(|v| v.parse().unwrap_or(-1)).collect();
    let value = |i: usize| values.get(i).copied().unwrap_or(-1);
    let age = |i: usize| u64::try_from(value(i)).ok().map(|at| now.saturating_sub(at) as f64 / 1000.0);
    Ok(SagaGauges {
        running: u64::try_from(value(0)).unwrap_or(0),
        stuck: u64::try_from(value(1)).unwrap_or(0),
        oldest_running_seconds: age(2),
        oldest_due_seconds: age(3),
        worker_last_run_seconds: age(4),
    })
}

/// Milliseconds since the saga worker last ran (its heartbeat), if it ever did.
pub async fn worker_heartbeat_age_ms() -> Result<Option<u64>, ApiError> {
    let raw = redis_idempotent(|conn| async move { conn.get(WORKER_HEARTBEAT).await }).await?;
    let at = raw.and_then(|r| String::from_utf8_lossy(&r).parse::<u64>().ok());
    Ok(at.map(|at| WallClock.now_ms().saturating_sub(at)))
}
