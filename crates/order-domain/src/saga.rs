//! The checkout saga: reserve stock → charge payment → mark the order paid; on a refusal,
//! compensate what was done, in reverse (refund, release).
//!
//! Every participant step is idempotent and keyed by the saga id, and each participant records
//! its decision (e.g. "refused") in its own ledger. Hence a saga can be **re-driven from the
//! start at any time** — after a crash, by another worker — and reaches the same decisions: a
//! reserve already done answers "done", a charge already refused answers "refused", a
//! compensation of a step that never happened is a no-op that also blocks the step for good.
//! The Redis record therefore only needs to say whether the saga is running or finished; it
//! also keeps the history for operators (at most [`HISTORY_CAP`] events). A lease (see
//! `redis_scripts`) keeps two drivers from advancing one saga at once, and the driver re-checks
//! it as it goes ([`Fence`]).
//!
//! Two things keep a saga from running for ever. A participant that calls a step's request
//! invalid (400 or 422: the order cannot be paid as it is, e.g. more lines than a reservation
//! takes) is a permanent answer, [`Outcome::Invalid`]: the saga compensates and fails, like a
//! refusal. And a saga that is still not finished after [`Record::drive_limit`] drives (a step
//! that keeps failing transiently) is [`State::Stuck`]: nobody drives it any more until an
//! operator re-drives it ([`Record::redriven`]).
//!
//! [`drive`] is the whole algorithm; its I/O goes through [`Participants`], [`Clock`] and
//! [`Fence`], so tests run it against fakes with injected failures.

use crate::order::Line;
use market_core::metrics::CheckoutOutcome;
use saga_engine::Workflow;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// What a saga is about: fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Not stored in the record: it is the record's key (see [`Record::decode_for`]).
    #[serde(skip)]
    pub saga_id: String,
    pub order_id: String,
    /// The order's generation (bumped when `batch_init` re-creates it).
    pub generation: i64,
    /// 0 for the first checkout of this order generation, +1 after each failed one. Not stored:
    /// it is part of the saga id.
    #[serde(skip)]
    pub attempt: i64,
    pub user_id: String,
    pub items: Vec<Line>,
    pub total: i64,
}

impl Plan {
    /// Saga ids are derived, never random: if Redis ever lost a saga's record, the next checkout
    /// re-drives the same id and the participants' ledgers dedupe it.
    pub fn saga_id(order_id: &str, generation: i64, attempt: i64) -> String {
        format!("{order_id}.{generation}.{attempt}")
    }

    /// The plan as the order's plan copy holds it (JSON, without saga id and attempt).
    pub fn copy_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The plan of the saga `saga_id`, from its order's plan copy (JSON).
    pub fn from_copy(saga_id: &str, json: &str) -> Option<Plan> {
        let mut plan: Plan = serde_json::from_str(json).ok()?;
        plan.attempt = attempt_of(saga_id)?;
        plan.saga_id = saga_id.to_string();
        Some(plan)
    }
}

/// The attempt number at the end of a saga id (see [`Plan::saga_id`]).
fn attempt_of(saga_id: &str) -> Option<i64> {
    saga_id.rsplit('.').next()?.parse().ok()
}

/// What a saga is about, for any workflow the saga table holds: its id, the workflow it runs,
/// and how it is read back from its record (the id is the record's key, not in its JSON).
pub trait SagaPlan: Clone + Serialize + serde::de::DeserializeOwned {
    /// The saga's id (its record's key).
    fn id(&self) -> &str;
    /// Gives a plan decoded from the record stored under `saga_id` its id (and what the id
    /// carries); `None` if the id is not one of this kind of plan.
    fn identify(&mut self, saga_id: &str) -> Option<()>;
    /// The workflow the saga runs.
    fn workflow(&self) -> &'static Workflow<Step>;
}

impl SagaPlan for Plan {
    fn id(&self) -> &str {
        &self.saga_id
    }
    fn identify(&mut self, saga_id: &str) -> Option<()> {
        self.attempt = attempt_of(saga_id)?;
        self.saga_id = saga_id.to_string();
        Some(())
    }
    fn workflow(&self) -> &'static Workflow<Step> {
        &CHECKOUT
    }
}

/// Whether the saga is running or finished, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Running,
    Paid,
    Failed,
    /// Not finished after its drive limit: left alone (kept, not driven) until an operator
    /// re-drives it. Not final: it may hold reserved stock and charged credit.
    Stuck,
}

/// A participant step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ReserveStock,
    ChargePayment,
    MarkPaid,
    RefundPayment,
    ReleaseStock,
    /// A rental's steps ([`crate::rental::RENTAL`], [`crate::rental::RETURN`]).
    RecordRental,
    CancelRental,
    CreditOwner,
    ReverseCredit,
    MarkActive,
    MarkReturned,
}

impl Step {
    /// The step's name as records show it (`reserve_stock`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Step::ReserveStock => "reserve_stock",
            Step::ChargePayment => "charge_payment",
            Step::MarkPaid => "mark_paid",
            Step::RefundPayment => "refund_payment",
            Step::ReleaseStock => "release_stock",
            Step::RecordRental => "record_rental",
            Step::CancelRental => "cancel_rental",
            Step::CreditOwner => "credit_owner",
            Step::ReverseCredit => "reverse_credit",
            Step::MarkActive => "mark_active",
            Step::MarkReturned => "mark_returned",
        }
    }
}

/// Why "mark paid" refuses: the order is not the one the saga charged for (re-created, or a
/// line added since the plan was read).
pub const ORDER_CHANGED: &str = "the order changed during checkout";

/// How the reason of a saga failed on an [`Outcome::Invalid`] answer begins (the participant's
/// message follows): such a checkout is answered 400, not 409 ([`Record::failed_as_invalid`]).
pub const INVALID_ORDER: &str = "the order cannot be paid as it is: ";

/// The drive limit of a saga whose record does not say (the application variable
/// `saga_max_drives` sets it for new sagas). With the worker's back-off (250 ms doubling to 5 s,
/// [`retry_delay_ms`]), 100 drives are about 8 to 9 minutes of a step failing without a break:
/// longer than a store restart or fail-over, which must not strand sagas for an operator, and
/// short enough that a saga that can never finish costs a bounded amount of work.
pub const DEFAULT_DRIVE_LIMIT: u32 = 100;

/// Most events a record keeps: the first [`HISTORY_HEAD`] and the latest ones; the events
/// dropped from between them are counted in [`Record::history_dropped`]. A drive adds 3 to 7
/// events (more with in-line retries), so 64 keep the first drive or two and the last several
/// whole, and a record stays a few kilobytes however often it is driven.
pub const HISTORY_CAP: usize = 64;
/// How many of the first events a capped history keeps.
pub const HISTORY_HEAD: usize = 16;

/// Parses a drive limit (the application variable `saga_max_drives`): a whole number from 1.
pub fn parse_drive_limit(raw: &str) -> Result<u32, String> {
    match raw.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("saga_max_drives must be a whole number from 1 to {}, not {raw:?}", u32::MAX)),
    }
}

pub use saga_engine::{Clock, Fence, Outcome, RetryPolicy, retry_delay_ms};

/// The checkout as a workflow of the saga engine: reserve the stock (undone by releasing it),
/// charge the payment (undone by refunding it), mark the order paid (nothing to undo).
pub const CHECKOUT: Workflow<Step> = Workflow {
    steps: &[
        (Step::ReserveStock, Some(Step::ReleaseStock)),
        (Step::ChargePayment, Some(Step::RefundPayment)),
        (Step::MarkPaid, None),
    ],
    invalid_reason: INVALID_ORDER,
};

/// What a batch of forward steps answered for one saga ([`Record::decided_by`] and the saga's
/// driver take them as the outcomes of its first steps): its reserve, its charge if the reserve
/// was done, and its "mark paid" if the charge was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAnswers {
    pub reserve: Outcome,
    pub charge: Option<Outcome>,
    pub mark_paid: Option<Outcome>,
}

impl StepAnswers {
    /// For a saga whose batch ended without answers: its driver retries the steps on its own.
    pub fn abandoned() -> Self {
        StepAnswers {
            reserve: Outcome::Transient("its batch ended without answers".into()),
            charge: None,
            mark_paid: None,
        }
    }

    /// The answers in the order of the steps: reserve, then charge and mark paid if answered.
    pub fn answers(&self) -> Vec<&Outcome> {
        std::iter::once(&self.reserve).chain(self.charge.as_ref()).chain(self.mark_paid.as_ref()).collect()
    }
}

/// What becomes of a saga after a drive, when its record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaNext {
    /// It ended (paid, or failed and compensated).
    Final,
    /// It runs on, due again at this time (ms): the worker claims it then. A record that has
    /// reached its drive limit is stuck instead (out of the active set, kept for an operator).
    RetryAt(u64),
}

/// One line of a saga's history.
pub type Event = saga_engine::Event<Step>;

/// The saga's record in Redis, for any workflow ([`SagaPlan`]): a checkout's by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "P: SagaPlan")]
pub struct Record<P = Plan> {
    #[serde(flatten)]
    pub plan: P,
    pub state: State,
    /// Why a failed saga failed (e.g. "out of stock").
    pub reason: Option<String>,
    /// How many times a driver picked it up.
    pub drives: u32,
    /// After this many drives a saga that is still running is [`State::Stuck`].
    #[serde(default = "default_drive_limit")]
    pub drive_limit: u32,
    /// At most [`HISTORY_CAP`] events: the first [`HISTORY_HEAD`], then the latest.
    pub history: Vec<Event>,
    /// How many events were dropped from the middle of `history` to keep it capped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_dropped: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

fn default_drive_limit() -> u32 {
    DEFAULT_DRIVE_LIMIT
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl<P: SagaPlan> Record<P> {
    pub fn new(plan: P, now_ms: u64) -> Self {
        Record {
            plan,
            state: State::Running,
            reason: None,
            drives: 0,
            drive_limit: DEFAULT_DRIVE_LIMIT,
            history: Vec::new(),
            history_dropped: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }

    /// The same record with another drive limit.
    pub fn with_drive_limit(mut self, drive_limit: u32) -> Self {
        self.drive_limit = drive_limit;
        self
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes the record stored under `saga_id`'s key.
    pub fn decode_for(saga_id: &str, raw: &str) -> Option<Record<P>> {
        let mut record: Record<P> = serde_json::from_str(raw).ok()?;
        record.plan.identify(saga_id)?;
        Some(record)
    }

    /// Folds a drive's report into the record. A drive that ends for a retry when the saga has
    /// had its [`Record::drive_limit`] drives leaves it [`State::Stuck`] instead.
    pub fn apply(&mut self, report: &DriveReport, now_ms: u64) {
        self.drives = self.drives.saturating_add(1);
        self.add_history(&report.events);
        self.updated_ms = now_ms;
        match &report.result {
            DriveResult::Final { succeeded, reason } => {
                self.state = if *succeeded { State::Paid } else { State::Failed };
                self.reason = reason.clone();
            }
            DriveResult::Retry { step, error } if self.drives >= self.drive_limit => {
                self.state = State::Stuck;
                self.reason = Some(format!(
                    "not finished after {} drives; the last one stopped at {}: {error}",
                    self.drives,
                    step.name()
                ));
            }
            DriveResult::Retry { .. } | DriveResult::Fenced => {}
        }
    }

    /// Appends events, keeping at most [`HISTORY_CAP`]: the first [`HISTORY_HEAD`] and the
    /// latest; the ones dropped between them are counted.
    fn add_history(&mut self, events: &[Event]) {
        self.history.extend_from_slice(events);
        let excess = self.history.len().saturating_sub(HISTORY_CAP);
        if excess > 0 {
            self.history.drain(HISTORY_HEAD..HISTORY_HEAD + excess);
            self.history_dropped += excess as u64;
        }
    }

    /// A stuck saga handed back to the drivers by an operator: running again, with `budget`
    /// more drives before it is stuck again. `None` unless it is stuck.
    pub fn redriven(&self, budget: u32, now_ms: u64) -> Option<Record<P>> {
        if self.state != State::Stuck {
            return None;
        }
        let mut record = self.clone();
        record.state = State::Running;
        record.reason = None;
        record.drive_limit = self.drives.saturating_add(budget.max(1));
        record.updated_ms = now_ms;
        Some(record)
    }

    /// Whether the saga failed because a participant called its request invalid (the
    /// workflow's `invalid_reason`): for a checkout, the order cannot be paid as it is (it
    /// answers 400).
    pub fn failed_as_invalid(&self) -> bool {
        let invalid = self.plan.workflow().invalid_reason;
        self.state == State::Failed && self.reason.as_deref().is_some_and(|r| r.starts_with(invalid))
    }
}

impl Record {
    /// The JSON object of a new running record without its plan's fields. The plan's JSON
    /// ([`Plan::copy_json`]) without its closing brace, a comma, and this without its opening
    /// brace, is the record's JSON: that is how `BEGIN` writes it from the plan copy.
    pub fn running_tail_json(now_ms: u64, drive_limit: u32) -> String {
        #[derive(Serialize)]
        struct Tail<'a> {
            state: State,
            reason: Option<&'a str>,
            drives: u32,
            drive_limit: u32,
            history: [Event; 0],
            created_ms: u64,
            updated_ms: u64,
        }
        let tail = Tail {
            state: State::Running,
            reason: None,
            drives: 0,
            drive_limit,
            history: [],
            created_ms: now_ms,
            updated_ms: now_ms,
        };
        serde_json::to_string(&tail).unwrap_or_default()
    }

    /// The final record of a saga whose first answers (reserve, then charge, then mark paid, as
    /// far as they went) decide it with no further call: paid, or refused at its reserve. It is
    /// the record [`drive`] would end with on those answers, except for its times. `None` when
    /// the saga needs more: a retry, or a compensation.
    pub fn decided_by(plan: &Plan, created_ms: u64, answers: &[&Outcome], now_ms: u64, by: &str) -> Option<Record> {
        let mut events = Vec::new();
        let mut step = CHECKOUT.first();
        for outcome in answers {
            events.push(Event::new(now_ms, by, step, outcome));
            match next(step, outcome, None) {
                Next::Do { step: forward, reason: None } => step = forward,
                Next::Finish { state, reason } => {
                    let mut record = Record::new(plan.clone(), created_ms);
                    let succeeded = state == State::Paid;
                    record.apply(&DriveReport { result: DriveResult::Final { succeeded, reason }, events }, now_ms);
                    return Some(record);
                }
                _ => return None,
            }
        }
        None
    }

    /// How a checkout answered with this record is counted (`market_core::metrics`): paid,
    /// stuck, refused by the stock or the payment service (the step whose refusal failed it),
    /// or failed otherwise (invalid order, order changed, ...). `None` while it runs.
    pub fn checkout_outcome(&self) -> Option<CheckoutOutcome> {
        match self.state {
            State::Running => None,
            State::Paid => Some(CheckoutOutcome::Paid),
            State::Stuck => Some(CheckoutOutcome::Stuck),
            State::Failed if self.failed_as_invalid() => Some(CheckoutOutcome::Failed),
            State::Failed => {
                let refused = self.history.iter().rev().find(|e| e.outcome.starts_with("refused: "));
                Some(match refused.map(|e| e.step) {
                    Some(Step::ReserveStock) => CheckoutOutcome::RefusedStock,
                    Some(Step::ChargePayment) => CheckoutOutcome::RefusedCredit,
                    _ => CheckoutOutcome::Failed,
                })
            }
        }
    }
}

/// Where the saga goes after a step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Do { step: Step, reason: Option<String> },
    Finish { state: State, reason: Option<String> },
    Retry { step: Step, error: String },
}

/// The checkout's state machine: [`CHECKOUT`]'s transitions (derived by the saga engine from
/// the declaration), with its success named [`State::Paid`]. `reason` is why the saga is
/// compensating, if it is.
pub fn next(step: Step, outcome: &Outcome, reason: Option<String>) -> Next {
    match CHECKOUT.next(step, outcome, reason) {
        saga_engine::Next::Do { step, reason } => Next::Do { step, reason },
        saga_engine::Next::Retry { step, error } => Next::Retry { step, error },
        saga_engine::Next::Finish { succeeded, reason } => {
            Next::Finish { state: if succeeded { State::Paid } else { State::Failed }, reason }
        }
    }
}

/// The saga's participants.
pub trait Participants<P = Plan> {
    fn perform(&self, step: Step, plan: &P) -> impl Future<Output = Outcome>;

    /// A step performed with why the saga compensates, if it does (`reason`): a participant
    /// that keeps the reason of a failed saga (a rental's `cancel_rental`) takes it from here.
    fn perform_because(&self, step: Step, plan: &P, reason: Option<String>) -> impl Future<Output = Outcome> {
        let _ = reason;
        self.perform(step, plan)
    }
}

/// How a drive ended.
pub type DriveResult = saga_engine::DriveResult<Step>;
/// What a drive did.
pub type DriveReport = saga_engine::DriveReport<Step>;

/// Runs the saga of `plan` (its workflow: [`SagaPlan::workflow`]) from its first step until it
/// finishes, keeps failing, or the lease is lost: the saga engine's driver, for every workflow.
pub async fn drive<P: SagaPlan, X: Participants<P>, C: Clock, F: Fence>(
    plan: &P,
    participants: &X,
    clock: &C,
    fence: &F,
    policy: &RetryPolicy,
    by: &str,
) -> DriveReport {
    let perform = |step, reason| participants.perform_because(step, plan, reason);
    saga_engine::drive(plan.workflow(), perform, clock, fence, policy, by).await
}

#[cfg(test)]
mod tests;
