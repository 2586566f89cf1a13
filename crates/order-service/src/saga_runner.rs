//! One drive of a saga whose lease the caller holds, and the record written after it: the same
//! for every workflow of the saga table and every driver that is not a checkout request (the
//! worker, an operator's re-drive, a rental or a return request).

use crate::participants::Services;
use crate::saga_store::{self, Lease, SagaNext, WallClock};
use market_core::ApiError;
use order_domain::rental::AnyRecord;
use order_domain::saga::{
    Clock, DriveResult, Participants, Record, RetryPolicy, SagaPlan, State, drive, retry_delay_ms,
};

/// What one drive did.
pub struct Driven {
    /// How the drive ended (the record says what that made of the saga).
    pub result: DriveResult,
    /// The compensation steps it performed.
    pub compensations: u64,
    /// Whether the record was written (`false`: the lease was lost, another driver has it).
    pub written: Result<bool, ApiError>,
}

/// Drives the saga of `record` (leased by `owner`) once, from its first step, and writes its
/// record: final, due again after a back-off, or stuck at its drive limit.
pub async fn drive_and_save<P: SagaPlan>(record: &mut Record<P>, owner: &str, policy: &RetryPolicy, by: &str) -> Driven
where
    Services: Participants<P>,
{
    let clock = WallClock;
    let plan = record.plan.clone();
    let lease = Lease { saga_id: plan.id(), owner };
    let report = drive(&plan, &Services, &clock, &lease, policy, by).await;
    let compensations = report.compensations(plan.workflow());
    let now = clock.now_ms();
    record.apply(&report, now);
    let written = match report.result {
        DriveResult::Final { .. } => saga_store::save(record, owner, SagaNext::Final, now).await,
        DriveResult::Retry { .. } => {
            saga_store::save(record, owner, SagaNext::RetryAt(now + retry_delay_ms(record.drives)), now).await
        }
        DriveResult::Fenced => Ok(false),
    };
    Driven { result: report.result, compensations, written }
}

/// [`drive_and_save`] for a record of any workflow; the record after the drive comes back.
pub async fn drive_any(record: AnyRecord, owner: &str, policy: &RetryPolicy, by: &str) -> (AnyRecord, Driven) {
    match record {
        AnyRecord::Checkout(mut r) => {
            let driven = drive_and_save(&mut r, owner, policy, by).await;
            (AnyRecord::Checkout(r), driven)
        }
        AnyRecord::Rental(mut r) => {
            let driven = drive_and_save(&mut r, owner, policy, by).await;
            (AnyRecord::Rental(r), driven)
        }
    }
}

/// Polls the record of the saga `saga_id` until it has ended (succeeded, failed or stuck), or
/// `limit_ms` after `started` (`None`).
pub async fn wait_for_end<P: SagaPlan>(
    saga_id: &str,
    started: u64,
    limit_ms: u64,
) -> Result<Option<Record<P>>, ApiError> {
    let clock = WallClock;
    let mut pause = 5;
    loop {
        if let Some(record) = saga_store::load::<P>(saga_id).await?
            && record.state != State::Running
        {
            return Ok(Some(record));
        }
        if clock.now_ms().saturating_sub(started) >= limit_ms {
            return Ok(None);
        }
        clock.sleep_ms(pause).await;
        pause = (pause * 2).min(200);
    }
}
