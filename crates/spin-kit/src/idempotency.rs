//! The Redis side of `Idempotency-Key` (rules in `market_core::idempotency`).
//!
//! Keys live under the owning service's prefix, `<service>:idem:<key>`, where the service is the
//! first segment of the request path (`/payment/pay/...` → `payment:idem:...`). A record holds the
//! request's fingerprint (64 hex digits: method, path and body) and, once done, the response.
//! A keyed request's body is read before the handler runs, for the fingerprint; the handler gets
//! it from [`crate::body::bytes`] as usual.

use crate::redis_store::{args, redis_idempotent, reply_text, script_once};
use crate::{Reply, Request, body, respond};
use market_core::ApiError;
use market_core::idempotency::{self, CLAIM, DONE_TTL_SECONDS, Decision, PENDING_TTL_SECONDS, Record};
use std::future::Future;

/// A request that carries an `Idempotency-Key`.
pub struct KeyedRequest {
    key: String,
    service: String,
    fingerprint: String,
}

/// The request's `Idempotency-Key` with its owning service and fingerprint, and the request with
/// its body read (kept with it for the handler); no key: the request as it came (nothing read).
pub async fn keyed(req: Request) -> Result<(Request, Option<KeyedRequest>), ApiError> {
    let Some(key) = req.headers().get("idempotency-key") else {
        return Ok((req, None));
    };
    let key = String::from_utf8_lossy(key.as_bytes()).into_owned();
    let req = body::buffer(req).await?;
    let path = req.uri().path();
    let keyed = KeyedRequest {
        key,
        service: path.trim_start_matches('/').split('/').next().unwrap_or("").to_string(),
        fingerprint: idempotency::fingerprint(req.method().as_str(), path, body::buffered(&req).unwrap_or_default()),
    };
    Ok((req, Some(keyed)))
}

/// Runs `work` at most once per `Idempotency-Key`; errors are answered as [`crate::serve`]
/// answers them, under `request_id`.
pub async fn once<Fut>(request: KeyedRequest, request_id: &str, work: Fut) -> Reply
where
    Fut: Future<Output = Reply>,
{
    let KeyedRequest { key: raw_key, service, fingerprint } = request;
    let key = match idempotency::check_key(&raw_key) {
        Ok(k) => format!("{service}:idem:{k}"),
        Err(e) => return crate::fail(&e, request_id),
    };
    match claim(&key, &fingerprint).await {
        Err(e) => return crate::fail(&e, request_id),
        Ok(Decision::Refuse(e)) => return crate::fail(&e, request_id),
        Ok(Decision::Replay { status, body }) => {
            let mut reply = respond::raw_json(status, body);
            reply.headers_mut().insert("idempotent-replayed", http::HeaderValue::from_static("true"));
            return reply;
        }
        Ok(Decision::Execute) => {}
    }
    let reply = work.await;
    record(&key, fingerprint, &reply).await;
    reply
}

async fn claim(key: &str, fingerprint: &str) -> Result<Decision, ApiError> {
    let pending = Record::Pending { fingerprint: fingerprint.to_string() }.encode();
    let ttl = PENDING_TTL_SECONDS.to_string();
    // Not retried: a retry after a lost reply would find our own claim and refuse us.
    let reply = script_once(&CLAIM, [key, &pending, &ttl]).await?;
    let prior = reply_text(&reply).unwrap_or_default();
    if prior.is_empty() {
        return Ok(Decision::Execute);
    }
    let prior = Record::decode(&prior)
        .ok_or_else(|| ApiError::Internal(format!("unreadable idempotency record under {key}")))?;
    Ok(idempotency::decide(Some(prior), fingerprint))
}

/// Records a final response for replays, or frees the key after a server error.
async fn record(key: &str, fingerprint: String, reply: &Reply) {
    let status = reply.status().as_u16();
    let result = if idempotency::is_recorded(status) {
        let done = Record::Done { fingerprint, status, body: reply.body().clone() }.encode();
        let ttl = DONE_TTL_SECONDS.to_string();
        redis_idempotent(|conn| {
            let a = args([key, &done, "EX", &ttl]);
            async move { conn.execute("SET", a).await }
        })
        .await
        .map(|_| ())
    } else {
        redis_idempotent(|conn| async move { conn.del(&[key.to_string()]).await }).await.map(|_| ())
    };
    if let Err(e) = result {
        // The claim expires by itself; until then retries get 409 rather than a second execution.
        crate::log::warn(format_args!("idempotency record for {key} not written: {e}"));
    }
}
