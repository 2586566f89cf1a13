//! The Redis view that answers `find`: each item's stock and price, kept exact by a protocol
//! every writer of `stock.items` follows. Postgres stays the truth; the view may lack an item
//! (then `find` reads Postgres and offers the row), but must never show a value Postgres no
//! longer has.
//!
//! Keys (Redis prefix `stock:view:`, owned by the stock service):
//! * `clock` — a counter; every writer's step takes a fresh tick from it.
//! * `epoch` — bumped by each batch; an entry of another epoch is not an entry.
//! * `frozen` — how many batches are running (expires after [`FREEZE_MS`]).
//! * `busy:{item}` — how many writers are changing the item (expires after [`BUSY_MS`], renewed
//!   by each new writer).
//! * `stamp:{item}` — the tick of the last writer step on the item (expires after [`STAMP_MS`]).
//! * `item:{item}` — `"{epoch}:{stock}:{price}"`, expires after [`ENTRY_TTL_SECONDS`].
//!
//! Every key either expires or is one of its kind (`clock`, `epoch`): a writer or reader of an
//! item that does not exist leaves nothing that lasts.
//!
//! The protocol:
//! * **A writer** (add, subtract, reserve, reserve_many, release) runs [`BEGIN`] on its items
//!   before its statement (counts itself in, gives them a new `stamp`, drops their entries), and
//!   [`END`] after it (counts itself out, a new `stamp` again, drops the entries again; in the
//!   background, after the answer). A writer that
//!   cannot run [`BEGIN`] does not write. One that dies leaves its count, which expires: until
//!   then `find` reads Postgres for those items.
//! * **A reader** (`find`) runs [`LOOKUP`]: a hit is answered from Redis. On a miss it reads
//!   Postgres and offers the row with [`OFFER`], which stores it only if the epoch and the item's
//!   `stamp` are still those [`LOOKUP`] saw and nobody is writing the item or running a batch. So a
//!   row read before any writer's step is never stored after that step. A reader does not offer
//!   later than [`MAX_OFFER_DELAY_MS`] after its [`LOOKUP`].
//! * **A batch** (`batch_init`) runs [`FREEZE`] (counts itself in, bumps the epoch: every entry is
//!   retired; no offer is taken while frozen), its statement, then [`POPULATE`] for the ids it
//!   wrote, in chunks: each entry is stored with the batch's values unless a writer touched the
//!   item since the freeze, one is still writing it, or another batch runs or ran since. Then
//!   [`THAW`] counts it out.
//!
//! What is left open: a writer whose statement commits more than [`BUSY_MS`] after its
//! [`BEGIN`] *and* that dies before its [`END`], or a Redis crash that loses a writer's
//! [`BEGIN`] (AOF fsyncs every second) while that writer dies before its [`END`]: the entry a
//! reader stored meanwhile may be stale until it expires ([`ENTRY_TTL_SECONDS`]) or the item
//! is written again. A writer checks, before its statement, that it is well within
//! [`BUSY_MS`] of its [`BEGIN`] ([`MAX_WRITE_DELAY_MS`]).
//!
//! Why stamps may expire: a stamp matters to a reader from its [`LOOKUP`] to its [`OFFER`] (at
//! most [`MAX_OFFER_DELAY_MS`]), and to a batch from its [`FREEZE`] to its last [`POPULATE`] (at
//! most [`FREEZE_MS`]: after that its `frozen` count has expired and [`POPULATE`] stores nothing).
//! A stamp written after either began lives [`STAMP_MS`], longer than both, so it is still there
//! when it is checked. Ticks are never reused, so an expired stamp can only make a check see
//! `0` where it saw a tick before (refused), or `0` where it saw `0` because the stamp was
//! written and expired in between — which takes longer than [`STAMP_MS`].

/// How long a writer's count lives (writers count out within milliseconds).
pub const BUSY_MS: u64 = 30_000;
/// A writer does not send its statement later than this after its [`BEGIN`].
pub const MAX_WRITE_DELAY_MS: u64 = 10_000;
/// How long a batch's count lives.
pub const FREEZE_MS: u64 = 120_000;
/// How long an entry lives.
pub const ENTRY_TTL_SECONDS: u64 = 600;
/// How long a stamp lives after its last writer step: longer than any reader's
/// [`MAX_OFFER_DELAY_MS`] and any batch's [`FREEZE_MS`] (see the module's notes).
pub const STAMP_MS: u64 = 300_000;
/// A reader does not offer a row later than this after its [`LOOKUP`].
pub const MAX_OFFER_DELAY_MS: u64 = 10_000;
const _: () = assert!(STAMP_MS > FREEZE_MS && STAMP_MS > MAX_OFFER_DELAY_MS, "a stamp must outlive every check of it");
/// How many ids one [`POPULATE`] call stores (each call holds Redis for its length).
pub const POPULATE_CHUNK: i64 = 10_000;

/// ARGV: item id. Returns `B` (read Postgres, do not offer), `H{stock}:{price}` (a hit), or
/// `M{epoch}:{stamp}` (a miss; offer the row read from Postgres with these).
pub const LOOKUP: &str = "\
local id = ARGV[1] \
if redis.call('EXISTS', 'stock:view:frozen') == 1 or redis.call('EXISTS', 'stock:view:busy:' .. id) == 1 then return 'B' end \
local e = redis.call('GET', 'stock:view:epoch') or '0' \
local v = redis.call('GET', 'stock:view:item:' .. id) \
if v then local ve, rest = string.match(v, '^(%d+):(.*)$') if ve == e then return 'H' .. rest end end \
return 'M' .. e .. ':' .. (redis.call('GET', 'stock:view:stamp:' .. id) or '0')";

/// ARGV: item id, epoch, stamp (as [`LOOKUP`] gave them), stock, price, ttl seconds. Returns 1 if
/// stored.
pub const OFFER: &str = "\
local id = ARGV[1] \
if redis.call('EXISTS', 'stock:view:frozen') == 1 or redis.call('EXISTS', 'stock:view:busy:' .. id) == 1 then return 0 end \
if (redis.call('GET', 'stock:view:epoch') or '0') ~= ARGV[2] then return 0 end \
if (redis.call('GET', 'stock:view:stamp:' .. id) or '0') ~= ARGV[3] then return 0 end \
redis.call('SET', 'stock:view:item:' .. id, ARGV[2] .. ':' .. ARGV[4] .. ':' .. ARGV[5], 'EX', ARGV[6]) \
return 1";

/// ARGV: busy ms, stamp ms, then the item ids. Returns the tick.
pub const BEGIN: &str = "\
local t = redis.call('INCR', 'stock:view:clock') \
for i = 3, #ARGV do \
  local b = 'stock:view:busy:' .. ARGV[i] \
  redis.call('INCR', b) redis.call('PEXPIRE', b, ARGV[1]) \
  redis.call('SET', 'stock:view:stamp:' .. ARGV[i], t, 'PX', ARGV[2]) \
  redis.call('DEL', 'stock:view:item:' .. ARGV[i]) \
end \
return t";

/// ARGV: stamp ms, then the item ids [`BEGIN`] was given. Counts the writer out, gives the items a new stamp
/// and drops their entries again. The new stamp is for [`POPULATE`]: it tells a batch that a
/// writer finished since the batch froze (its statement may have run after the batch's). The
/// drop is for a Redis that lost the writer's [`BEGIN`] in a crash: the writer still removes what
/// a reader stored meanwhile. (Otherwise neither is needed: a reader's offer is refused if its
/// lookup came before the writer's [`BEGIN`] — the stamp moved — or while the writer was counted
/// in — no offer then.)
pub const END: &str = "\
local t = redis.call('INCR', 'stock:view:clock') \
for i = 2, #ARGV do \
  local b = 'stock:view:busy:' .. ARGV[i] \
  if redis.call('EXISTS', b) == 1 and redis.call('DECR', b) <= 0 then redis.call('DEL', b) end \
  redis.call('SET', 'stock:view:stamp:' .. ARGV[i], t, 'PX', ARGV[1]) \
  redis.call('DEL', 'stock:view:item:' .. ARGV[i]) \
end \
return t";

/// ARGV: freeze ms. Returns `{tick}:{epoch}` (the batch's, for [`POPULATE`]).
pub const FREEZE: &str = "\
redis.call('INCR', 'stock:view:frozen') redis.call('PEXPIRE', 'stock:view:frozen', ARGV[1]) \
local t = redis.call('INCR', 'stock:view:clock') \
local e = redis.call('INCR', 'stock:view:epoch') \
return t .. ':' .. e";

/// ARGV: tick, epoch (from [`FREEZE`]), ttl seconds, stock, price, first id, end id (exclusive;
/// the ids are the integers between). Stores nothing unless this batch is the only one running
/// and the epoch is still its own. Returns how many entries it stored.
pub const POPULATE: &str = "\
if tonumber(redis.call('GET', 'stock:view:frozen') or '0') ~= 1 then return 0 end \
if (redis.call('GET', 'stock:view:epoch') or '0') ~= ARGV[2] then return 0 end \
local tick = tonumber(ARGV[1]) \
local entry = ARGV[2] .. ':' .. ARGV[4] .. ':' .. ARGV[5] \
local stored = 0 \
for n = tonumber(ARGV[6]), tonumber(ARGV[7]) - 1 do \
  local id = tostring(n) \
  if redis.call('EXISTS', 'stock:view:busy:' .. id) == 0 and tonumber(redis.call('GET', 'stock:view:stamp:' .. id) or '0') < tick then \
    redis.call('SET', 'stock:view:item:' .. id, entry, 'EX', ARGV[3]) stored = stored + 1 \
  end \
end \
return stored";

/// Counts a batch out.
pub const THAW: &str = "\
if redis.call('EXISTS', 'stock:view:frozen') == 1 and redis.call('DECR', 'stock:view:frozen') <= 0 then redis.call('DEL', 'stock:view:frozen') end \
return 1";

/// What [`LOOKUP`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The item's stock and price.
    Hit { stock: i64, price: i64 },
    /// Not in the view: read Postgres, then offer the row with these.
    Miss { epoch: String, stamp: String },
    /// Being written (or a batch runs): read Postgres, offer nothing.
    Bypass,
}

impl Lookup {
    /// `None` for a reply that is none of the three (treated as a bypass by the caller).
    pub fn parse(reply: &str) -> Option<Self> {
        if reply == "B" {
            return Some(Self::Bypass);
        }
        if let Some(rest) = reply.strip_prefix('H') {
            let (stock, price) = rest.split_once(':')?;
            return Some(Self::Hit { stock: stock.parse().ok()?, price: price.parse().ok()? });
        }
        let (epoch, stamp) = reply.strip_prefix('M')?.split_once(':')?;
        (is_counter(epoch) && is_counter(stamp))
            .then(|| Self::Miss { epoch: epoch.to_string(), stamp: stamp.to_string() })
    }
}

/// What [`FREEZE`] answered: the batch's tick and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub tick: String,
    pub epoch: String,
}

impl Freeze {
    pub fn parse(reply: &str) -> Option<Self> {
        let (tick, epoch) = reply.split_once(':')?;
        (is_counter(tick) && is_counter(epoch)).then(|| Self { tick: tick.to_string(), epoch: epoch.to_string() })
    }
}

/// A counter's value as Redis gives it: decimal digits.
fn is_counter(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The id ranges `[from, to)` that cover items "0".."n-1" in [`POPULATE_CHUNK`]s.
pub fn populate_chunks(n: i64) -> impl Iterator<Item = (i64, i64)> {
    (0..n.max(0)).step_by(POPULATE_CHUNK as usize).map(move |from| (from, (from + POPULATE_CHUNK).min(n)))
}

/// The distinct item ids of a write, in one order (so a writer's argument list is stable).
pub fn distinct_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut all: Vec<String> = ids.into_iter().map(str::to_string).collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_replies_parse() {
        assert_eq!(Lookup::parse("B"), Some(Lookup::Bypass));
        assert_eq!(Lookup::parse("H5:12"), Some(Lookup::Hit { stock: 5, price: 12 }));
        assert_eq!(Lookup::parse("M3:17"), Some(Lookup::Miss { epoch: "3".into(), stamp: "17".into() }));
        assert_eq!(Lookup::parse("M0:0"), Some(Lookup::Miss { epoch: "0".into(), stamp: "0".into() }));
        for bad in ["", "H5", "Hx:1", "M3", "M:1", "M3:x", "Q"] {
            assert_eq!(Lookup::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn freeze_replies_parse() {
        assert_eq!(Freeze::parse("41:7"), Some(Freeze { tick: "41".into(), epoch: "7".into() }));
        assert_eq!(Freeze::parse("41"), None);
        assert_eq!(Freeze::parse(":7"), None);
    }

    #[test]
    fn chunks_cover_every_id_once() {
        assert_eq!(populate_chunks(0).count(), 0);
        assert_eq!(populate_chunks(3).collect::<Vec<_>>(), vec![(0, 3)]);
        let chunks: Vec<_> = populate_chunks(2 * POPULATE_CHUNK + 1).collect();
        assert_eq!(
            chunks,
            vec![
                (0, POPULATE_CHUNK),
                (POPULATE_CHUNK, 2 * POPULATE_CHUNK),
                (2 * POPULATE_CHUNK, 2 * POPULATE_CHUNK + 1)
            ]
        );
    }

    #[test]
    fn stamps_outlive_every_check_that_reads_them() {
        assert!(BEGIN.contains("'stock:view:stamp:' .. ARGV[i], t, 'PX', ARGV[2]"));
        assert!(END.contains("'stock:view:stamp:' .. ARGV[i], t, 'PX', ARGV[1]"));
    }

    #[test]
    fn ids_are_distinct_and_ordered() {
        assert_eq!(distinct_ids(["b", "a", "b"]), vec!["a".to_string(), "b".to_string()]);
    }
}
