//! The saga state machine, declared instead of written per workflow.
//!
//! A workflow declares its forward steps in order, each with the step that undoes it (`None`:
//! nothing to undo, e.g. a last step that only records the success). [`Workflow::next`] derives
//! every transition from that declaration and a participant's [`Outcome`]:
//!
//! * a step **done** leads to the next step, or, after the last, to success;
//! * a step **refused** (for good: e.g. out of stock) undoes the steps before it, latest first
//!   (an all-or-nothing step that was refused left nothing of its own to undo), then fails;
//! * a step called **invalid** (its request can never be done) undoes it too, in case, and the
//!   steps before it, then fails, its reason marked with the workflow's `invalid_reason` prefix;
//! * an undo step is never refused ("nothing to undo" is done too): whatever it answers but a
//!   transient failure or "invalid", the next undo follows, then failure; an undo called invalid
//!   is retried (an undo must happen: the drive limit hands such a saga to an operator);
//! * a **transient** failure retries the same step.
//!
//! The reason a compensating saga carries is the first refusal's.
//!
//! [`drive`] runs a saga of a workflow from its first step until it finishes, keeps failing, or
//! its driver's lease is lost; its I/O goes through the step performer it is given, [`Clock`]
//! and [`Fence`], so tests run it against fakes with injected failures. What a drive did is a
//! [`DriveReport`]: its outcome and its [`Event`]s. Where the saga's record lives and who drives
//! it (the checkout request, the worker) is the caller's.

use serde::{Deserialize, Serialize};
use std::future::Future;

/// What a participant answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step is done (now or before).
    Done,
    /// The participant refused, for good (e.g. out of stock): compensate.
    Refused(String),
    /// The participant called the request invalid (HTTP 400 or 422): it will never be done,
    /// for good. The saga compensates (the step too, in case) and fails.
    Invalid(String),
    /// No answer or a temporary failure: the step may have happened or not; retry it.
    Transient(String),
}

/// Where a saga goes after a step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<S> {
    /// Perform `step`; `reason` is why the saga compensates, if it does.
    Do { step: S, reason: Option<String> },
    /// The saga ends: succeeded (every forward step done) or failed (compensated), and why.
    Finish { succeeded: bool, reason: Option<String> },
    /// Perform `step` again later.
    Retry { step: S, error: String },
}

/// A workflow as declared: its forward steps in order, each with the step that undoes it.
#[derive(Debug, Clone, Copy)]
pub struct Workflow<S: 'static> {
    pub steps: &'static [(S, Option<S>)],
    /// How the reason of a saga failed on an [`Outcome::Invalid`] begins (the participant's
    /// message follows).
    pub invalid_reason: &'static str,
}

impl<S: Copy + Eq + std::fmt::Debug> Workflow<S> {
    /// The step a saga starts with.
    pub fn first(&self) -> S {
        self.steps[0].0
    }

    /// The transition after `step` answered `outcome`, while compensating for `reason` (if it
    /// is). A step the workflow does not declare retries (a bug: the driver keeps its record).
    pub fn next(&self, step: S, outcome: &Outcome, reason: Option<String>) -> Next<S> {
        if let Outcome::Transient(e) = outcome {
            return Next::Retry { step, error: e.clone() };
        }
        if let Some(i) = self.steps.iter().position(|(forward, _)| *forward == step) {
            let why = |r: &str| Some(reason.clone().unwrap_or_else(|| r.to_string()));
            return match outcome {
                Outcome::Done => match self.steps.get(i + 1) {
                    Some((next, _)) => Next::Do { step: *next, reason: None },
                    None => Next::Finish { succeeded: true, reason: None },
                },
                Outcome::Refused(r) => self.undo_before(i, why(r)),
                Outcome::Invalid(m) => self
                    .undo_before(i + 1, Some(reason.clone().unwrap_or_else(|| format!("{}{m}", self.invalid_reason)))),
                Outcome::Transient(_) => unreachable!("handled above"),
            };
        }
        if let Some(k) = self.steps.iter().position(|(_, undo)| *undo == Some(step)) {
            return match outcome {
                Outcome::Invalid(m) => Next::Retry { step, error: format!("invalid request: {m}") },
                _ => self.undo_before(k, reason),
            };
        }
        Next::Retry { step, error: format!("{step:?} is not a step of this workflow") }
    }

    /// The latest undo among the first `end` steps, or failure when there is none.
    fn undo_before(&self, end: usize, reason: Option<String>) -> Next<S> {
        match self.steps[..end].iter().rev().find_map(|(_, undo)| *undo) {
            Some(undo) => Next::Do { step: undo, reason },
            None => Next::Finish { succeeded: false, reason },
        }
    }
}

/// One line of a saga's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event<S> {
    pub at_ms: u64,
    /// Who drove (e.g. "checkout", the request itself, or "worker").
    pub by: String,
    pub step: S,
    /// "done", "refused: <reason>", "invalid: <message>" or "error: <message>".
    pub outcome: String,
}

impl<S> Event<S> {
    pub fn new(at_ms: u64, by: &str, step: S, outcome: &Outcome) -> Self {
        let outcome = match outcome {
            Outcome::Done => "done".to_string(),
            Outcome::Refused(r) => format!("refused: {r}"),
            Outcome::Invalid(m) => format!("invalid: {m}"),
            Outcome::Transient(e) => format!("error: {e}"),
        };
        Event { at_ms, by: by.to_string(), step, outcome }
    }
}

/// Time, and waiting.
pub trait Clock {
    fn now_ms(&self) -> u64;
    fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()>;
}

/// The driver's lease: `renew` extends it and says whether it is still ours.
pub trait Fence {
    fn renew(&self) -> impl Future<Output = bool>;
}

/// How a driver retries a step that failed transiently before handing the saga back.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Waits between inline retries of one step; when they run out the drive ends with `Retry`.
    pub backoff_ms: Vec<u64>,
    /// Renew the lease when this long passed since the last renewal (a third of the lease).
    pub renew_every_ms: u64,
}

/// How a drive ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveResult<S> {
    /// Succeeded (every forward step done) or failed (compensated).
    Final { succeeded: bool, reason: Option<String> },
    /// A step kept failing transiently: drive again later.
    Retry { step: S, error: String },
    /// The lease was lost: another driver owns the saga; this one wrote nothing.
    Fenced,
}

/// What a drive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveReport<S> {
    pub result: DriveResult<S>,
    pub events: Vec<Event<S>>,
}

impl<S: Copy + Eq + std::fmt::Debug> DriveReport<S> {
    /// The undo steps of `workflow` this drive performed.
    pub fn compensations(&self, workflow: &Workflow<S>) -> u64 {
        let undo = |e: &&Event<S>| e.outcome == "done" && workflow.steps.iter().any(|(_, u)| *u == Some(e.step));
        self.events.iter().filter(undo).count() as u64
    }
}

/// Runs a saga of `workflow` from its first step until it finishes, keeps failing, or the lease
/// is lost. `perform` performs one step (the workflow's participants, with the saga's plan), given
/// why the saga compensates, if it does.
pub async fn drive<S, F, Fut, C, L>(
    workflow: &Workflow<S>,
    perform: F,
    clock: &C,
    fence: &L,
    policy: &RetryPolicy,
    by: &str,
) -> DriveReport<S>
where
    S: Copy + Eq + std::fmt::Debug,
    F: Fn(S, Option<String>) -> Fut,
    Fut: Future<Output = Outcome>,
    C: Clock,
    L: Fence,
{
    let mut events = Vec::new();
    let mut step = workflow.first();
    let mut reason: Option<String> = None;
    let mut retries = 0usize;
    let mut renewed_at = clock.now_ms();
    loop {
        if clock.now_ms().saturating_sub(renewed_at) >= policy.renew_every_ms {
            if !fence.renew().await {
                return DriveReport { result: DriveResult::Fenced, events };
            }
            renewed_at = clock.now_ms();
        }
        let outcome = perform(step, reason.clone()).await;
        events.push(Event::new(clock.now_ms(), by, step, &outcome));
        match workflow.next(step, &outcome, reason.clone()) {
            Next::Do { step: s, reason: r } => {
                step = s;
                reason = r;
                retries = 0;
            }
            Next::Finish { succeeded, reason } => {
                return DriveReport { result: DriveResult::Final { succeeded, reason }, events };
            }
            Next::Retry { step: s, error } => match policy.backoff_ms.get(retries) {
                Some(&wait) => {
                    retries += 1;
                    clock.sleep_ms(wait).await;
                    step = s;
                }
                None => return DriveReport { result: DriveResult::Retry { step: s, error }, events },
            },
        }
    }
}

/// When a saga that must be retried is due again: grows with the number of drives, capped.
pub fn retry_delay_ms(drives: u32) -> u64 {
    (250u64 << drives.min(5)).min(5_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum S {
        Hold,
        Charge,
        Credit,
        Record,
        Free,
        Refund,
        Debit,
    }
    use S::*;

    /// A rental-shaped workflow: three steps with undos, a last one without.
    const RENT: Workflow<S> = Workflow {
        steps: &[(Hold, Some(Free)), (Charge, Some(Refund)), (Credit, Some(Debit)), (Record, None)],
        invalid_reason: "invalid: ",
    };

    fn refused() -> Outcome {
        Outcome::Refused("no".into())
    }

    fn run(from: S, outcomes: &[Outcome]) -> Vec<Next<S>> {
        let (mut step, mut reason, mut out) = (from, None, Vec::new());
        for outcome in outcomes {
            let next = RENT.next(step, outcome, reason.clone());
            if let Next::Do { step: s, reason: r } = &next {
                step = *s;
                reason = r.clone();
            }
            out.push(next);
        }
        out
    }

    #[test]
    fn done_steps_lead_to_success() {
        let nexts = run(RENT.first(), &[Outcome::Done, Outcome::Done, Outcome::Done, Outcome::Done]);
        assert_eq!(nexts.last(), Some(&Next::Finish { succeeded: true, reason: None }));
        assert_eq!(nexts[0], Next::Do { step: Charge, reason: None });
    }

    #[test]
    fn a_refusal_undoes_the_steps_before_it_latest_first_and_fails_with_its_reason() {
        let nexts = run(Hold, &[Outcome::Done, Outcome::Done, refused(), Outcome::Done, Outcome::Done]);
        let why = Some("no".to_string());
        assert_eq!(
            nexts[2..],
            [
                Next::Do { step: Refund, reason: why.clone() },
                Next::Do { step: Free, reason: why.clone() },
                Next::Finish { succeeded: false, reason: why }
            ]
        );
        assert_eq!(RENT.next(Hold, &refused(), None), Next::Finish { succeeded: false, reason: Some("no".into()) });
    }

    #[test]
    fn an_invalid_step_is_undone_too_and_an_invalid_undo_is_retried() {
        let invalid = Outcome::Invalid("bad".into());
        assert_eq!(RENT.next(Charge, &invalid, None), Next::Do { step: Refund, reason: Some("invalid: bad".into()) });
        // The last step has no undo: the latest before it.
        assert_eq!(RENT.next(Record, &invalid, None), Next::Do { step: Debit, reason: Some("invalid: bad".into()) });
        assert_eq!(RENT.next(Free, &invalid, None), Next::Retry { step: Free, error: "invalid request: bad".into() });
        // Undos are never refused.
        assert_eq!(RENT.next(Debit, &refused(), Some("r".into())), Next::Do { step: Refund, reason: Some("r".into()) });
        assert_eq!(
            RENT.next(Free, &refused(), Some("r".into())),
            Next::Finish { succeeded: false, reason: Some("r".into()) }
        );
    }

    #[test]
    fn a_transient_failure_retries_the_same_step() {
        for step in [Hold, Record, Refund] {
            assert_eq!(RENT.next(step, &Outcome::Transient("t".into()), None), Next::Retry { step, error: "t".into() });
        }
    }
}
