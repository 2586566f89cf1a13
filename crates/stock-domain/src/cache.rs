//! The Redis read-through cache of `find`.
//!
//! Keys: `stock:cache:epoch` (a counter) and `stock:cache:<epoch>:<item_id>` → `"<version>:<stock>:<price>"`,
//! each entry with a TTL of [`TTL_SECONDS`].
//!
//! * A reader runs [`READ_SCRIPT`]: one round trip returns the current epoch and the entry if any.
//!   On a miss it reads Postgres and stores the row with [`WRITE_SCRIPT`] under the epoch it saw.
//! * A single-item write stores its new row with [`WRITE_SCRIPT`] (write-through) under the
//!   current epoch.
//! * `batch_init` changes many rows at once: it increments the epoch, which retires every entry.
//!
//! [`WRITE_SCRIPT`] keeps the entry with the highest version, so a slow reader holding an old row
//! can never overwrite a newer one; a reader that raced a `batch_init` writes into a retired epoch
//! that nobody reads. If Redis fails after Postgres changed, the entry may be stale until its TTL
//! ends: that is the bound on staleness, and why the TTL is short.

/// Seconds an entry lives.
pub const TTL_SECONDS: i64 = 60;

/// Returns `"<epoch>|"` on a miss or `"<epoch>|<entry>"` on a hit. ARGV[1] = item id.
pub const READ_SCRIPT: &str = "local e = redis.call('GET', 'stock:cache:epoch') or '0' \
     local v = redis.call('GET', 'stock:cache:' .. e .. ':' .. ARGV[1]) \
     if v then return e .. '|' .. v end return e .. '|'";

/// Stores an entry unless a newer version is there. ARGV: epoch ('' = current), item id,
/// version, entry, ttl. Returns 1 if stored.
pub const WRITE_SCRIPT: &str = "local e = ARGV[1] \
     if e == '' then e = redis.call('GET', 'stock:cache:epoch') or '0' end \
     local k = 'stock:cache:' .. e .. ':' .. ARGV[2] \
     local cur = redis.call('GET', k) \
     if cur then local v = tonumber(string.match(cur, '^(%-?%d+):')) \
       if v and v >= tonumber(ARGV[3]) then return 0 end end \
     redis.call('SET', k, ARGV[4], 'EX', ARGV[5]) return 1";

/// [`WRITE_SCRIPT`] for many items at once, in the current epoch. ARGV: ttl, then
/// (item id, version, entry) triples. Returns how many were stored.
pub const WRITE_MANY_SCRIPT: &str = "local e = redis.call('GET', 'stock:cache:epoch') or '0' \
     local n = 0 \
     for i = 2, #ARGV, 3 do \
       local k = 'stock:cache:' .. e .. ':' .. ARGV[i] \
       local cur = redis.call('GET', k) \
       local v = cur and tonumber(string.match(cur, '^(%-?%d+):')) \
       if not (v and v >= tonumber(ARGV[i + 1])) then \
         redis.call('SET', k, ARGV[i + 2], 'EX', ARGV[1]) n = n + 1 end \
     end return n";

/// The key of the epoch counter.
pub const EPOCH_KEY: &str = "stock:cache:epoch";

/// An item's row as cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedItem {
    pub version: i64,
    pub stock: i64,
    pub price: i64,
}

impl CachedItem {
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.version, self.stock, self.price)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, ':');
        Some(Self {
            version: parts.next()?.parse().ok()?,
            stock: parts.next()?.parse().ok()?,
            price: parts.next()?.parse().ok()?,
        })
    }
}

/// What [`READ_SCRIPT`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRead {
    pub epoch: String,
    /// `None` on a miss or an entry that does not decode (treated as a miss).
    pub item: Option<CachedItem>,
}

impl CacheRead {
    pub fn parse(reply: &str) -> Option<Self> {
        let (epoch, entry) = reply.split_once('|')?;
        if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self { epoch: epoch.to_string(), item: CachedItem::decode(entry) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let item = CachedItem { version: 7, stock: 0, price: 12 };
        assert_eq!(CachedItem::decode(&item.encode()), Some(item));
        assert_eq!(CachedItem::decode("7:x:1"), None);
        assert_eq!(CachedItem::decode(""), None);
    }

    #[test]
    fn read_replies_parse_hits_and_misses() {
        assert_eq!(CacheRead::parse("3|"), Some(CacheRead { epoch: "3".into(), item: None }));
        assert_eq!(
            CacheRead::parse("0|2:5:9"),
            Some(CacheRead { epoch: "0".into(), item: Some(CachedItem { version: 2, stock: 5, price: 9 }) })
        );
        assert_eq!(CacheRead::parse("garbage"), None);
        assert_eq!(CacheRead::parse("|1:2:3"), None);
    }
}
