//! The saga table in Redis (database 1, prefix `orders:`) and the scripts that change it, each
//! one atomic round trip. Each script is a `.lua` file in `redis_scripts/` whose header names its
//! `ARGV` and its reply; what the scripts and the services exchange — a queue entry, a mailbox
//! message, the settle arguments, a record's state field, the arguments and replies of `BEGIN`
//! and `SAVE_RECORD` — is defined once, in [`messages`], and tested through the real scripts
//! against a real Redis (`redis_scripts/tests.rs`).
//!
//! | key | holds |
//! | --- | --- |
//! | `orders:plan:<order>` | hash: the order's copy for checkouts — `p` its [`Plan`](crate::saga::Plan) JSON (no saga id), `g` its generation, `n` its line count |
//! | `orders:checkout:<order>:<generation>` | the attempt number of the order's current saga |
//! | `orders:saga:<saga_id>` | the saga [`Record`](crate::saga::Record) as JSON (its id is the key's): a checkout's (`<order>.<generation>.<attempt>`), a rental's (`rental:<id>`) or a return's (`return:<id>`), told apart by the id ([`AnyRecord`](crate::rental::AnyRecord)) |
//! | `orders:lease:<saga_id>` | the token of the driver that owns the saga, with a TTL |
//! | `orders:sagas:active` | sorted set of running sagas, scored by when they are due (ms) |
//! | `orders:sagas:final` | sorted set of final sagas, scored by when they ended (ms): records older than [`RECORD_RETENTION_MS`] are deleted |
//! | `orders:sagas:stuck` | sorted set of stuck sagas (not finished after their drive limit), scored by when they got stuck (ms): kept, never driven, until an operator re-drives one ([`LIST_STUCK`], [`REDRIVE`]) |
//! | `orders:alarm:*` | empty keys whose expiry wakes the worker |
//! | `orders:worker:heartbeat` | when (ms) any saga worker last ran ([`WORKER_HEARTBEAT`]) |
//! | `orders:worker:heartbeat:<instance>` | when (ms) the worker process `<instance>` last ran; expires after [`WORKER_HEARTBEAT_TTL_MS`] |
//! | `orders:fwd:queue`, `orders:fwd:leader`, `orders:fwd:box:<mailbox>` | sagas waiting for a shared batch of forward steps, the lock of the checkout that leads the batches, the answers for each instance ([`BEGIN`], [`BATCH_TAKE`], [`BATCH_SETTLE`], [`BATCH_RELEASE`]; the keys keep their first name, `fwd`: renaming live keys would strand the data of a running deployment) |
//!
//! A running saga is always in `orders:sagas:active`, scored by its lease's end while a driver
//! owns it, or by its retry time. The worker claims the due ones. Whatever rings it —
//! `orders:doorbell`, or a key of database 1 expiring (`__keyevent@1__:expired`: a lease whose
//! driver died, an alarm) — it drains what is due, then arms `orders:alarm:next` for the next
//! due saga. A record's state is found by plain substring search for its field
//! ([`messages::state_field`]).
//!
//! The plan copy spares a checkout a Postgres read: [`BEGIN`] starts the saga from it. The orders
//! table stays the truth. Every change of an order (create, addItem, batch_init) writes the copy
//! after its Postgres commit with [`PUT_PLANS`], which keeps the newest version (generation, then
//! line count: lines are only ever appended within a generation). A copy can still be older than
//! the row (a crash between the two writes) or missing: "mark paid" only pays the order at the
//! plan's generation *and* line count, so a saga started from an old copy is refused there and
//! compensated, and the checkout refreshes the copy from Postgres and starts a new attempt.

use market_core::Script;

pub mod messages;
#[cfg(test)]
mod tests;

pub use messages::{
    BeginArgs, Begun, MailboxMessage, QueueEntry, QueueTicket, SaveArgs, SettleArgs, SettleSaga, StartArgs, Started,
    Stuck, put_plans_argv, records_of, state_field,
};

/// Starts the saga of an order's generation from the order's plan copy, or finds the one running
/// (or that paid it); a saga it starts is queued for the next shared batch of forward steps with
/// the checkout's ticket, in the same step, and the checkout takes the free leader lock
/// `orders:fwd:leader` if it can (it leads the batches). Arguments: [`BeginArgs`]; reply:
/// [`Begun`]; the queue entry: [`QueueEntry`].
///
/// It also arms a ladder of alarms (1 s … 256 s) so that sagas left behind by a host that died
/// are picked up after its restart even if no request comes. While the 1 s alarm is armed the
/// ladder was armed less than a second ago, so it is only re-armed once that one has expired (an
/// alarm that expired meanwhile is re-armed at most a second late).
pub const BEGIN: Script =
    Script::new(concat!(include_str!("redis_scripts/arm_ladder_fn.lua"), include_str!("redis_scripts/begin.lua")));

/// Starts a saga of another workflow than the checkout (a rental, a return: [`crate::rental`])
/// from its whole record, or finds it, in the same table, with the same lease, active set and
/// alarms as [`BEGIN`] (the Lua function `arm_ladder` is both scripts'). Arguments:
/// [`StartArgs`]; reply: [`Started`].
pub const START: Script =
    Script::new(concat!(include_str!("redis_scripts/arm_ladder_fn.lua"), include_str!("redis_scripts/start.lua")));

/// Stores plan copies, each unless the stored one is as new or newer (generation, then line
/// count). ARGV: groups of (order id, generation, line count, plan JSON): [`put_plans_argv`];
/// returns how many it stored.
pub const PUT_PLANS: Script = Script::new(include_str!("redis_scripts/put_plans.lua"));

/// How long a final saga's record is kept: for checkouts joining it (they wait at most 20 s) and
/// for operators looking at a recent checkout (the status endpoint). The participants' ledgers in
/// Postgres keep every decision for good. Ten minutes bounds the table: at 1 000 checkouts/s it
/// holds 600 000 records, about 600 MB (measured: 362 MB of Redis for 300 000 sagas, records and
/// attempt pointers). With 24 h it would grow by about 3.6 GB an hour at that rate (computed from
/// the same figure), and every AOF rewrite forks and copies it all (3 s each at 360 MB).
///
/// Afterwards the order's Postgres row answers a repeated checkout of a paid order; a checkout of
/// an order whose failed attempt was deleted re-drives that attempt once (the participants'
/// ledgers refuse it again), then starts the next one. The attempt pointer (`orders:checkout:*`,
/// a number) is kept.
///
/// Old records are deleted by [`SAVE_RECORD`] (two for each saga it ends), not by a Redis TTL: with a
/// TTL on every record, Redis's sampling of keys with a TTL finds the expired *leases* among
/// hundreds of thousands of records only after tens of seconds, and the worker is woken by those
/// expiries: with 300 000 records in database 1, the host-kill fault test took 62 s with a TTL
/// on them and 8 s with the same records and no TTL.
pub const RECORD_RETENTION_MS: u64 = 10 * 60 * 1000;

/// Writes a saga's record after a drive, only if the caller still owns the lease (returns 1; else
/// 0 and nothing changes): a final saga leaves the active set for the final one (and deletes up
/// to two records that ended longer than the retention ago), a stuck one leaves it for
/// `orders:sagas:stuck` (kept, not driven), a retried one is due again at its time. Arguments:
/// [`SaveArgs`]. Its Lua function `save_record` is [`BATCH_SETTLE`]'s too (one definition,
/// `save_record_fn.lua`, put in front of both).
pub const SAVE_RECORD: Script = Script::new(concat!(
    include_str!("redis_scripts/save_record_fn.lua"),
    include_str!("redis_scripts/save_record.lua")
));

/// ARGV: saga id, owner token, lease ms, now ms. Extends the lease if still owned (1), else 0.
pub const RENEW: Script = Script::new(include_str!("redis_scripts/renew.lua"));

/// ARGV: now ms, lease ms, owner token, batch size, the running state's field
/// ([`state_field`]). Claims up to that many due sagas (reply: [`records_of`]), and arms
/// `orders:alarm:next` for the next due one.
pub const CLAIM: Script = Script::new(include_str!("redis_scripts/claim.lua"));

/// The queue of sagas waiting for a shared batch of forward steps: [`QueueEntry`]s, queued by
/// [`BEGIN`], taken by [`BATCH_TAKE`].
pub const BATCH_QUEUE: &str = "orders:fwd:queue";

/// The mailbox of an instance, where [`BATCH_SETTLE`] pushes [`MailboxMessage`]s.
pub fn mailbox_key(mailbox: &str) -> String {
    format!("orders:fwd:box:{mailbox}")
}

/// ARGV: leader token, most entries, leader lock ms. Takes the oldest [`QueueEntry`]s for the
/// leader's next batch and extends its lock. No entry left: releases the lock and returns an
/// empty list (in the same step, so a saga queued after it finds the lock free and leads). A
/// caller that no longer holds the lock gets `false` (nil) and nothing is taken.
pub const BATCH_TAKE: Script = Script::new(include_str!("redis_scripts/batch_take.lua"));

/// Ends each saga a batch's answers decide as [`SAVE_RECORD`] does (if its checkout still owns
/// the lease), then pushes a [`MailboxMessage`] to its checkout's mailbox ([`mailbox_key`], kept
/// a while after the last push). Arguments: [`SettleArgs`].
pub const BATCH_SETTLE: Script = Script::new(concat!(
    include_str!("redis_scripts/save_record_fn.lua"),
    include_str!("redis_scripts/batch_settle.lua")
));

/// ARGV: leader token. Releases the leader lock if the caller holds it.
pub const BATCH_RELEASE: Script = Script::new(include_str!("redis_scripts/batch_release.lua"));

/// The running sagas, scored by when they are due (ms).
pub const ACTIVE_SAGAS: &str = "orders:sagas:active";

/// The stuck sagas, scored by when they got stuck (ms).
pub const STUCK_SAGAS: &str = "orders:sagas:stuck";

/// ARGV: most sagas. Returns how many sagas are stuck, then `id, record` of the ones stuck
/// longest, up to that many (a record that is gone is left out): [`Stuck`].
pub const LIST_STUCK: Script = Script::new(include_str!("redis_scripts/list_stuck.lua"));

/// ARGV: saga id, the record as read (JSON, stuck), the record re-driven (JSON, running), owner
/// token, lease ms, now ms. An operator's re-drive of a stuck saga: if the record is still the
/// one read and nobody holds the lease, writes the running record, takes the lease for the
/// caller, and moves the saga from `orders:sagas:stuck` back to the active set (due when the
/// lease ends, so that the worker takes it over if the caller dies). Returns 1, or 0 with
/// nothing changed (the record changed meanwhile: another re-drive).
pub const REDRIVE: Script = Script::new(include_str!("redis_scripts/redrive.lua"));

/// ARGV: now ms, most running records read. The saga table's gauges for `/metrics`: running,
/// stuck, the oldest running saga's `created_ms`, since when the saga due longest is due, the
/// worker's heartbeat ([`WORKER_HEARTBEAT`]); -1 for none.
pub const SAGA_GAUGES: Script = Script::new(include_str!("redis_scripts/saga_gauges.lua"));

/// The channel that wakes the worker at once.
pub const DOORBELL: &str = "orders:doorbell";

/// When (wall-clock ms) any saga worker last ran: one key, overwritten by every run.
pub const WORKER_HEARTBEAT: &str = "orders:worker:heartbeat";

/// How long the heartbeat of one worker process is kept: its instance name changes with every
/// restart in Kubernetes (the pod's name), so each name's key must go away on its own.
pub const WORKER_HEARTBEAT_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The heartbeat key of the worker process named `instance` (the application variable
/// `worker_instance`).
pub fn worker_heartbeat_key(instance: &str) -> String {
    format!("{WORKER_HEARTBEAT}:{instance}")
}

/// The key of the current attempt pointer of an order generation.
pub fn checkout_key(order_id: &str, generation: i64) -> String {
    format!("orders:checkout:{order_id}:{generation}")
}

/// The key of a saga's record.
pub fn saga_key(saga_id: &str) -> String {
    format!("orders:saga:{saga_id}")
}

/// The key of an order's plan copy.
pub fn plan_key(order_id: &str) -> String {
    format!("orders:plan:{order_id}")
}

/// The key of a saga's lease.
pub fn lease_key(saga_id: &str) -> String {
    format!("orders:lease:{saga_id}")
}
