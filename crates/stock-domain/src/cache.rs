//! The Redis read-through cache of `find`.
//!
//! Keys: `stock:cache:epoch` (a counter); `stock:cache:frozen` (set while a batch rewrites many
//! items); `stock:cache:<epoch>:<item_id>` → `"<version>:<stock>:<price>"` (an entry, TTL
//! [`TTL_SECONDS`]); `stock:cache:lock:<item_id>` → how many writers are changing the item
//! (TTL [`LOCK_MS`], renewed by each new writer).
//!
//! Postgres is the truth; the cache must never show a value Postgres no longer has, even when a
//! writer dies between its Postgres write and its cache write. The protocol:
//!
//! * **Writer** (add, subtract, reserve, release): [`LOCK_SCRIPT`] counts itself in on the items'
//!   locks and drops their entries; then the Postgres statement runs; then [`UNLOCK_SCRIPT`]
//!   counts itself out, and the last writer out of an item stores the newest row the item's
//!   writers wrote (write-through). A writer that cannot lock does not write (503). A writer that dies leaves
//!   its count, which expires: until then readers go to Postgres.
//! * **Reader** (find): [`READ_SCRIPT`] returns the epoch and the entry (or that the item is
//!   locked, or the cache frozen). On anything but a hit it reads Postgres and offers the row with
//!   [`OFFER_SCRIPT`], which stores it only if no writer holds the item, the cache is not frozen,
//!   and no newer version is there.
//! * **Batch** (`batch_init`): [`FREEZE_SCRIPT`] increments the epoch (retiring every entry) and
//!   freezes the cache (nothing is stored while frozen); after the statement, [`THAW_SCRIPT`]
//!   increments the epoch again and unfreezes. A batch that dies leaves a freeze that expires.
//!
//! The one window left: a reader that read Postgres before a write and then stalls for longer
//! than the writer's lock (or a batch's freeze) lives could store its old row, stale until the TTL.

/// Seconds an entry lives.
pub const TTL_SECONDS: i64 = 600;
/// How long a writer's lock lives (a writer normally releases it within milliseconds).
pub const LOCK_MS: i64 = 5_000;
/// How long a batch's freeze lives.
pub const FREEZE_MS: i64 = 120_000;

/// Returns `"<epoch>|"` on a miss, `"<epoch>|<entry>"` on a hit, `"<epoch>|L"` when a writer holds
/// the item and `"<epoch>|F"` when frozen. ARGV[1] = item id.
pub const READ_SCRIPT: &str = "local e = redis.call('GET', 'stock:cache:epoch') or '0' \
     if redis.call('EXISTS', 'stock:cache:frozen') == 1 then return e .. '|F' end \
     if redis.call('EXISTS', 'stock:cache:lock:' .. ARGV[1]) == 1 then return e .. '|L' end \
     local v = redis.call('GET', 'stock:cache:' .. e .. ':' .. ARGV[1]) \
     if v then return e .. '|' .. v end return e .. '|'";

/// A reader offers a row read from Postgres. ARGV: epoch it saw, item id, version, entry, ttl.
/// Stored (returns 1) only if not frozen, not held by a writer, and no newer version is there.
pub const OFFER_SCRIPT: &str = "if redis.call('EXISTS', 'stock:cache:frozen') == 1 then return 0 end \
     if redis.call('EXISTS', 'stock:cache:lock:' .. ARGV[2]) == 1 then return 0 end \
     local k = 'stock:cache:' .. ARGV[1] .. ':' .. ARGV[2] \
     local cur = redis.call('GET', k) \
     if cur then local v = tonumber(string.match(cur, '^(%-?%d+):')) \
       if v and v >= tonumber(ARGV[3]) then return 0 end end \
     redis.call('SET', k, ARGV[4], 'EX', ARGV[5]) return 1";

/// A writer counts itself in on the items it is about to change and drops their entries.
/// ARGV: lock ms, then item ids.
pub const LOCK_SCRIPT: &str = "local e = redis.call('GET', 'stock:cache:epoch') or '0' \
     for i = 2, #ARGV do \
       local l = 'stock:cache:lock:' .. ARGV[i] \
       redis.call('INCR', l) redis.call('PEXPIRE', l, ARGV[1]) \
       redis.call('DEL', 'stock:cache:' .. e .. ':' .. ARGV[i]) end \
     return #ARGV - 1";

/// A writer counts itself out of its items. Its rows are kept as the items' pending rows (the
/// highest version wins, in `stock:cache:pending:<item_id>`); the last writer out of an item
/// stores the pending row — the newest any of them wrote — unless frozen or a newer version is
/// cached. (A writer that died never counts out, so no one stores a row older than its own.)
/// ARGV: ttl, lock ms, number of locked ids, the locked ids, then (item id, version, entry)
/// triples. Returns how many rows were stored.
pub const UNLOCK_SCRIPT: &str = "local e = redis.call('GET', 'stock:cache:epoch') or '0' \
     local frozen = redis.call('EXISTS', 'stock:cache:frozen') == 1 \
     local n = tonumber(ARGV[3]) \
     local function version(entry) return entry and tonumber(string.match(entry, '^(%-?%d+):')) end \
     for i = 4 + n, #ARGV, 3 do \
       local p = 'stock:cache:pending:' .. ARGV[i] \
       local pv = version(redis.call('GET', p)) \
       if not (pv and pv >= tonumber(ARGV[i + 1])) then redis.call('SET', p, ARGV[i + 2], 'PX', ARGV[2]) end \
     end \
     local stored = 0 \
     for i = 4, 3 + n do \
       local l = 'stock:cache:lock:' .. ARGV[i] \
       local c = 0 \
       if redis.call('EXISTS', l) == 1 then c = redis.call('DECR', l) end \
       if c <= 0 then \
         redis.call('DEL', l) \
         local p = 'stock:cache:pending:' .. ARGV[i] \
         local row = redis.call('GET', p) \
         redis.call('DEL', p) \
         if row and not frozen then \
           local k = 'stock:cache:' .. e .. ':' .. ARGV[i] \
           local cv = version(redis.call('GET', k)) \
           if not (cv and cv >= version(row)) then redis.call('SET', k, row, 'EX', ARGV[1]) stored = stored + 1 end \
         end \
       end \
     end \
     return stored";

/// Before a batch: retire every entry and freeze. ARGV: freeze ms.
pub const FREEZE_SCRIPT: &str = "redis.call('SET', 'stock:cache:frozen', '1', 'PX', ARGV[1]) \
     return redis.call('INCR', 'stock:cache:epoch')";

/// After a batch: retire what was stored meanwhile (nothing should be) and thaw.
pub const THAW_SCRIPT: &str = "redis.call('INCR', 'stock:cache:epoch') \
     return redis.call('DEL', 'stock:cache:frozen')";

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
    /// `None` on a miss, a lock, a freeze, or an entry that does not decode.
    pub item: Option<CachedItem>,
    /// Whether a row read from Postgres may be offered (not locked, not frozen).
    pub may_offer: bool,
}

impl CacheRead {
    pub fn parse(reply: &str) -> Option<Self> {
        let (epoch, entry) = reply.split_once('|')?;
        if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let blocked = entry == "L" || entry == "F";
        Some(Self { epoch: epoch.to_string(), item: CachedItem::decode(entry), may_offer: !blocked })
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
        assert_eq!(CacheRead::parse("3|"), Some(CacheRead { epoch: "3".into(), item: None, may_offer: true }));
        assert_eq!(
            CacheRead::parse("0|2:5:9"),
            Some(CacheRead { epoch: "0".into(), item: Some(CachedItem { version: 2, stock: 5, price: 9 }), may_offer: true })
        );
        assert_eq!(CacheRead::parse("0|L"), Some(CacheRead { epoch: "0".into(), item: None, may_offer: false }));
        assert_eq!(CacheRead::parse("0|F"), Some(CacheRead { epoch: "0".into(), item: None, may_offer: false }));
        assert_eq!(CacheRead::parse("garbage"), None);
        assert_eq!(CacheRead::parse("|1:2:3"), None);
    }
}
