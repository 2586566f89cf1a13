//! The I/O of the `find` cache whose format and rules `stock_domain::cache` defines.
//! Cache failures never fail a request that Postgres can answer: they are logged and the cache
//! is bypassed (its TTL bounds any staleness a failed write-through leaves).

use market_core::ApiError;
use spin_kit::stores::{args, redis_idempotent, reply_text};
use stock_domain::cache::{CacheRead, CachedItem, EPOCH_KEY, READ_SCRIPT, TTL_SECONDS, WRITE_MANY_SCRIPT, WRITE_SCRIPT};

/// The cache's answer for `item_id`, or `None` when Redis could not be asked.
pub async fn read(item_id: &str) -> Option<CacheRead> {
    let reply = redis_idempotent(|conn| async move {
        conn.execute("EVAL", args([READ_SCRIPT, "0", item_id])).await
    })
    .await;
    match reply {
        Ok(reply) => reply_text(&reply).and_then(|text| CacheRead::parse(&text)),
        Err(e) => {
            eprintln!("stock cache read skipped: {e}");
            None
        }
    }
}

/// Stores `item` unless a newer version is cached. `epoch` is the one a reader saw, or `None`
/// for the current one (write-through).
pub async fn store(epoch: Option<&str>, item_id: &str, item: &CachedItem) {
    let epoch = epoch.unwrap_or("");
    let version = item.version.to_string();
    let entry = item.encode();
    let ttl = TTL_SECONDS.to_string();
    let result = redis_idempotent(|conn| {
        let args = args([WRITE_SCRIPT, "0", epoch, item_id, &version, &entry, &ttl]);
        async move { conn.execute("EVAL", args).await }
    })
    .await;
    if let Err(e) = result {
        eprintln!("stock cache write skipped for {item_id}: {e}");
    }
}

/// Retires every cached entry (after a change to many items). Unlike a skipped single write,
/// failing here would leave many stale entries, so the error is returned.
pub async fn retire_all() -> Result<(), ApiError> {
    redis_idempotent(|conn| async move { conn.incr(EPOCH_KEY).await }).await.map(|_| ())
}

/// Writes several items through to the cache in one round trip (after a reserve or release).
pub async fn store_many(items: &[(String, CachedItem)]) {
    if items.is_empty() {
        return;
    }
    let mut args = vec![WRITE_MANY_SCRIPT.to_string(), "0".to_string(), TTL_SECONDS.to_string()];
    for (id, item) in items {
        args.extend([id.clone(), item.version.to_string(), item.encode()]);
    }
    let params: Vec<_> = args.iter().map(|a| spin_sdk::redis::RedisParameter::Binary(a.as_bytes().to_vec())).collect();
    let result = redis_idempotent(|conn| {
        let params = params.clone();
        async move { conn.execute("EVAL", params).await }
    })
    .await;
    if let Err(e) = result {
        eprintln!("stock cache write-through skipped for {} items: {e}", items.len());
    }
}
