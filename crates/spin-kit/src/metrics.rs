//! Counting what the components do, for `GET /metrics` (owner of the Redis key prefix
//! `metrics:`, in database 0: the one database every service's components can share, as the
//! order service keeps database 1 for its saga table and its key-expiry events).
//!
//! What is counted, and how it is rendered, is `market_core::metrics`. Each request's counts
//! ([`crate::serve`]: its route's latency and status, and what the handler added to its reply
//! with [`add`]: a checkout's outcome, saga drives, a batch's size) join the instance's pending
//! counts, which one task at a time writes in one Redis call; the counts of the requests that
//! finish while a call is in flight go in the next (group commit). No answer waits for it, and a
//! Redis failure loses the counts of that call, never an answer. There is no timer: a task
//! waiting on one in an instance held back that instance's service-chained calls
//! (docs/performance.md).

use crate::redis_store::{args, metrics_script_once, on_metrics_redis, reply_texts};
use crate::{ApiError, Reply};
use market_core::metrics::{CONTENT_TYPE, COUNT, COUNTERS_KEY, SagaGauges, Tally, render};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

thread_local! {
    /// Counts not yet written.
    static PENDING: RefCell<Tally> = RefCell::new(Tally::new());
    /// Whether a task is writing [`PENDING`].
    static FLUSHING: Cell<bool> = const { Cell::new(false) };
}

/// Adds `tally` to the counts the request that answers `reply` will make.
pub fn add(reply: &mut Reply, tally: Tally) {
    match reply.extensions_mut().get_mut::<Tally>() {
        Some(counted) => counted.merge(tally),
        None => {
            reply.extensions_mut().insert(tally);
        }
    }
}

/// Counts the request that answered `reply` (taking the handler's tally out of it): its counts
/// join the instance's pending tally.
pub(crate) fn count_request(route: &str, reply: &mut Reply, micros: u64) {
    let mut tally = reply.extensions_mut().remove::<Tally>().unwrap_or_default();
    tally.request(route, reply.status().as_u16(), micros);
    if reply.headers().contains_key("idempotent-replayed") {
        tally.replay(route);
    }
    count(tally);
}

/// Adds `tally` to the instance's pending counts (also for work outside a request, such as a
/// batch a leader sends in the background), and starts the task that writes them if none runs.
pub fn count(tally: Tally) {
    if tally.is_empty() {
        return;
    }
    PENDING.with(|p| p.borrow_mut().merge(tally));
    if !FLUSHING.replace(true) {
        spin_sdk::wit_bindgen::spawn(flush());
    }
}

/// Writes what is pending in one call, again and again while counts came during the call: one
/// call in flight per instance, and the counts of the requests that finish meanwhile share the
/// next. Ends when a call finds nothing new.
async fn flush() {
    loop {
        let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if pending.is_empty() {
            FLUSHING.set(false);
            return;
        }
        // Counts that cannot be written are dropped: no answer depends on them.
        let _ = metrics_script_once(&COUNT, pending.argv()).await;
    }
}

/// `GET /metrics`: every counter, with the saga table's `gauges` (read by the caller through the
/// order service's library), as Prometheus text exposition format 0.0.4.
pub async fn exposition(gauges: SagaGauges) -> Result<Reply, ApiError> {
    let reply = on_metrics_redis(|conn| async move { conn.execute("HGETALL", args([COUNTERS_KEY])).await }).await?;
    let texts = reply_texts(&reply);
    let fields: BTreeMap<String, i64> =
        texts.chunks(2).filter_map(|p| Some((p.first()?.clone(), p.get(1)?.parse().ok()?))).collect();
    let body = render(&fields, &gauges);
    let mut answer = http::Response::new(String::new());
    let headers = answer.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    *answer.body_mut() = body;
    Ok(answer)
}
