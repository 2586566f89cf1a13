//! The app's health endpoints, each its own component:
//!
//! * `GET /health/live` ([`live`]): the app answers — `200 {"status": "ok"}`, touching nothing.
//! * `GET /health/ready` ([`ready`]): can this process serve? Each check with its result and
//!   latency: Redis answers a `PING` with the app's credentials; Postgres answers with EACH
//!   service's own role (`stock_service`, `orders_service`, `payment_service`); the database has
//!   the migration this build expects ([`EXPECTED_MIGRATION`], the last file of
//!   `infra/migrations` when it was compiled); the saga worker was heard from within
//!   `worker_max_silence_seconds` while sagas are due. `200` when every required check passes,
//!   `503` otherwise.
//! * `GET /health/worker` ([`worker`]): the probe of the saga worker's own process (served there
//!   next to the Redis-triggered worker, see `infra/saga-worker`): Redis answers, and THIS worker
//!   process (the variable `worker_instance`) ran within the allowed silence while sagas are due.
//!
//! The worker check does not fail the HTTP app's readiness unless the variable
//! `health_ready_requires_worker` is `"true"`: a worker that is down does not stop checkouts (each
//! drives its own saga), and taking the HTTP replicas out of the load balancer would neither
//! restart the worker nor finish a saga; it would turn a late saga into an outage. The check is
//! always reported (`"required": false`); the worker's process has its own probe, which fails.
//!
//! Body: `{"status": "ok"|"fail", "checks": {"<name>": {"status": "ok"|"fail", "latency_ms": n,
//! "required": bool, "error"?: "...", ...}}}`.

use market_core::ApiError;
use order_service::ops::{self, WorkerHealth};
use serde_json::{Map, Value, json};
use spin_kit::concurrent::{join_all, within};
use spin_kit::{Reply, Request, respond, vars};
use spin_sdk::pg;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// The migration this build expects the database to have (the last of `infra/migrations`).
pub const EXPECTED_MIGRATION: &str = env!("EXPECTED_MIGRATION");

/// Longest one check may take; past it, it fails as "timed out" (a probe must answer quickly).
const CHECK_LIMIT: Duration = Duration::from_secs(2);

/// The services whose Postgres role is checked, with the component variable holding its address.
const PG_ROLES: [(&str, &str); 4] = [
    ("postgres_accounts", "accounts_pg_address"),
    ("postgres_stock", "stock_pg_address"),
    ("postgres_orders", "orders_pg_address"),
    ("postgres_payment", "payment_pg_address"),
];

/// `GET /health/live` → `200 {"status": "ok"}`.
pub async fn live(_req: Request) -> Result<Reply, ApiError> {
    Ok(respond::ok(&json!({ "status": "ok" })))
}

/// `GET /health/ready` → `200` when every required check passes, `503` otherwise; see the module.
pub async fn ready(_req: Request) -> Result<Reply, ApiError> {
    let worker_required = flag("health_ready_requires_worker").await?;
    let mut checks: Vec<Check> = vec![Check::new("redis", true, Box::pin(redis_ping()))];
    for (name, variable) in PG_ROLES {
        checks.push(Check::new(name, true, Box::pin(pg_select_one(variable))));
    }
    checks.push(Check::new("migrations", true, Box::pin(migration_applied("orders_pg_address"))));
    checks.push(Check::new("worker", worker_required, Box::pin(worker_check(None))));
    Ok(report(checks).await)
}

/// `GET /health/worker` → `200` when Redis answers and this worker process is not silent while
/// sagas are due, `503` otherwise.
pub async fn worker(_req: Request) -> Result<Reply, ApiError> {
    let instance = ops::worker_instance().await;
    let checks = vec![
        Check::new("redis", true, Box::pin(redis_ping())),
        Check::new("worker", true, Box::pin(async move { worker_check(instance.as_deref()).await })),
    ];
    Ok(report(checks).await)
}

/// What a check found beyond passing or failing (shown in its entry).
type Details = Map<String, Value>;
/// A check's outcome: details when it passed, the reason (and details) when it failed.
type Outcome = Result<Details, (String, Details)>;

struct Check<'a> {
    name: &'static str,
    required: bool,
    run: Pin<Box<dyn Future<Output = Outcome> + 'a>>,
}

impl<'a> Check<'a> {
    fn new(name: &'static str, required: bool, run: Pin<Box<dyn Future<Output = Outcome> + 'a>>) -> Check<'a> {
        Check { name, required, run }
    }
}

/// Runs the checks at once, each timed and bounded by [`CHECK_LIMIT`], and answers with them.
async fn report(checks: Vec<Check<'_>>) -> Reply {
    let timed = checks.into_iter().map(|check| async move {
        let started = Instant::now();
        let outcome = within(CHECK_LIMIT, check.run)
            .await
            .unwrap_or_else(|| Err((format!("timed out after {} ms", CHECK_LIMIT.as_millis()), Details::new())));
        (check.name, check.required, outcome, started.elapsed().as_millis() as u64)
    });
    let mut all_ok = true;
    let mut entries = Map::new();
    for (name, required, outcome, latency_ms) in join_all(timed.collect()).await {
        let (status, mut entry) = match outcome {
            Ok(details) => ("ok", details),
            Err((error, mut details)) => {
                all_ok &= !required;
                details.insert("error".into(), Value::String(error));
                ("fail", details)
            }
        };
        entry.insert("status".into(), json!(status));
        entry.insert("latency_ms".into(), json!(latency_ms));
        entry.insert("required".into(), json!(required));
        entries.insert(name.into(), Value::Object(entry));
    }
    let body = json!({ "status": if all_ok { "ok" } else { "fail" }, "checks": entries });
    respond::json(if all_ok { 200 } else { 503 }, &body)
}

/// A `"true"`/`"false"` application variable; anything else is a deployment error (500).
async fn flag(name: &'static str) -> Result<bool, ApiError> {
    match vars::get(name).await?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ApiError::Misconfigured(format!("the variable {name} is {other:?}, not \"true\" or \"false\""))),
    }
}

async fn redis_ping() -> Outcome {
    let reply = spin_kit::redis_store::redis_idempotent(|conn| async move {
        conn.execute("PING", Vec::<spin_sdk::redis::RedisParameter>::new()).await
    })
    .await
    .map_err(|e| (e.to_string(), Details::new()))?;
    match spin_kit::redis_store::reply_text(&reply).as_deref() {
        Some("PONG") => Ok(Details::new()),
        other => Err((format!("PING answered {other:?}"), Details::new())),
    }
}

/// Opens a connection with the address (and so the role) in the component variable `variable`
/// and runs `statement`; its rows.
async fn pg_rows(
    variable: &'static str,
    statement: &str,
    params: Vec<pg::ParameterValue>,
) -> Result<Vec<pg::Row>, String> {
    let address = vars::get(variable).await.map_err(|e| e.to_string())?;
    let conn = pg::Connection::open(address).await.map_err(|e| format!("cannot connect: {e}"))?;
    let result = conn.query(statement, params).await.map_err(|e| e.to_string())?;
    result.collect().await.map_err(|e| e.to_string())
}

async fn pg_select_one(variable: &'static str) -> Outcome {
    pg_rows(variable, "SELECT 1 AS one", vec![]).await.map(|_| Details::new()).map_err(|e| (e, Details::new()))
}

/// Whether `public.schema_migrations` (infra/migrate's record) has [`EXPECTED_MIGRATION`]. A
/// database ahead of this build (a later migration applied too) passes: migrations run before the
/// new version rolls out, and the old replicas keep serving meanwhile.
async fn migration_applied(variable: &'static str) -> Outcome {
    let mut details = Details::new();
    details.insert("expected".into(), json!(EXPECTED_MIGRATION));
    let rows = pg_rows(
        variable,
        "SELECT (SELECT max(version) FROM public.schema_migrations) AS latest, \
         EXISTS (SELECT 1 FROM public.schema_migrations WHERE version = $1) AS applied",
        vec![pg::ParameterValue::Str(EXPECTED_MIGRATION.to_string())],
    )
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return Err((e, details)),
    };
    let latest: Option<String> = rows.first().and_then(|r| r.get("latest"));
    let applied: bool = rows.first().and_then(|r| r.get("applied")).unwrap_or(false);
    details.insert("latest".into(), json!(latest));
    if applied { Ok(details) } else { Err((format!("migration {EXPECTED_MIGRATION} is not applied"), details)) }
}

/// The saga worker's health: of the process named `instance`, or of any worker.
async fn worker_check(instance: Option<&str>) -> Outcome {
    let health: WorkerHealth = ops::worker_health(instance).await.map_err(|e| (e.to_string(), Details::new()))?;
    let details = match serde_json::to_value(health) {
        Ok(Value::Object(details)) => details,
        _ => Details::new(),
    };
    if health.ok() {
        Ok(details)
    } else {
        let heard = match health.heartbeat_age_ms {
            Some(age) => format!("last heard from {age} ms ago"),
            None => "never heard from".to_string(),
        };
        Err((format!("sagas are due and the saga worker was {heard} (limit {} ms)", health.max_silence_ms), details))
    }
}
