//! Redis at the component variable `redis_address`, and the helpers every Redis caller uses.
//!
//! Spin's `open` makes a new TCP connection per call, so each instance keeps one and shares it
//! between the requests it serves (instances are reused: up to 128 requests, 16 at once). The
//! connection heals: one that errors is forgotten and the next use reopens it; an idempotent
//! operation is retried once on the fresh connection. Correctness never depends on the reuse:
//! with one request per instance every request simply opens its own.

use crate::forget_cached;
use market_core::ApiError;
use market_core::script::{Script, is_noscript};
use spin_sdk::redis::{self, RedisParameter, RedisResult};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::thread::LocalKey;

type Slot = RefCell<Option<Rc<redis::Connection>>>;

thread_local! {
    static REDIS: Slot = const { RefCell::new(None) };
    /// The connection to the metrics' database, when it is not the one of `redis_address`.
    static METRICS_REDIS: Slot = const { RefCell::new(None) };
    /// The connection to the token revocation list's database, when it is not the one of
    /// `redis_address`.
    static AUTH_REDIS: Slot = const { RefCell::new(None) };
}

async fn redis_connection() -> Result<Rc<redis::Connection>, ApiError> {
    cached_connection(&REDIS, "redis_address").await
}

async fn cached_connection(
    slot: &'static LocalKey<Slot>,
    variable: &'static str,
) -> Result<Rc<redis::Connection>, ApiError> {
    if let Some(conn) = slot.with(|r| r.borrow().clone()) {
        return Ok(conn);
    }
    let address = crate::vars::get(variable).await?;
    let conn = Rc::new(
        redis::Connection::open(&address)
            .await
            .map_err(|e| ApiError::Unavailable(format!("cannot connect to Redis: {e}")))?,
    );
    slot.with(|r| *r.borrow_mut() = Some(conn.clone()));
    Ok(conn)
}

/// Runs `op` once (no retry: a lost reply may have applied it) on the Redis at the variable
/// `metrics_redis_address`: the instance's connection when that is also its `redis_address`,
/// otherwise a second connection the instance keeps for it. A failure drops the connection.
pub(crate) async fn on_metrics_redis<T, F, Fut>(op: F) -> Result<T, ApiError>
where
    F: FnOnce(Rc<redis::Connection>) -> Fut,
    Fut: Future<Output = Result<T, redis::Error>>,
{
    on_redis_at(&METRICS_REDIS, "metrics_redis_address", op).await
}

/// Runs `op` once, as [`on_metrics_redis`], on the Redis at the variable
/// `auth_revocations_address` (where the accounts service lists revoked tokens).
pub(crate) async fn on_auth_redis<T, F, Fut>(op: F) -> Result<T, ApiError>
where
    F: FnOnce(Rc<redis::Connection>) -> Fut,
    Fut: Future<Output = Result<T, redis::Error>>,
{
    on_redis_at(&AUTH_REDIS, "auth_revocations_address", op).await
}

/// Runs a read-only script on the Redis of [`on_auth_redis`].
pub(crate) async fn auth_script<S: AsRef<str>>(
    script: &Script,
    argv: impl IntoIterator<Item = S>,
) -> Result<Vec<RedisResult>, ApiError> {
    let argv = args(argv);
    on_auth_redis(|conn| async move { run_script(&conn, script, &argv).await }).await
}

/// `op` on the Redis at `variable`: the instance's `redis_address` connection when the addresses
/// are the same, otherwise the one kept in `own_slot`.
async fn on_redis_at<T, F, Fut>(own_slot: &'static LocalKey<Slot>, variable: &'static str, op: F) -> Result<T, ApiError>
where
    F: FnOnce(Rc<redis::Connection>) -> Fut,
    Fut: Future<Output = Result<T, redis::Error>>,
{
    let address = crate::vars::get(variable).await?;
    let shared = crate::vars::get("redis_address").await.is_ok_and(|own| own == address);
    let (slot, variable) = if shared { (&REDIS, "redis_address") } else { (own_slot, variable) };
    let conn = cached_connection(slot, variable).await?;
    op(conn.clone()).await.map_err(|e| {
        forget_cached(slot, &conn);
        redis_failure(e)
    })
}

/// Runs a script with [`on_metrics_redis`].
pub(crate) async fn metrics_script_once<S: AsRef<str>>(
    script: &Script,
    argv: impl IntoIterator<Item = S>,
) -> Result<Vec<RedisResult>, ApiError> {
    let argv = args(argv);
    on_metrics_redis(|conn| async move { run_script(&conn, script, &argv).await }).await
}

/// A Redis connection of its own (not the instance's shared one), for a blocking command such
/// as `BLMPOP` that would hold up every other request's commands on the shared connection.
pub async fn dedicated_redis_connection() -> Result<redis::Connection, ApiError> {
    let address = crate::vars::get("redis_address").await?;
    redis::Connection::open(&address).await.map_err(|e| ApiError::Unavailable(format!("cannot connect to Redis: {e}")))
}

fn forget(conn: &Rc<redis::Connection>) {
    forget_cached(&REDIS, conn);
}

fn redis_failure(e: redis::Error) -> ApiError {
    ApiError::Unavailable(format!("Redis failed: {e}"))
}

/// Runs an idempotent Redis operation on this instance's connection. On failure the connection
/// is dropped and the operation retried once on a fresh one (a Redis restart breaks every cached
/// connection; the retry makes that invisible). Errors end as 503.
pub async fn redis_idempotent<T, F, Fut>(op: F) -> Result<T, ApiError>
where
    F: Fn(Rc<redis::Connection>) -> Fut,
    Fut: Future<Output = Result<T, redis::Error>>,
{
    let conn = redis_connection().await?;
    match op(conn.clone()).await {
        Ok(value) => Ok(value),
        Err(_) => {
            forget(&conn);
            let fresh = redis_connection().await?;
            op(fresh.clone()).await.map_err(|e| {
                forget(&fresh);
                redis_failure(e)
            })
        }
    }
}

/// Runs a Redis command that must not be repeated blindly: a failure drops the connection and
/// is returned (503) without a retry.
pub async fn redis_once<T, F, Fut>(op: F) -> Result<T, ApiError>
where
    F: FnOnce(Rc<redis::Connection>) -> Fut,
    Fut: Future<Output = Result<T, redis::Error>>,
{
    let conn = redis_connection().await?;
    op(conn.clone()).await.map_err(|e| {
        forget(&conn);
        redis_failure(e)
    })
}

/// Runs a Lua script that is idempotent, like [`redis_idempotent`]: retried once on a fresh
/// connection. See [`run_script`] for how.
pub async fn script_idempotent<S: AsRef<str>>(
    script: &Script,
    argv: impl IntoIterator<Item = S>,
) -> Result<Vec<RedisResult>, ApiError> {
    let argv = args(argv);
    let argv = &argv;
    redis_idempotent(|conn| async move { run_script(&conn, script, argv).await }).await
}

/// Runs a Lua script that must not be repeated blindly, like [`redis_once`]. See [`run_script`]
/// for how.
pub async fn script_once<S: AsRef<str>>(
    script: &Script,
    argv: impl IntoIterator<Item = S>,
) -> Result<Vec<RedisResult>, ApiError> {
    let argv = args(argv);
    redis_once(|conn| async move { run_script(&conn, script, &argv).await }).await
}

/// The only way a script runs: `EVALSHA <sha1> 0 <argv...>` (the 40-digit SHA-1 instead of the
/// source), and, if Redis answers `NOSCRIPT` (it does not have the script cached: it was
/// restarted, or never ran it), `EVAL <source> 0 <argv...>`, which runs it and caches it for the
/// next `EVALSHA`.
///
/// The fallback is safe for scripts that must not run twice ([`script_once`]) too: a `NOSCRIPT`
/// answer means the script did not run at all, so `EVAL` runs it for the first time. An error of
/// the `EVAL` (or any other error of the `EVALSHA`) is returned as it is, for the caller's
/// retry rules. How a `NOSCRIPT` answer reaches a component: [`is_noscript`].
async fn run_script(
    conn: &redis::Connection,
    script: &Script,
    argv: &[RedisParameter],
) -> Result<Vec<RedisResult>, redis::Error> {
    // The arguments are copied into each command sent (`execute` takes them by value): once, and
    // once more only on the rare fallback.
    let call = |first: &str| args([first, "0"]).into_iter().chain(argv.iter().cloned());
    match conn.execute("EVALSHA", call(script.sha1())).await {
        Err(redis::Error::Other(message)) if is_noscript(&message) => conn.execute("EVAL", call(script.source())).await,
        reply => reply,
    }
}

/// Builds the argument list of a Redis `execute` call.
pub fn args<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Vec<RedisParameter> {
    values.into_iter().map(|v| RedisParameter::Binary(v.as_ref().as_bytes().to_vec())).collect()
}

/// One value of an `execute` reply as text (`None` for nil).
fn text(value: &RedisResult) -> Option<String> {
    match value {
        RedisResult::Binary(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        RedisResult::Status(s) => Some(s.clone()),
        RedisResult::Int64(n) => Some(n.to_string()),
        RedisResult::Nil => None,
    }
}

/// The first value of an `execute` reply as text, if there is one.
pub fn reply_text(reply: &[RedisResult]) -> Option<String> {
    reply.first().and_then(text)
}

/// Every value of an `execute` reply as text (nil as "").
pub fn reply_texts(reply: &[RedisResult]) -> Vec<String> {
    reply.iter().map(|v| text(v).unwrap_or_default()).collect()
}
