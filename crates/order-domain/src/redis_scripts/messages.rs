//! What the order service's scripts and its Rust code exchange: each format defined once, here,
//! next to the `.lua` files that read or write it, and tested through those scripts against a
//! real Redis (`tests.rs`), never against a copy of the format.
//!
//! | format | written by | read by |
//! | --- | --- | --- |
//! | [`QueueEntry`] | `BEGIN` (the Lua) | [`QueueEntry::decode`], of what `BATCH_TAKE` returns |
//! | [`SettleArgs`] | the batch's leader | `BATCH_SETTLE` |
//! | [`MailboxMessage`] | `BATCH_SETTLE` (its lines), with the answers [`SettleArgs`] encoded | [`MailboxMessage::decode`], in each instance's listener |
//! | [`state_field`] | [`Record::encode`] (serde) | `BEGIN` (failed?), `CLAIM` (running?) |
//! | [`BeginArgs`], [`Begun`] | [`BeginArgs::argv`]; `BEGIN` | `BEGIN`; [`Begun::decode`] |
//! | [`SaveArgs`] | [`SaveArgs::argv`] | `SAVE_RECORD` |
//! | [`put_plans_argv`] | the service | `PUT_PLANS` |
//! | [`records_of`], [`Stuck`] | `CLAIM`, `LIST_STUCK` | the service |

use super::RECORD_RETENTION_MS;
use crate::rental::AnyRecord;
use crate::saga::{Outcome, Plan, Record, SagaNext, SagaPlan, State, StepAnswers};
use serde_json::{Value, json};

/// The field that tells a saga record's state, as it is in the record's JSON
/// ([`Record::encode`]): `"state":"running"`, `"state":"failed"`, ... Serde's encoding of
/// [`State`] is its one definition: the scripts get it as an argument and find it in a record by
/// plain substring search (`BEGIN`: is the record failed; `CLAIM`: is it running). Only the
/// top-level field can match: JSON escapes every `"` inside a string, so no id or reason holds
/// the sequence, and the plan and history hold no other `state` field.
pub fn state_field(state: State) -> String {
    format!("\"state\":{}", serde_json::to_string(&state).unwrap_or_default())
}

/// The arguments of `BEGIN`.
#[derive(Debug, Clone)]
pub struct BeginArgs<'a> {
    pub order_id: &'a str,
    /// The checkout's owner token: it holds the lease of a saga this starts.
    pub owner: &'a str,
    pub now_ms: u64,
    pub lease_ms: u64,
    /// The drive limit of a saga this starts.
    pub drive_limit: u32,
    /// The user the checkout acts for (where tokens are required): `BEGIN` does nothing for an
    /// order whose plan copy is another user's. `None`: anyone.
    pub caller: Option<&'a str>,
    /// Queue a saga this starts for the shared batches, with this ticket (`None`: do not).
    pub queue: Option<QueueTicket<'a>>,
}

/// What `BEGIN` queues a saga with: the checkout's ticket token and instance mailbox, and how
/// long the leader lock lasts if the checkout takes it.
#[derive(Debug, Clone, Copy)]
pub struct QueueTicket<'a> {
    pub token: &'a str,
    pub mailbox: &'a str,
    pub leader_ms: u64,
}

impl BeginArgs<'_> {
    /// ARGV: order id, a running record's JSON without its plan, now ms, lease ms, owner token,
    /// ticket token (`""`: do not queue), mailbox, leader lock ms, the failed state's field, the
    /// caller (`""`: anyone).
    pub fn argv(&self) -> Vec<String> {
        let (token, mailbox, leader_ms) = match self.queue {
            Some(q) => (q.token, q.mailbox, q.leader_ms),
            None => ("", "", 0),
        };
        vec![
            self.order_id.to_string(),
            Record::running_tail_json(self.now_ms, self.drive_limit),
            self.now_ms.to_string(),
            self.lease_ms.to_string(),
            self.owner.to_string(),
            token.to_string(),
            mailbox.to_string(),
            leader_ms.to_string(),
            state_field(State::Failed),
            self.caller.unwrap_or("").to_string(),
        ]
    }
}

/// What `BEGIN` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// This call started the saga (attempt) from the order's plan copy, and the caller owns its
    /// lease; `leading` if it was queued with a ticket and took the lead of the shared batches.
    Drive { plan: Plan, leading: bool },
    /// A saga of this order generation is running or has paid it: wait for it.
    Join { saga_id: String, record: Option<Record> },
    /// The order has no plan copy (unknown order, or a copy not written): read Postgres.
    NoCopy,
    /// The plan copy is another user's than [`BeginArgs::caller`]: nothing was done (the copy
    /// may be old: Postgres decides).
    OtherUser,
}

impl Begun {
    /// `BEGIN`'s reply (as text): `drive, saga id, plan JSON, leading ("1" | "0")`, `join, saga
    /// id, record JSON`, or `nocopy`. `None` for anything else.
    pub fn decode(reply: &[String]) -> Option<Begun> {
        match (reply.first().map(String::as_str), reply.get(1), reply.get(2)) {
            (Some("nocopy"), _, _) => Some(Begun::NoCopy),
            (Some("other_user"), _, _) => Some(Begun::OtherUser),
            (Some("drive"), Some(saga_id), Some(copy)) => Some(Begun::Drive {
                plan: Plan::from_copy(saga_id, copy)?,
                leading: reply.get(3).is_some_and(|l| l == "1"),
            }),
            (Some("join"), Some(saga_id), record) => Some(Begun::Join {
                saga_id: saga_id.clone(),
                record: record.and_then(|r| Record::decode_for(saga_id, r)),
            }),
            _ => None,
        }
    }
}

/// A saga waiting in the queue of the shared batches (`orders:fwd:queue`), as `BEGIN` queues it:
/// six lines — its ticket token, its instance's mailbox, its checkout's owner token, when its
/// record was created (ms), its saga id, its plan's JSON (one line: JSON escapes newlines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub token: String,
    pub mailbox: String,
    pub owner: String,
    pub created_ms: u64,
    /// With its saga id and attempt.
    pub plan: Plan,
}

impl QueueEntry {
    /// An entry of the queue (one value of `BATCH_TAKE`'s reply); `None` if it is not one.
    pub fn decode(entry: &str) -> Option<QueueEntry> {
        let mut lines = entry.splitn(6, '\n');
        let (token, mailbox, owner) = (lines.next()?, lines.next()?, lines.next()?);
        let created_ms = lines.next()?.parse().ok()?;
        let (saga_id, plan) = (lines.next()?, lines.next()?);
        let plan = Plan::from_copy(saga_id, plan)?;
        Some(QueueEntry { token: token.into(), mailbox: mailbox.into(), owner: owner.into(), created_ms, plan })
    }
}

/// The arguments of `START`: a new running record of a rental or a return, and the lease its
/// driver takes.
#[derive(Debug, Clone, Copy)]
pub struct StartArgs<'a, P> {
    pub record: &'a Record<P>,
    pub owner: &'a str,
    pub lease_ms: u64,
    pub now_ms: u64,
}

impl<P: SagaPlan> StartArgs<'_, P> {
    /// ARGV: saga id, record JSON, owner token, lease ms, now ms.
    pub fn argv(&self) -> Vec<String> {
        vec![
            self.record.plan.id().to_string(),
            self.record.encode(),
            self.owner.to_string(),
            self.lease_ms.to_string(),
            self.now_ms.to_string(),
        ]
    }
}

/// What `START` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started<P> {
    /// The saga was started: the caller owns its lease and drives it.
    Drive,
    /// The saga exists already: its record (running, or ended).
    Join(Option<Record<P>>),
}

impl<P: SagaPlan> Started<P> {
    /// `START`'s reply (as text), for the saga `saga_id`.
    pub fn decode(saga_id: &str, reply: &[String]) -> Option<Started<P>> {
        match reply {
            [tag] if tag == "drive" => Some(Started::Drive),
            [tag, record] if tag == "join" => Some(Started::Join(Record::decode_for(saga_id, record))),
            _ => None,
        }
    }
}

/// The arguments of `SAVE_RECORD`: a saga's record after a drive, written if `owner` still holds
/// its lease, and what comes next for the saga.
#[derive(Debug, Clone, Copy)]
pub struct SaveArgs<'a, P = Plan> {
    pub record: &'a Record<P>,
    pub owner: &'a str,
    pub next: SagaNext,
    pub now_ms: u64,
}

impl<P: SagaPlan> SaveArgs<'_, P> {
    /// ARGV: saga id, owner token, record JSON, mode (`s` stuck — whatever comes next, a stuck
    /// record is kept for an operator —, `1` final, `0` retry), due ms (of a retry, else 0), now
    /// ms, retention ms ([`RECORD_RETENTION_MS`]).
    pub fn argv(&self) -> Vec<String> {
        let (mode, due_ms) = match (self.record.state, self.next) {
            (State::Stuck, _) => ("s", 0),
            (_, SagaNext::Final) => ("1", 0),
            (_, SagaNext::RetryAt(due)) => ("0", due),
        };
        vec![
            self.record.plan.id().to_string(),
            self.owner.to_string(),
            self.record.encode(),
            mode.to_string(),
            due_ms.to_string(),
            self.now_ms.to_string(),
            RECORD_RETENTION_MS.to_string(),
        ]
    }
}

/// The arguments of `BATCH_SETTLE`: a batch's answers, for each saga of it but the leader's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleArgs {
    /// How long the mailboxes keep the messages after the last one pushed.
    pub box_ms: u64,
    pub now_ms: u64,
    pub sagas: Vec<SettleSaga>,
}

/// One saga of [`SettleArgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleSaga {
    /// Where its checkout waits: its instance's mailbox and its ticket token.
    pub mailbox: String,
    pub token: String,
    /// What the batch answered for it.
    pub steps: StepAnswers,
    pub saga_id: String,
    /// The owner token its checkout holds the lease with.
    pub owner: String,
    /// Its final record, if the answers decide it ([`Record::decided_by`]): the script ends the
    /// saga with it (if the lease is still the checkout's).
    pub record: Option<Record>,
}

impl SettleArgs {
    /// ARGV: box ms, now ms, retention ms, then six per saga: mailbox, ticket token, answers
    /// (JSON), saga id, owner token, final record JSON (`""` when the answers do not decide the
    /// saga).
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec![self.box_ms.to_string(), self.now_ms.to_string(), RECORD_RETENTION_MS.to_string()];
        for s in &self.sagas {
            argv.extend([
                s.mailbox.clone(),
                s.token.clone(),
                encode_answers(&s.steps),
                s.saga_id.clone(),
                s.owner.clone(),
                s.record.as_ref().map(Record::encode).unwrap_or_default(),
            ]);
        }
        argv
    }
}

/// What `BATCH_SETTLE` pushes to an instance's mailbox for one saga: three lines — the ticket
/// token of the checkout that waits for it, `1` if the script ended the saga (else `0`), the
/// batch's answers (the JSON [`SettleArgs`] encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxMessage {
    pub token: String,
    /// Whether the settle ended the saga (its record is final, its lease gone).
    pub settled: bool,
    pub steps: StepAnswers,
}

impl MailboxMessage {
    /// The ticket token a message is for, even when the rest of it does not decode (its
    /// checkout is woken all the same, and retries its steps on its own).
    pub fn token_of(message: &str) -> Option<&str> {
        message.split_once('\n').map(|(token, _)| token)
    }

    pub fn decode(message: &str) -> Option<MailboxMessage> {
        let (token, rest) = message.split_once('\n')?;
        let (settled, answers) = rest.split_once('\n')?;
        Some(MailboxMessage { token: token.to_string(), settled: settled == "1", steps: decode_answers(answers)? })
    }
}

/// A batch's answers for one saga as JSON: `[reserve, charge, mark_paid]`, each `{"done":
/// true}`, `{"refused": reason}`, `{"invalid": message}`, `{"transient": error}`, or `null`
/// (not answered; never the reserve).
fn encode_answers(steps: &StepAnswers) -> String {
    let outcome = |outcome: &Outcome| match outcome {
        Outcome::Done => json!({ "done": true }),
        Outcome::Refused(reason) => json!({ "refused": reason }),
        Outcome::Invalid(message) => json!({ "invalid": message }),
        Outcome::Transient(error) => json!({ "transient": error }),
    };
    json!([outcome(&steps.reserve), steps.charge.as_ref().map(outcome), steps.mark_paid.as_ref().map(outcome)])
        .to_string()
}

fn decode_answers(json: &str) -> Option<StepAnswers> {
    let outcome = |v: &Value| {
        if v.is_null() {
            return None;
        }
        Some(if let Some(reason) = v["refused"].as_str() {
            Outcome::Refused(reason.to_string())
        } else if let Some(message) = v["invalid"].as_str() {
            Outcome::Invalid(message.to_string())
        } else if let Some(error) = v["transient"].as_str() {
            Outcome::Transient(error.to_string())
        } else if v["done"] == json!(true) {
            Outcome::Done
        } else {
            Outcome::Transient(format!("unreadable answer {v}"))
        })
    };
    let answers: Value = serde_json::from_str(json).ok()?;
    Some(StepAnswers { reserve: outcome(&answers[0])?, charge: outcome(&answers[1]), mark_paid: outcome(&answers[2]) })
}

/// The arguments of `PUT_PLANS`: four per plan — order id, generation, line count, the plan's
/// JSON ([`Plan::copy_json`]).
pub fn put_plans_argv<'a>(plans: impl IntoIterator<Item = &'a Plan>) -> Vec<String> {
    plans
        .into_iter()
        .flat_map(|p| [p.order_id.clone(), p.generation.to_string(), p.items.len().to_string(), p.copy_json()])
        .collect()
}

/// The records of a reply of `saga id, record JSON` pairs (`CLAIM`'s), whatever their
/// workflow; a record that does not decode is left out.
pub fn records_of(pairs: &[String]) -> Vec<AnyRecord> {
    pairs
        .chunks(2)
        .filter_map(|pair| match pair {
            [id, raw] => AnyRecord::decode_for(id, raw),
            _ => None,
        })
        .collect()
}

/// What `LIST_STUCK` answered: how many sagas are stuck, and the records it listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub total: u64,
    pub records: Vec<AnyRecord>,
}

impl Stuck {
    /// `LIST_STUCK`'s reply (as text): the total, then `saga id, record JSON` pairs.
    pub fn decode(reply: &[String]) -> Stuck {
        let total = reply.first().and_then(|n| n.parse().ok()).unwrap_or(0);
        Stuck { total, records: records_of(&reply[1.min(reply.len())..]) }
    }
}
