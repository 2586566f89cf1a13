//! The Redis view that answers `find`: each item's stock and price, kept exact by a protocol
//! every writer of `stock.items` follows. Postgres stays the truth; the view may lack an item
//! (then `find` reads Postgres and offers the row), but must never show a value Postgres no
//! longer has.
//!
//! Each script is a `.lua` file in `find_view/`, whose header names its `ARGV` and its reply;
//! their arguments are built, and their replies read, here ([`offer_argv`], [`Lookup::parse`],
//! ...), and they are tested against a real Redis (`find_view/tests.rs`).
//!
//! Keys (Redis prefix `stock:view:`, owned by the stock service):
//! * `clock` — a counter; every writer's step takes a fresh tick from it.
//! * `epoch` — bumped by each batch; an entry of another epoch is not an entry.
//! * `frozen` — how many batches are running (expires after [`FREEZE_MS`]).
//! * `busy:{item}` — how many writers are changing the item (expires after [`BUSY_MS`], renewed
//!   by each new writer).
//! * `stamp:{item}` — the tick of the last writer step on the item (expires after [`STAMP_MS`]).
//! * `item:{item}` — `"{epoch}:{stock}:{price}"`, expires after [`ENTRY_TTL_SECONDS`].
//! * `detail:{item}` — `"{epoch}:{json}"`, the item's page ([`crate::listing::ItemDetail`],
//!   stock included), kept by the same protocol as `item:{item}`: looked up and offered the same
//!   way (its kind given), dropped by every writer with it, retired by every batch with it.
//! * `list:{digest}` — `"{generation}:{json}"`, one page of the inventory's list (its filters,
//!   cursor and size digested), expires after [`LIST_ENTRY_TTL_SECONDS`].
//! * `list-generation` — bumped by every listing change as it begins and as it ends; a page of
//!   another generation is not an entry.
//! * `list-busy` — how many listing changes are running (expires after [`BUSY_MS`]).
//!
//! The list's pages follow the same protocol with one global stamp instead of one per item (a
//! page may hold any listed item): [`LIST_BEGIN`] before a listing change's statement (counts it
//! in, a new generation), [`LIST_END`] after it (counts it out, a new generation again);
//! [`LIST_LOOKUP`] answers a hit only of the current generation and bypasses while a change
//! runs; [`LIST_OFFER`] stores a page read from Postgres only if the generation is still the one
//! its lookup saw and no change runs. A page holds listing fields only (no stock), so only
//! listing changes (`POST /stock/items`, `PATCH` and `DELETE /stock/items/{id}`) are its
//! writers: stock changes and batches never touch a listed page (batches write the unlisted WDM
//! items "0".."n-1").
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

use market_core::Script;

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

/// How long a page of the list lives.
pub const LIST_ENTRY_TTL_SECONDS: u64 = 60;

/// What the view holds of a page of the list. ARGV: the page's key. Reply: [`ListLookup`].
pub const LIST_LOOKUP: Script = Script::new(include_str!("find_view/list_lookup.lua"));
/// Stores a page read from Postgres after a [`ListLookup::Miss`]. Arguments: [`list_offer_argv`].
pub const LIST_OFFER: Script = Script::new(include_str!("find_view/list_offer.lua"));
/// Counts a listing change in. ARGV: [`BUSY_MS`].
pub const LIST_BEGIN: Script = Script::new(include_str!("find_view/list_begin.lua"));
/// Counts a listing change out. No arguments.
pub const LIST_END: Script = Script::new(include_str!("find_view/list_end.lua"));

/// The arguments of [`LIST_OFFER`].
pub fn list_offer_argv(key: &str, generation: &str, json: String) -> Vec<String> {
    vec![key.to_string(), generation.to_string(), json, LIST_ENTRY_TTL_SECONDS.to_string()]
}

/// What [`LIST_LOOKUP`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListLookup {
    Hit(String),
    Miss { generation: String },
    Bypass,
}

impl ListLookup {
    pub fn parse(reply: &str) -> Option<Self> {
        if reply == "B" {
            return Some(Self::Bypass);
        }
        if let Some(json) = reply.strip_prefix('H') {
            return Some(Self::Hit(json.to_string()));
        }
        let generation = reply.strip_prefix('M')?;
        is_counter(generation).then(|| Self::Miss { generation: generation.to_string() })
    }
}

/// What the view says of an item, for `find`. ARGV: item id. Reply: [`Lookup`].
pub const LOOKUP: Script = Script::new(include_str!("find_view/lookup.lua"));

/// Stores a row read from Postgres after a [`Lookup::Miss`], only if nothing changed since the
/// lookup. Arguments: [`offer_argv`]. Returns 1 if stored.
pub const OFFER: Script = Script::new(include_str!("find_view/offer.lua"));

/// A writer counts itself in on its items (before its statement). Arguments: [`begin_argv`].
/// Returns the tick.
pub const BEGIN: Script = Script::new(include_str!("find_view/begin.lua"));

/// A writer counts itself out (after its statement), gives the items a new stamp and drops their
/// entries again. Arguments: [`end_argv`]. The new stamp is for [`POPULATE`]: it tells a batch
/// that a writer finished since the batch froze (its statement may have run after the batch's).
/// The drop is for a Redis that lost the writer's [`BEGIN`] in a crash: the writer still removes
/// what a reader stored meanwhile. (Otherwise neither is needed: a reader's offer is refused if
/// its lookup came before the writer's [`BEGIN`] — the stamp moved — or while the writer was
/// counted in — no offer then.)
pub const END: Script = Script::new(include_str!("find_view/end.lua"));

/// A batch counts itself in and bumps the epoch. ARGV: freeze ms ([`FREEZE_MS`]). Reply:
/// [`Freeze`].
pub const FREEZE: Script = Script::new(include_str!("find_view/freeze.lua"));

/// Stores a batch's entries for a range of its ids, unless this batch is no longer the only one
/// running or the epoch is no longer its own, and for each item unless a writer touched it since
/// the freeze or still writes it. Arguments: [`populate_argv`]. Returns how many it stored.
pub const POPULATE: Script = Script::new(include_str!("find_view/populate.lua"));

/// Counts a batch out. No arguments.
pub const THAW: Script = Script::new(include_str!("find_view/thaw.lua"));

/// The arguments of [`OFFER`] for an item's `find` entry: item id, epoch, stamp (as [`LOOKUP`]
/// gave them), the kind `item`, `{stock}:{price}`, the entry's TTL in seconds
/// ([`ENTRY_TTL_SECONDS`]).
pub fn offer_argv(item_id: &str, epoch: &str, stamp: &str, stock: i64, price: i64) -> Vec<String> {
    entry_offer_argv(item_id, epoch, stamp, "item", format!("{stock}:{price}"))
}

/// The arguments of [`OFFER`] for an item's page: as [`offer_argv`], of kind `detail`, its JSON.
pub fn detail_offer_argv(item_id: &str, epoch: &str, stamp: &str, json: String) -> Vec<String> {
    entry_offer_argv(item_id, epoch, stamp, "detail", json)
}

fn entry_offer_argv(item_id: &str, epoch: &str, stamp: &str, kind: &str, value: String) -> Vec<String> {
    vec![
        item_id.to_string(),
        epoch.to_string(),
        stamp.to_string(),
        kind.to_string(),
        value,
        ENTRY_TTL_SECONDS.to_string(),
    ]
}

/// The arguments of [`LOOKUP`] for an item's page.
pub fn detail_lookup_argv(item_id: &str) -> Vec<String> {
    vec![item_id.to_string(), "detail".to_string()]
}

/// The arguments of [`BEGIN`]: busy ms ([`BUSY_MS`]), stamp ms ([`STAMP_MS`]), then the item ids.
pub fn begin_argv(item_ids: &[String]) -> Vec<String> {
    [BUSY_MS.to_string(), STAMP_MS.to_string()].into_iter().chain(item_ids.iter().cloned()).collect()
}

/// The arguments of [`END`]: stamp ms ([`STAMP_MS`]), then the item ids [`BEGIN`] was given.
pub fn end_argv(item_ids: &[String]) -> Vec<String> {
    [STAMP_MS.to_string()].into_iter().chain(item_ids.iter().cloned()).collect()
}

/// The arguments of [`POPULATE`]: the batch's tick and epoch, the entries' TTL in seconds
/// ([`ENTRY_TTL_SECONDS`]), stock, price, the first id and the end id (exclusive: the ids are
/// the integers between).
pub fn populate_argv(freeze: &Freeze, stock: i64, price: i64, from: i64, to: i64) -> Vec<String> {
    vec![
        freeze.tick.clone(),
        freeze.epoch.clone(),
        ENTRY_TTL_SECONDS.to_string(),
        stock.to_string(),
        price.to_string(),
        from.to_string(),
        to.to_string(),
    ]
}

/// What [`LOOKUP`] answered: `B` (a bypass), `H{stock}:{price}` (a hit) or `M{epoch}:{stamp}` (a
/// miss).
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

/// What [`LOOKUP`] answered for an item's page ([`detail_lookup_argv`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailLookup {
    /// The page's JSON, as offered.
    Hit(String),
    /// Not in the view: read Postgres, then offer the page with these.
    Miss { epoch: String, stamp: String },
    /// Being written (or a batch runs): read Postgres, offer nothing.
    Bypass,
}

impl DetailLookup {
    pub fn parse(reply: &str) -> Option<Self> {
        match Lookup::parse(reply) {
            Some(Lookup::Bypass) => Some(Self::Bypass),
            Some(Lookup::Miss { epoch, stamp }) => Some(Self::Miss { epoch, stamp }),
            _ => reply.strip_prefix('H').map(|json| Self::Hit(json.to_string())),
        }
    }
}

/// What [`FREEZE`] answered, `{tick}:{epoch}`: the batch's tick and epoch.
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
mod tests;
