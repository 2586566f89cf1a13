//! Postgres at the component variable `pg_address`: one connection per instance, and the
//! statement helpers every Postgres caller uses.
//!
//! Postgres: Spin pools connections per component and address, but checking one out of the pool
//! costs a round trip of its own (Spin's pool "cleans" the session: `DISCARD TEMP`, `RESET ALL`,
//! ...; with pgbench, one clean takes about six times the CPU of a `SELECT 1`). So each instance
//! also keeps ONE connection and shares it between the requests it serves at once (the host
//! pipelines their statements on it), and gives it back to the pool once it has served no request
//! for [`PG_IDLE_GRACE`] ([`request_started`] / [`RequestGuard`]).
//! - Exactly one: an instance that holds a connection never waits for another, so instances
//!   holding connections always finish their requests and return their connection to the host's
//!   pool (64 per component and address) for instances waiting on it. With several per instance,
//!   instances could hold part of the pool each while waiting for more, and stall (so concurrent
//!   first requests wait for one opening rather than open several).
//! - Given back when idle, because the host may run many more instances than the load needs: a
//!   burst of requests while instances start makes one instance each, and an idle one lives a
//!   second. At 128 concurrent checkouts, instances that kept their connection until retired held
//!   all 64 of a component's connections, the instances waiting for one stalled their checkouts
//!   past the saga lease (5 s), and some took 13 s.
//! - After a grace, because an instance under load often runs out of requests for a moment: given
//!   back at once, the connection cost 0.77 cleans per checkout at 32 concurrent checkouts; with
//!   the grace, 0.08.
//!
//! It heals like the Redis one: a connection-level failure drops it and the next statement
//! reopens. Statements are not retried (they may not be idempotent): the failure is returned as
//! 503.

use crate::forget_cached;
use market_core::ApiError;
use spin_sdk::pg;
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    static PG: RefCell<Option<Rc<pg::Connection>>> = const { RefCell::new(None) };
    static PG_OPENING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static REQUESTS_IN_FLIGHT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Counts the times this instance ran out of requests (see [`RequestGuard`]).
    static IDLE_PERIODS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How long an instance that serves no request keeps its Postgres connection for the next one
/// (20 and 100 ms measured alike; the shorter holds idle connections less).
const PG_IDLE_GRACE: std::time::Duration = std::time::Duration::from_millis(20);

/// Marks a request of this instance as in flight until the guard is dropped; once none has been
/// in flight for [`PG_IDLE_GRACE`], the instance's Postgres connection goes back to the host's
/// pool.
pub fn request_started() -> RequestGuard {
    REQUESTS_IN_FLIGHT.with(|n| n.set(n.get() + 1));
    RequestGuard(())
}

/// See [`request_started`].
pub struct RequestGuard(());

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let left = REQUESTS_IN_FLIGHT.with(|n| {
            n.set(n.get().saturating_sub(1));
            n.get()
        });
        if left == 0 && PG.with(|c| c.borrow().is_some()) {
            let idle_since = IDLE_PERIODS.with(|p| {
                p.set(p.get().wrapping_add(1));
                p.get()
            });
            // After the response, in this request's task: give the connection back unless a
            // request came (and perhaps went) meanwhile.
            spin_sdk::wit_bindgen::spawn(async move {
                spin_sdk::time::sleep(PG_IDLE_GRACE).await;
                let still_idle =
                    REQUESTS_IN_FLIGHT.with(|n| n.get()) == 0 && IDLE_PERIODS.with(|p| p.get()) == idle_since;
                if still_idle {
                    let idle = PG.with(|c| c.borrow_mut().take());
                    drop(idle);
                }
            });
        }
    }
}

/// This instance's Postgres connection at the component's `pg_address`, opened if needed (by
/// one request at a time: the others wait for it).
async fn pg() -> Result<Rc<pg::Connection>, ApiError> {
    loop {
        if let Some(conn) = PG.with(|c| c.borrow().clone()) {
            return Ok(conn);
        }
        if !PG_OPENING.with(|o| o.replace(true)) {
            break;
        }
        spin_sdk::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    /// Clears the "opening" flag however the opening ends (even if the request is dropped).
    struct Opening;
    impl Drop for Opening {
        fn drop(&mut self) {
            PG_OPENING.with(|o| o.set(false));
        }
    }
    let opening = Opening;
    let address = crate::vars::get("pg_address").await?;
    let conn = Rc::new(pg::Connection::open(address).await.map_err(pg_failure)?);
    drop(opening);
    PG.with(|c| *c.borrow_mut() = Some(conn.clone()));
    Ok(conn)
}

/// Whether `e` says the connection itself is unusable (not that a statement was refused).
fn is_connection_failure(e: &pg::Error) -> bool {
    match e {
        pg::Error::PgError(pg::PgError::QueryFailed(pg::QueryError::DbError(db))) => {
            // 08: connection exception; 57: operator intervention (shutdown); 53: resources.
            ["08", "57", "53"].iter().any(|class| db.code.starts_with(class))
        }
        pg::Error::Decode(_) => false,
        _ => true,
    }
}

/// Forgets `conn` if it is this instance's connection and `e` says it is broken.
fn heal(conn: &Rc<pg::Connection>, e: &pg::Error) {
    if is_connection_failure(e) {
        forget_cached(&PG, conn);
    }
}

/// The SQLSTATE code of a query that Postgres refused, if that is what happened.
pub fn sqlstate(e: &pg::Error) -> Option<&str> {
    match e {
        pg::Error::PgError(pg::PgError::QueryFailed(pg::QueryError::DbError(db))) => Some(db.code.as_str()),
        _ => None,
    }
}

/// Maps a Postgres failure with no meaning for the caller: an unreachable server is 503, the rest 500.
pub fn pg_failure(e: pg::Error) -> ApiError {
    match &e {
        pg::Error::PgError(pg::PgError::ConnectionFailed(_)) => {
            ApiError::Unavailable(format!("Postgres unavailable: {e}"))
        }
        // 08xxx connection exceptions, 57P0x shutdown/cannot-connect-now: the server is going away.
        _ if sqlstate(&e).is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => {
            ApiError::Unavailable(format!("Postgres unavailable: {e}"))
        }
        _ => ApiError::Internal(format!("Postgres failed: {e}")),
    }
}

/// Runs `vacuum` (a `VACUUM (ANALYZE) <table>` of the caller's own table) after a bulk write that
/// has committed, such as a `batch_init` rewriting 100 000 rows: otherwise autovacuum cleans up
/// the dead row versions while the next load runs, and competes with it (measured under 32
/// concurrent checkouts right after a `batch_init` of 100 000 orders: 4–19 % of the CPU idle or
/// waiting on I/O with autovacuum at work, 0.5–2.5 % after a vacuum). A failure is logged, not
/// returned: the write itself is done.
pub async fn vacuum_after_bulk_write(vacuum: &str) {
    if let Err(e) = execute(vacuum, Vec::<pg::ParameterValue>::new()).await {
        crate::log::warn(format_args!("{vacuum} failed ({e}); autovacuum will do it"));
    }
}

/// Runs a statement and reads all its rows; any Postgres failure is mapped by [`pg_failure`].
pub async fn query(statement: &str, params: impl Into<Vec<pg::ParameterValue>>) -> Result<Vec<pg::Row>, ApiError> {
    query_unmapped(statement, params).await?.map_err(pg_failure)
}

/// Runs a statement and reads all its rows. The outer error is a failure to connect; the inner
/// one is Postgres's answer, left unmapped so that the caller can look at its SQLSTATE.
pub async fn query_unmapped(
    statement: &str,
    params: impl Into<Vec<pg::ParameterValue>>,
) -> Result<Result<Vec<pg::Row>, pg::Error>, ApiError> {
    let conn = pg().await?;
    let result = match conn.query(statement, params).await {
        Ok(result) => result.collect().await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        heal(&conn, e);
    }
    Ok(result)
}

/// Runs a statement that returns no rows; the number of rows it changed.
pub async fn execute(statement: &str, params: impl Into<Vec<pg::ParameterValue>>) -> Result<u64, ApiError> {
    let conn = pg().await?;
    conn.execute(statement, params).await.map_err(|e| {
        heal(&conn, &e);
        pg_failure(e)
    })
}

/// Runs a statement and returns the text column `column` of every row, in order.
pub async fn query_texts(
    statement: &str,
    params: impl Into<Vec<pg::ParameterValue>>,
    column: &str,
) -> Result<Vec<String>, ApiError> {
    let rows = query(statement, params).await?;
    rows.iter().map(|r| r.get(column).ok_or_else(|| ApiError::Internal(format!("a row has no {column}")))).collect()
}

/// Runs a statement that returns one row with a text column `column` (e.g. an `INSERT …
/// RETURNING id`, or a saga step's `SELECT f(…) AS outcome`) and reads that text.
pub async fn query_text(
    statement: &str,
    params: impl Into<Vec<pg::ParameterValue>>,
    column: &str,
) -> Result<String, ApiError> {
    let rows = query(statement, params).await?;
    rows.first()
        .and_then(|r| r.get(column))
        .ok_or_else(|| ApiError::Internal(format!("the statement returned no {column}")))
}

/// Runs a statement that returns one row with a text column `column` (e.g. an `INSERT …
/// RETURNING id`) and answers `200 {"<column>": "<value>"}`.
pub async fn create_returning(
    statement: &str,
    params: impl Into<Vec<pg::ParameterValue>>,
    column: &str,
) -> Result<crate::Reply, ApiError> {
    let value = query_text(statement, params, column).await?;
    Ok(crate::respond::ok(&serde_json::json!({ column: value })))
}
