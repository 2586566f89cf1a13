//! The saga table in Redis: the I/O of `order_domain::redis_scripts`, plus the clock and lease
//! the driver runs with.

use crate::batch_queue::Ticket;
use market_core::ApiError;
pub use order_domain::redis_scripts::Begun;
use order_domain::redis_scripts::{
    self as scripts, BEGIN, BeginArgs, CLAIM, LIST_STUCK, REDRIVE, RENEW, SAVE_RECORD, START, SaveArgs, StartArgs,
    Started, Stuck, records_of, state_field,
};
use order_domain::rental::AnyRecord;
pub use order_domain::saga::SagaNext;
use order_domain::saga::{Clock, Fence, Record, SagaPlan, State};
use spin_kit::redis_store::{args, redis_idempotent, reply_texts, script_idempotent, script_once};
use spin_sdk::redis::RedisResult;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a driver owns a saga without renewing.
pub const LEASE_MS: u64 = 5_000;

/// Wall-clock milliseconds (Redis scores are shared by every instance and replica).
pub struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
    async fn sleep_ms(&self, ms: u64) {
        spin_sdk::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// A token unique to its holder (a saga's driver, a batch ticket, an instance's mailbox); `prefix`
/// says which kind.
pub fn unique_token(prefix: &str) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(WallClock.now_ms());
    format!("{prefix}-{:016x}", h.finish())
}

fn int_reply(reply: &[RedisResult]) -> i64 {
    match reply.first() {
        Some(RedisResult::Int64(n)) => *n,
        _ => 0,
    }
}

/// Starts (or finds) the order's saga in one atomic step, from the order's plan copy; a saga it
/// starts (with `drive_limit`) is queued for the shared batches with `ticket`. With a `caller`,
/// nothing is done for an order whose copy is another user's ([`Begun::OtherUser`]).
pub async fn begin(
    order_id: &str,
    owner: &str,
    now_ms: u64,
    drive_limit: u32,
    ticket: &Ticket,
    caller: Option<&str>,
) -> Result<Begun, ApiError> {
    let queue = Some(ticket.queue_ticket());
    let args = BeginArgs { order_id, owner, now_ms, lease_ms: LEASE_MS, drive_limit, queue, caller };
    // Not retried blindly: a lost reply would make us join our own saga (harmless but slow).
    let reply = script_once(&BEGIN, args.argv()).await?;
    let parts = reply_texts(&reply);
    Begun::decode(&parts).ok_or_else(|| ApiError::Internal(format!("unexpected begin reply {parts:?}")))
}

/// Starts a saga of another workflow than the checkout (a rental, a return) with `record`, the
/// lease held by `owner`; or finds the one with its id ([`Started::Join`]).
pub async fn start<P: SagaPlan>(record: &Record<P>, owner: &str, now_ms: u64) -> Result<Started<P>, ApiError> {
    let args = StartArgs { record, owner, lease_ms: LEASE_MS, now_ms };
    // Not retried blindly: a lost reply would make us join our own saga (harmless but slow).
    let reply = script_once(&START, args.argv()).await?;
    let parts = reply_texts(&reply);
    Started::decode(record.plan.id(), &parts)
        .ok_or_else(|| ApiError::Internal(format!("unexpected start reply {parts:?}")))
}

/// Writes the saga's record after a drive, if `owner` still holds the lease, and with it what
/// comes next ([`SagaNext`]). `Ok(false)`: the lease was lost, nothing written.
pub async fn save<P: SagaPlan>(record: &Record<P>, owner: &str, next: SagaNext, now_ms: u64) -> Result<bool, ApiError> {
    let reply = script_idempotent(&SAVE_RECORD, SaveArgs { record, owner, next, now_ms }.argv()).await?;
    Ok(int_reply(&reply) == 1)
}

/// The saga's record, if it exists (and is of the workflow `P` runs).
pub async fn load<P: SagaPlan>(saga_id: &str) -> Result<Option<Record<P>>, ApiError> {
    Ok(load_raw(saga_id).await?.and_then(|raw| Record::decode_for(saga_id, &raw)))
}

async fn load_raw(saga_id: &str) -> Result<Option<String>, ApiError> {
    let key = scripts::saga_key(saga_id);
    let raw = redis_idempotent(|conn| {
        let key = key.clone();
        async move { conn.get(&key).await }
    })
    .await?;
    Ok(raw.map(|r| String::from_utf8_lossy(&r).into_owned()))
}

/// The stuck sagas: how many there are, and the records of the `limit` stuck longest.
pub async fn stuck(limit: usize) -> Result<(u64, Vec<AnyRecord>), ApiError> {
    let reply = script_idempotent(&LIST_STUCK, [limit.to_string()]).await?;
    let Stuck { total, records } = Stuck::decode(&reply_texts(&reply));
    Ok((total, records))
}

/// What [`take_stuck`] found.
pub enum TakenStuck {
    /// The saga was stuck: it is running again, with the lease held by the caller.
    Taken(Box<AnyRecord>),
    /// It is not stuck (its state as its record says).
    NotStuck(State),
    /// No such saga (or its record is gone).
    Unknown,
    /// Another re-drive changed it meanwhile.
    Raced,
}

/// An operator's re-drive: if the saga is stuck, sets it running again with `budget` more drives
/// and the lease held by `owner` ([`REDRIVE`]), and returns that record.
pub async fn take_stuck(saga_id: &str, owner: &str, budget: u32, now_ms: u64) -> Result<TakenStuck, ApiError> {
    let Some(raw) = load_raw(saga_id).await? else { return Ok(TakenStuck::Unknown) };
    let Some(record) = AnyRecord::decode_for(saga_id, &raw) else { return Ok(TakenStuck::Unknown) };
    let Some(redriven) = record.redriven(budget, now_ms) else { return Ok(TakenStuck::NotStuck(record.state())) };
    let json = redriven.encode();
    let (lease, now) = (LEASE_MS.to_string(), now_ms.to_string());
    // Not retried blindly: a lost reply that had taken the saga would make the retry say "raced".
    let reply =
        script_once(&REDRIVE, [saga_id, raw.as_str(), json.as_str(), owner, lease.as_str(), now.as_str()]).await?;
    Ok(if int_reply(&reply) == 1 { TakenStuck::Taken(Box::new(redriven)) } else { TakenStuck::Raced })
}

/// The attempt number of the order generation's current saga, if any.
pub async fn current_attempt(order_id: &str, generation: i64) -> Result<Option<i64>, ApiError> {
    let key = scripts::checkout_key(order_id, generation);
    let raw = redis_idempotent(|conn| {
        let key = key.clone();
        async move { conn.get(&key).await }
    })
    .await?;
    Ok(raw.and_then(|r| String::from_utf8_lossy(&r).parse().ok()))
}

/// Claims up to `limit` due sagas for `owner`, of every workflow.
pub async fn claim(owner: &str, limit: usize, now_ms: u64) -> Result<Vec<AnyRecord>, ApiError> {
    let (now, lease, limit) = (now_ms.to_string(), LEASE_MS.to_string(), limit.to_string());
    let reply = script_once(&CLAIM, [now, lease, owner.to_string(), limit, state_field(State::Running)]).await?;
    Ok(records_of(&reply_texts(&reply)))
}

/// Whether any running saga is due now (its lease expired or its retry time come).
pub async fn any_due(now_ms: u64) -> Result<bool, ApiError> {
    let now = now_ms.to_string();
    let reply = redis_idempotent(|conn| {
        let now = now.clone();
        async move {
            conn.execute("ZRANGEBYSCORE", args([scripts::ACTIVE_SAGAS, "-inf", now.as_str(), "LIMIT", "0", "1"])).await
        }
    })
    .await?;
    Ok(!reply.is_empty())
}

/// Rings the worker.
pub async fn ring_doorbell() {
    let _ = redis_idempotent(|conn| async move { conn.publish(scripts::DOORBELL, b"due").await }).await;
}

/// The lease of one saga, renewed by the driver as it goes.
pub struct Lease<'a> {
    pub saga_id: &'a str,
    pub owner: &'a str,
}

impl Fence for Lease<'_> {
    async fn renew(&self) -> bool {
        let (lease, now) = (LEASE_MS.to_string(), WallClock.now_ms().to_string());
        let reply = script_idempotent(&RENEW, [self.saga_id, self.owner, &lease, &now]).await;
        matches!(reply, Ok(r) if int_reply(&r) == 1)
    }
}
