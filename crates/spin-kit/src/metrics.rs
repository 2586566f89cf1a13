//! Counting what the components do, for `GET /metrics` (owner of the Redis key prefix
//! `metrics:`, in database 0: the one database every service's components can share, as the
//! order service keeps database 1 for its saga table and its key-expiry events).
//!
//! What is counted, and how it is rendered, is `market_core::metrics`. Each request's counts go
//! in one Redis call at its end ([`crate::serve`]): its route's latency and status, and what the
//! handler added to its reply with [`add`] (a checkout's outcome, saga drives, a batch's size).
//! The call is made by a task spawned as the reply is returned (the instance runs it to its end,
//! as it does a batch leader's work), so the answer never waits for it; a Redis failure loses
//! that request's counts, never its answer.

use crate::redis_store::{args, metrics_script_once, on_metrics_redis, reply_texts};
use crate::{ApiError, Reply};
use market_core::metrics::{CONTENT_TYPE, COUNT, COUNTERS_KEY, SagaGauges, Tally, render};
use std::collections::BTreeMap;

/// Adds `tally` to the counts the request that answers `reply` will make.
pub fn add(reply: &mut Reply, tally: Tally) {
    match reply.extensions_mut().get_mut::<Tally>() {
        Some(counted) => counted.merge(tally),
        None => {
            reply.extensions_mut().insert(tally);
        }
    }
}

/// Counts the request that answered `reply` (taking the handler's tally out of it) in a task of
/// its own, which runs on after the reply is returned (as a batch leader's work does): the answer
/// never waits for the count. Under Spin, an answer held back after the handler left a request
/// body unread (a refusal) can lose its connection.
pub(crate) fn count_request(route: &str, reply: &mut Reply, micros: u64) {
    let mut tally = reply.extensions_mut().remove::<Tally>().unwrap_or_default();
    tally.request(route, reply.status().as_u16(), micros);
    if reply.headers().contains_key("idempotent-replayed") {
        tally.replay(route);
    }
    spin_sdk::wit_bindgen::spawn(crate::request_context::bind(count(tally)));
}

/// Applies `tally` in one Redis call (for work outside a request, such as a batch a leader
/// sends in the background).
pub async fn count(tally: Tally) {
    if tally.is_empty() {
        return;
    }
    // A count that cannot be written is dropped: the request's answer does not depend on it.
    let _ = metrics_script_once(&COUNT, tally.argv()).await;
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
