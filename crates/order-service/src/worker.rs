//! The saga worker: woken by a Redis message (a doorbell, a lease or alarm expiring), it claims
//! the due sagas in batches and drives them concurrently until none is due.
//!
//! The message itself carries nothing: Spin's Redis trigger delivers each message once, to one
//! invocation at a time, with no redelivery, so the work lives in Redis (`orders:sagas:active`)
//! and any message, or several, lead to the same drain.

use crate::participants::Services;
use crate::saga_store::{self, LEASE_MS, Lease, WallClock, owner_token};
use order_domain::saga::{Clock, DriveResult, Record, RetryPolicy, drive, retry_delay_ms};
use spin_kit::concurrent::join_all;

/// Sagas claimed and driven at once.
const BATCH: usize = 32;
/// Longest one invocation drains before it returns (the alarm it armed wakes the next one).
const MAX_DRAIN_MS: u64 = 30_000;

fn worker_policy() -> RetryPolicy {
    RetryPolicy { backoff_ms: vec![50, 200], renew_every_ms: LEASE_MS / 3 }
}

/// Drives every due saga. Errors are Redis failures: the next message retries.
pub async fn drain() -> anyhow::Result<()> {
    let clock = WallClock;
    let started = clock.now_ms();
    let owner = owner_token("worker");
    loop {
        let claimed = saga_store::claim(&owner, BATCH, clock.now_ms()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if claimed.is_empty() {
            return Ok(());
        }
        join_all(claimed.into_iter().map(|record| drive_one(record, &owner)).collect()).await;
        if clock.now_ms().saturating_sub(started) > MAX_DRAIN_MS {
            return Ok(());
        }
    }
}

async fn drive_one(mut record: Record, owner: &str) {
    let clock = WallClock;
    let plan = record.plan.clone();
    let lease = Lease { saga_id: &plan.saga_id, owner };
    let report = drive(&plan, &Services, &clock, &lease, &worker_policy(), "worker").await;
    let now = clock.now_ms();
    record.apply(&report, now);
    let written = match report.result {
        DriveResult::Final { .. } => saga_store::finish(&record, owner, true, 0, now).await,
        DriveResult::Retry { .. } => saga_store::finish(&record, owner, false, now + retry_delay_ms(record.drives), now).await,
        DriveResult::Fenced => Ok(false),
    };
    if let Err(e) = written {
        eprintln!("saga {}: record not written ({e}); its lease expires and it is driven again", plan.saga_id);
    }
}
