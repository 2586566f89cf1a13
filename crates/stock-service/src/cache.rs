//! The I/O of the `find` cache whose protocol `stock_domain::cache` defines.
//!
//! Writers must lock before they change Postgres (a writer that cannot, does not write); a
//! reader whose cache call fails simply reads Postgres. Unlocking and offering are best effort:
//! a lock left behind expires, and a row not offered is read from Postgres next time.

use market_core::ApiError;
use spin_kit::stores::{args, redis_idempotent, redis_once, reply_text};
use stock_domain::cache::{
    CacheRead, CachedItem, FREEZE_MS, FREEZE_SCRIPT, LOCK_MS, LOCK_SCRIPT, OFFER_SCRIPT, READ_SCRIPT, THAW_SCRIPT,
    TTL_SECONDS, UNLOCK_SCRIPT,
};

/// The cache's answer for `item_id`, or `None` when Redis could not be asked.
pub async fn read(item_id: &str) -> Option<CacheRead> {
    let reply = redis_idempotent(|conn| async move { conn.execute("EVAL", args([READ_SCRIPT, "0", item_id])).await }).await;
    match reply {
        Ok(reply) => reply_text(&reply).and_then(|text| CacheRead::parse(&text)),
        Err(e) => {
            eprintln!("stock cache read skipped: {e}");
            None
        }
    }
}

/// Offers a row a reader got from Postgres, under the epoch the reader saw.
pub async fn offer(epoch: &str, item_id: &str, item: &CachedItem) {
    let (version, entry, ttl) = (item.version.to_string(), item.encode(), TTL_SECONDS.to_string());
    let result = redis_idempotent(|conn| {
        let a = args([OFFER_SCRIPT, "0", epoch, item_id, &version, &entry, &ttl]);
        async move { conn.execute("EVAL", a).await }
    })
    .await;
    if let Err(e) = result {
        eprintln!("stock cache offer skipped for {item_id}: {e}");
    }
}

/// Counts this writer in on `item_ids` (required before changing them in Postgres).
pub async fn lock(item_ids: &[String]) -> Result<(), ApiError> {
    let a = args([LOCK_SCRIPT.to_string(), "0".to_string(), LOCK_MS.to_string()].into_iter().chain(item_ids.iter().cloned()));
    // Not retried: a lost reply would count this writer in twice (then its lock simply expires).
    redis_once(|conn| async move { conn.execute("EVAL", a).await }).await.map(|_| ())
}

/// Counts this writer out of `item_ids` and stores the rows it wrote.
pub async fn unlock(item_ids: &[String], rows: &[(String, CachedItem)]) {
    let mut values = vec![
        UNLOCK_SCRIPT.to_string(),
        "0".to_string(),
        TTL_SECONDS.to_string(),
        LOCK_MS.to_string(),
        item_ids.len().to_string(),
    ];
    values.extend(item_ids.iter().cloned());
    for (id, item) in rows {
        values.extend([id.clone(), item.version.to_string(), item.encode()]);
    }
    let a = args(values);
    let result = redis_once(|conn| async move { conn.execute("EVAL", a).await }).await;
    if let Err(e) = result {
        eprintln!("stock cache unlock skipped for {} items (the locks expire): {e}", item_ids.len());
    }
}

/// Before changing many items at once: retire every entry and freeze the cache.
pub async fn freeze() -> Result<(), ApiError> {
    let ms = FREEZE_MS.to_string();
    redis_idempotent(|conn| {
        let a = args([FREEZE_SCRIPT, "0", &ms]);
        async move { conn.execute("EVAL", a).await }
    })
    .await
    .map(|_| ())
}

/// After changing many items: retire what was stored meanwhile and thaw.
pub async fn thaw() {
    if let Err(e) = redis_idempotent(|conn| async move { conn.execute("EVAL", args([THAW_SCRIPT, "0"])).await }).await {
        eprintln!("stock cache thaw skipped (the freeze expires): {e}");
    }
}
