//! What operators and the ops components (health checks, `/metrics`) read of the order service's
//! Redis table, and the saga worker's heartbeat, which this module owns: the worker writes it
//! ([`record_worker_heartbeat`]) every time it runs, the checks and the metrics read its age.
//! Other components reach these keys only through these functions.

use crate::saga_store::WallClock;
use market_core::ApiError;
use market_core::metrics::SagaGauges;
use order_domain::redis_scripts::{
    ACTIVE_SAGAS, SAGA_GAUGES, WORKER_HEARTBEAT, WORKER_HEARTBEAT_TTL_MS, worker_heartbeat_key,
};
use order_domain::saga::Clock;
pub use order_domain::worker_health::WorkerHealth;
use spin_kit::redis_store::{args, redis_idempotent, reply_texts, script_idempotent};
use spin_kit::vars;

/// The application variable that names a worker process (`worker_instance`: in Kubernetes its
/// pod's name), so that a worker deployment's probe reads its own process's heartbeat.
const WORKER_INSTANCE_VARIABLE: &str = "worker_instance";

/// The application variable that bounds the worker's silence while sagas are due (seconds).
const MAX_SILENCE_VARIABLE: &str = "worker_max_silence_seconds";

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

/// Records that a saga worker runs now: the shared heartbeat, and this process's own (named by
/// the component variable `worker_instance`, when it has one). Called by the worker on every
/// message, before it does anything that may fail.
pub async fn record_worker_heartbeat() -> Result<(), ApiError> {
    let now = WallClock.now_ms().to_string();
    let instance = worker_instance().await;
    let ttl = WORKER_HEARTBEAT_TTL_MS.to_string();
    redis_idempotent(|conn| {
        let (now, instance, ttl) = (now.clone(), instance.clone(), ttl.clone());
        async move {
            conn.execute("SET", args([WORKER_HEARTBEAT, now.as_str()])).await?;
            if let Some(instance) = instance {
                let key = worker_heartbeat_key(&instance);
                conn.execute("SET", args([key.as_str(), now.as_str(), "PX", ttl.as_str()])).await?;
            }
            Ok(())
        }
    })
    .await
}

/// Milliseconds since any saga worker last ran; `None` if none ever did (or its key is gone).
pub async fn worker_heartbeat_age_ms() -> Result<Option<u64>, ApiError> {
    age_of(WORKER_HEARTBEAT.to_string()).await
}

/// Milliseconds since the worker process named `instance` last ran; `None` if it has not.
pub async fn worker_instance_heartbeat_age_ms(instance: &str) -> Result<Option<u64>, ApiError> {
    age_of(worker_heartbeat_key(instance)).await
}

async fn age_of(key: String) -> Result<Option<u64>, ApiError> {
    let raw = redis_idempotent(|conn| {
        let key = key.clone();
        async move { conn.get(&key).await }
    })
    .await?;
    let at: Option<u64> = raw.and_then(|r| String::from_utf8_lossy(&r).parse().ok());
    Ok(at.map(|at| WallClock.now_ms().saturating_sub(at)))
}

/// Milliseconds the oldest due saga has been due (its lease ran out, or its retry time came);
/// `None` if no running saga is due.
pub async fn oldest_due_saga_age_ms() -> Result<Option<u64>, ApiError> {
    let now = WallClock.now_ms();
    let now_text = now.to_string();
    let reply = redis_idempotent(|conn| {
        let now = now_text.clone();
        async move {
            conn.execute("ZRANGEBYSCORE", args([ACTIVE_SAGAS, "-inf", now.as_str(), "WITHSCORES", "LIMIT", "0", "1"]))
                .await
        }
    })
    .await?;
    let texts = reply_texts(&reply);
    // [member, score]; a score may be written as a float by Redis.
    Ok(texts.get(1).and_then(|score| score.parse::<f64>().ok()).map(|due| now.saturating_sub(due as u64)))
}

/// The worker's health as the checks judge it, with the allowed silence from the application
/// variable `worker_max_silence_seconds`; `instance`: judge that worker process's heartbeat
/// instead of any worker's.
pub async fn worker_health(instance: Option<&str>) -> Result<WorkerHealth, ApiError> {
    let limit = vars::get(MAX_SILENCE_VARIABLE).await?;
    let max_silence_s: u64 = limit.trim().parse().map_err(|_| {
        ApiError::Misconfigured(format!("the variable {MAX_SILENCE_VARIABLE} is {limit:?}, not a number of seconds"))
    })?;
    let heartbeat_age_ms = match instance {
        Some(instance) => worker_instance_heartbeat_age_ms(instance).await?,
        None => worker_heartbeat_age_ms().await?,
    };
    let oldest_due_saga_age_ms = oldest_due_saga_age_ms().await?;
    Ok(WorkerHealth { heartbeat_age_ms, oldest_due_saga_age_ms, max_silence_ms: max_silence_s.saturating_mul(1000) })
}

/// This worker process's name (the variable `worker_instance`), if the component has one.
pub async fn worker_instance() -> Option<String> {
    vars::get(WORKER_INSTANCE_VARIABLE).await.ok().filter(|i| !i.is_empty())
}
