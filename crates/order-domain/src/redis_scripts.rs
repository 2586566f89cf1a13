//! The saga table in Redis (database 1, prefix `orders:`) and the scripts that change it, each
//! one atomic round trip.
//!
//! | key | holds |
//! | --- | --- |
//! | `orders:plan:<order>` | hash: the order's copy for checkouts — `p` its [`Plan`](crate::saga::Plan) JSON (no saga id), `g` its generation, `n` its line count |
//! | `orders:checkout:<order>:<generation>` | the attempt number of the order's current saga |
//! | `orders:saga:<saga_id>` | the saga [`Record`](crate::saga::Record) as JSON (its id is the key's) |
//! | `orders:lease:<saga_id>` | the token of the driver that owns the saga, with a TTL |
//! | `orders:sagas:active` | sorted set of running sagas, scored by when they are due (ms) |
//! | `orders:sagas:final` | sorted set of final sagas, scored by when they ended (ms): records older than [`RECORD_RETENTION_MS`] are deleted |
//! | `orders:sagas:stuck` | sorted set of stuck sagas (not finished after their drive limit), scored by when they got stuck (ms): kept, never driven, until an operator re-drives one ([`LIST_STUCK`], [`REDRIVE`]) |
//! | `orders:alarm:*` | empty keys whose expiry wakes the worker |
//! | `orders:fwd:queue`, `orders:fwd:leader`, `orders:fwd:box:<mailbox>` | sagas waiting for a shared batch of forward steps, the lock of the checkout that leads the batches, the answers for each instance ([`BEGIN`], [`FORWARD_TAKE`], [`FORWARD_SETTLE`]) |
//!
//! A running saga is always in `orders:sagas:active`, scored by its lease's end while a driver
//! owns it, or by its retry time. The worker claims the due ones. Whatever rings it —
//! `orders:doorbell`, or a key of database 1 expiring (`__keyevent@1__:expired`: a lease whose
//! driver died, an alarm) — it drains what is due, then arms `orders:alarm:next` for the next
//! due saga. The records' `"state":"…"` is found by plain substring search: our JSON escapes every
//! `"` inside strings, so the sequence can only be the top-level field.
//!
//! The plan copy spares a checkout a Postgres read: [`BEGIN`] starts the saga from it. The orders
//! table stays the truth. Every change of an order (create, addItem, batch_init) writes the copy
//! after its Postgres commit with [`PUT_PLANS`], which keeps the newest version (generation, then
//! line count: lines are only ever appended within a generation). A copy can still be older than
//! the row (a crash between the two writes) or missing: "mark paid" only pays the order at the
//! plan's generation *and* line count, so a saga started from an old copy is refused there and
//! compensated, and the checkout refreshes the copy from Postgres and starts a new attempt.

/// ARGV: order id, the JSON of a running record without its plan
/// ([`Record::running_tail_json`](crate::saga::Record::running_tail_json)), now ms, lease ms,
/// owner token, then ticket token, mailbox and leader lock ms (ticket token `""`: do not queue).
/// Starts the saga from the order's plan copy. Returns `["drive", saga id, plan, leading]` when
/// this call started a saga that the caller now owns, `["join", saga id, record]` when a saga of
/// this order generation is running or has paid it, or `["nocopy"]` when there is no plan copy.
/// With a ticket token, a saga it starts is also queued for the next shared batch of forward
/// steps, in the same step ([`FORWARD_TAKE`] says what an entry holds), and `leading` is `"1"` if
/// the caller took the free leader lock `orders:fwd:leader` (it leads the batches), else `"0"`.
/// A failed saga is followed by a new attempt; a saga whose record was lost is re-driven
/// under the same id (the participants' ledgers dedupe it).
/// It also arms a ladder of alarms (1 s … 256 s) so that sagas left behind by a host that died
/// are picked up after its restart even if no request comes. While the 1 s alarm is armed the
/// ladder was armed less than a second ago, so it is only re-armed once that one has expired (an
/// alarm that expired meanwhile is re-armed at most a second late).
pub const BEGIN: &str = r#"
local copy = redis.call('HMGET', 'orders:plan:' .. ARGV[1], 'g', 'p')
if not copy[1] then return {'nocopy'} end
local order = ARGV[1] .. '.' .. copy[1]
local ptr = 'orders:checkout:' .. ARGV[1] .. ':' .. copy[1]
local attempt = tonumber(redis.call('GET', ptr) or '-1')
if attempt >= 0 then
  local rec = redis.call('GET', 'orders:saga:' .. order .. '.' .. attempt)
  if rec and not string.find(rec, '"state":"failed"', 1, true) then
    return {'join', order .. '.' .. attempt, rec}
  end
  if not rec then attempt = attempt - 1 end
end
attempt = attempt + 1
local id = order .. '.' .. attempt
redis.call('SET', ptr, attempt)
redis.call('SET', 'orders:saga:' .. id, string.sub(copy[2], 1, -2) .. ',' .. string.sub(ARGV[2], 2))
redis.call('SET', 'orders:lease:' .. id, ARGV[5], 'PX', ARGV[4])
redis.call('ZADD', 'orders:sagas:active', tonumber(ARGV[3]) + tonumber(ARGV[4]), id)
if redis.call('EXISTS', 'orders:alarm:0') == 0 then
  for i = 0, 8 do redis.call('SET', 'orders:alarm:' .. i, '', 'PX', 1000 * 2 ^ i, 'NX') end
end
local leading = '0'
if ARGV[6] ~= '' then
  redis.call('RPUSH', 'orders:fwd:queue', table.concat({ARGV[6], ARGV[7], ARGV[5], ARGV[3], id, copy[2]}, '\n'))
  if redis.call('SET', 'orders:fwd:leader', ARGV[6], 'NX', 'PX', ARGV[8]) then leading = '1' end
end
return {'drive', id, copy[2], leading}
"#;

/// ARGV: groups of (order id, generation, line count, plan JSON). Stores each plan copy unless
/// the stored one is as new or newer (generation, then line count). Returns how many it stored.
pub const PUT_PLANS: &str = r#"
local stored = 0
for i = 1, #ARGV, 4 do
  local key = 'orders:plan:' .. ARGV[i]
  local g, n = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local cur = redis.call('HMGET', key, 'g', 'n')
  local cg, cn = tonumber(cur[1]), tonumber(cur[2])
  if not cg or cg < g or (cg == g and cn < n) then
    -- A new generation: nothing reads the old one's attempt counter again.
    if cg and cg < g then redis.call('DEL', 'orders:checkout:' .. ARGV[i] .. ':' .. cur[1]) end
    redis.call('HSET', key, 'g', ARGV[i + 1], 'n', ARGV[i + 2], 'p', ARGV[i + 3])
    stored = stored + 1
  end
end
return stored
"#;

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
/// Old records are deleted by [`FINISH`] (two for each saga it ends), not by a Redis TTL: with a
/// TTL on every record, Redis's sampling of keys with a TTL finds the expired *leases* among
/// hundreds of thousands of records only after tens of seconds, and the worker is woken by those
/// expiries: with 300 000 records in database 1, the host-kill fault test took 62 s with a TTL
/// on them and 8 s with the same records and no TTL.
pub const RECORD_RETENTION_MS: u64 = 10 * 60 * 1000;

/// The Lua function `finish(id, owner, record, mode, due, now, retention)` behind [`FINISH`] and
/// [`FORWARD_SETTLE`]; `mode` is `'1'` (final), `'0'` (retry at `due`) or `'s'` (stuck).
macro_rules! finish_function {
    () => {
        r#"
local function finish(id, owner, record, mode, due, now, retention)
  local lease = 'orders:lease:' .. id
  if redis.call('GET', lease) ~= owner then return 0 end
  redis.call('DEL', lease)
  redis.call('SET', 'orders:saga:' .. id, record)
  if mode == 's' then
    redis.call('ZREM', 'orders:sagas:active', id)
    redis.call('ZADD', 'orders:sagas:stuck', now, id)
  elseif mode == '1' then
    redis.call('ZREM', 'orders:sagas:active', id)
    redis.call('ZADD', 'orders:sagas:final', now, id)
    local old = redis.call('ZRANGEBYSCORE', 'orders:sagas:final', '-inf', tonumber(now) - tonumber(retention), 'LIMIT', 0, 2)
    for _, done in ipairs(old) do
      redis.call('DEL', 'orders:saga:' .. done)
      redis.call('ZREM', 'orders:sagas:final', done)
    end
  else
    redis.call('ZADD', 'orders:sagas:active', due, id)
    local wait = math.max(1, tonumber(due) - tonumber(now))
    local t = redis.call('PTTL', 'orders:alarm:next')
    if t < 0 or t > wait then redis.call('SET', 'orders:alarm:next', '', 'PX', math.floor(wait)) end
  end
  return 1
end
"#
    };
}

/// ARGV: saga id, owner token, record JSON, `'1'` if final, `'s'` if stuck, else `'0'`, due ms
/// (retry), now ms, retention ms. Writes the record only if the caller still owns the lease
/// (returns 1; else 0 and nothing changes); a final saga leaves the active set for the final one
/// (and deletes up to two records that ended longer than the retention ago), a stuck one leaves
/// it for `orders:sagas:stuck` (kept, not driven), a retried one is due again at `due`.
pub const FINISH: &str =
    concat!(finish_function!(), "return finish(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])");

/// ARGV: saga id, owner token, lease ms, now ms. Extends the lease if still owned (1), else 0.
pub const RENEW: &str = r#"
local lease = 'orders:lease:' .. ARGV[1]
if redis.call('GET', lease) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', lease, ARGV[3])
redis.call('ZADD', 'orders:sagas:active', tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[1])
return 1
"#;

/// ARGV: now ms, lease ms, owner token, batch size. Claims up to that many due sagas, returning
/// `[id, record, id, record, ...]`, and arms `orders:alarm:next` for the next due one.
pub const CLAIM: &str = r#"
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', 'orders:sagas:active', '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  if redis.call('SET', 'orders:lease:' .. id, ARGV[3], 'PX', ARGV[2], 'NX') then
    local rec = redis.call('GET', 'orders:saga:' .. id)
    if rec and string.find(rec, '"state":"running"', 1, true) then
      redis.call('ZADD', 'orders:sagas:active', now + tonumber(ARGV[2]), id)
      table.insert(out, id)
      table.insert(out, rec)
    else
      redis.call('ZREM', 'orders:sagas:active', id)
      redis.call('DEL', 'orders:lease:' .. id)
    end
  end
end
local first = redis.call('ZRANGE', 'orders:sagas:active', 0, 0, 'WITHSCORES')
if first[2] then
  local wait = math.max(50, tonumber(first[2]) - now)
  local t = redis.call('PTTL', 'orders:alarm:next')
  if t < 0 or t > wait then redis.call('SET', 'orders:alarm:next', '', 'PX', math.floor(wait)) end
end
return out
"#;

/// The queue of sagas waiting for a shared batch of forward steps. An entry is the lines: ticket
/// token, mailbox, owner token, created ms, saga id, plan JSON (queued by [`BEGIN`]).
pub const FORWARD_QUEUE: &str = "orders:fwd:queue";

/// ARGV: leader token, most entries, leader lock ms. Takes the oldest entries for the leader's
/// next batch and extends its lock. No entry left: releases the lock and returns an empty list
/// (in the same step, so a saga queued after it finds the lock free and leads). A caller that no
/// longer holds the lock gets `false` (nil) and nothing is taken.
pub const FORWARD_TAKE: &str = r#"
if redis.call('GET', 'orders:fwd:leader') ~= ARGV[1] then return false end
local entries = redis.call('LRANGE', 'orders:fwd:queue', 0, tonumber(ARGV[2]) - 1)
if #entries == 0 then
  redis.call('DEL', 'orders:fwd:leader')
  return {}
end
redis.call('LTRIM', 'orders:fwd:queue', #entries, -1)
redis.call('PEXPIRE', 'orders:fwd:leader', ARGV[3])
return entries
"#;

/// ARGV: result ms, now ms, retention ms, then per saga: mailbox, ticket token, answers, saga id,
/// owner token, final record JSON (`""` if the answers do not decide the saga). Ends each decided
/// saga as [`FINISH`] does (if its checkout still owns the lease), then pushes
/// `token \n settled \n answers` to its checkout's mailbox, `orders:fwd:box:<mailbox>` (kept that
/// long), where `settled` is `1` if this ended the saga, else `0`: its checkout answers at once.
pub const FORWARD_SETTLE: &str = concat!(
    finish_function!(),
    r#"
for i = 4, #ARGV, 6 do
  local settled = 0
  if ARGV[i + 5] ~= '' then settled = finish(ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], '1', 0, ARGV[2], ARGV[3]) end
  local box = 'orders:fwd:box:' .. ARGV[i]
  redis.call('RPUSH', box, table.concat({ARGV[i + 1], settled, ARGV[i + 2]}, '\n'))
  redis.call('PEXPIRE', box, ARGV[1])
end
return (#ARGV - 3) / 6
"#
);

/// ARGV: leader token. Releases the leader lock if the caller holds it.
pub const FORWARD_RELEASE: &str = r#"
if redis.call('GET', 'orders:fwd:leader') == ARGV[1] then redis.call('DEL', 'orders:fwd:leader') end
return 1
"#;

/// The running sagas, scored by when they are due (ms).
pub const ACTIVE_SAGAS: &str = "orders:sagas:active";

/// The stuck sagas, scored by when they got stuck (ms).
pub const STUCK_SAGAS: &str = "orders:sagas:stuck";

/// ARGV: most sagas. Returns how many sagas are stuck, then `id, record` of the ones stuck
/// longest, up to that many (a record that is gone is left out).
pub const LIST_STUCK: &str = r#"
local out = {tostring(redis.call('ZCARD', 'orders:sagas:stuck'))}
for _, id in ipairs(redis.call('ZRANGE', 'orders:sagas:stuck', 0, tonumber(ARGV[1]) - 1)) do
  local rec = redis.call('GET', 'orders:saga:' .. id)
  if rec then
    table.insert(out, id)
    table.insert(out, rec)
  end
end
return out
"#;

/// ARGV: saga id, the record as read (JSON, stuck), the record re-driven (JSON, running), owner
/// token, lease ms, now ms. An operator's re-drive of a stuck saga: if the record is still the
/// one read and nobody holds the lease, writes the running record, takes the lease for the
/// caller, and moves the saga from `orders:sagas:stuck` back to the active set (due when the
/// lease ends, so that the worker takes it over if the caller dies). Returns 1, or 0 with
/// nothing changed (the record changed meanwhile: another re-drive).
pub const REDRIVE: &str = r#"
local key = 'orders:saga:' .. ARGV[1]
if redis.call('GET', key) ~= ARGV[2] then return 0 end
if not redis.call('SET', 'orders:lease:' .. ARGV[1], ARGV[4], 'NX', 'PX', ARGV[5]) then return 0 end
redis.call('SET', key, ARGV[3])
redis.call('ZREM', 'orders:sagas:stuck', ARGV[1])
redis.call('ZADD', 'orders:sagas:active', tonumber(ARGV[6]) + tonumber(ARGV[5]), ARGV[1])
return 1
"#;

/// The channel that wakes the worker at once.
pub const DOORBELL: &str = "orders:doorbell";

/// The key of the current attempt pointer of an order generation.
pub fn checkout_key(order_id: &str, generation: i64) -> String {
    format!("orders:checkout:{order_id}:{generation}")
}

/// The key of a saga's record.
pub fn saga_key(saga_id: &str) -> String {
    format!("orders:saga:{saga_id}")
}
