//! Which sagas' forward steps go out together ([`crate::batch_steps`]): a queue in Redis shared
//! by every instance. The host spreads checkouts over many instances (a burst of 128 connections
//! makes dozens of order-service instances, one or two checkouts each), so batches formed inside
//! one instance would stay small exactly when the load is highest. Each saga joins the queue, and
//! one checkout at a time, anywhere, leads: it takes every saga queued, sends their steps as one
//! batch, and settles the others. While a batch is in flight, the next one fills.
//!
//! - A checkout takes a [`Ticket`] before its saga begins; `BEGIN` queues the saga with it and
//!   takes the leader lock if it is free, in the same round trip as starting the saga. The
//!   leader takes sagas until its own is answered; its checkout goes on, and the instance goes
//!   on leading in the background until the queue is empty, which lets go of the lock
//!   ([`BATCH_TAKE`]). A saga queued while the lock is held is taken by that leader, one queued
//!   after it was let go takes the lock itself: no saga waits for a leader that left.
//! - For each saga the batch's answers decide (paid, or refused at its reserve:
//!   [`Record::decided_by`]), the leader also ends the saga, in the step that pushes its answers
//!   to the mailbox of the instance that queued it ([`BATCH_SETTLE`]): its checkout answers as
//!   soon as it reads them, with no round trip of its own. Each instance has one listener that
//!   waits on its mailbox with `BLMPOP` on a Redis connection of its own, and hands the answers
//!   to its waiting checkouts: nobody polls.
//! - Why the leader's batches run in its checkout's own task until its saga is answered, and only
//!   then in a spawned task: a leader spawned at once, while its checkout's task waited for its
//!   answers, saw its chained calls stall until something else woke the instance (measured in
//!   our host, which uses wasmtime-wasi-http's instance worker as Spin does: 0.25–0.3 s under
//!   load, 2.0–2.2 s after a Postgres restart, against 5–8 ms of work in the stock handler).
//! - Nothing here is truth. A leader that dies takes its sagas' answers with it (its lock expires
//!   after [`LEADER_MS`]): after [`GIVE_UP_MS`] without answers, a saga's checkout retries its
//!   steps on its own (the steps are idempotent per saga; a saga still queued then may run once
//!   more, harmlessly), and ends the saga itself. A settle for a checkout that lost its lease
//!   ends nothing: the saga's new owner ends it.

use crate::batch_steps;
use crate::saga_store::{WallClock, unique_token};
use market_core::Script;
use market_core::metrics::Tally;
use order_domain::redis_scripts::{
    BATCH_RELEASE, BATCH_SETTLE, BATCH_TAKE, MailboxMessage, QueueEntry, QueueTicket, SettleArgs, SettleSaga,
    mailbox_key,
};
use order_domain::saga::{Clock, Plan, Record, StepAnswers};
use spin_kit::redis_store::{args, dedicated_redis_connection, reply_texts, script_once};
use spin_kit::signal;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// The leader lock's life without renewal (each batch renews it).
pub const LEADER_MS: u64 = 2_000;
/// Most sagas in one batch.
const MAX_SAGAS: usize = 64;
/// How long answers wait in a mailbox for its listener.
const RESULT_MS: u64 = 60_000;
/// How long a saga waits for its answers before its checkout retries the steps on its own.
pub const GIVE_UP_MS: u64 = 2_000;
/// How long one `BLMPOP` of the listener blocks (then it checks for checkouts that gave up).
const LISTEN_SECONDS: &str = "0.2";

/// A checkout's place in the shared batches, taken before its saga begins: `BEGIN` queues the
/// saga under its token ([`crate::saga_store::begin`]). Dropping it stops the wait.
pub struct Ticket {
    mailbox: Rc<Mailbox>,
    token: String,
    answer: Rc<RefCell<Option<MailboxMessage>>>,
    wake: signal::Receiver,
}

/// A saga's forward steps as the batch answered them, and whether the batch also ended the saga
/// (then its record is final, its lease gone).
pub struct Answered {
    pub steps: StepAnswers,
    pub settled: bool,
    /// The batches this checkout sent as the leader, for its request's counts.
    pub led: Tally,
}

impl Ticket {
    /// Starts waiting at once: the answers may come before `BEGIN`'s reply does.
    pub fn new() -> Ticket {
        let mailbox = MAILBOX.with(Rc::clone);
        let token = unique_token("fwd");
        let (sender, wake) = signal::pair();
        let answer = Rc::new(RefCell::new(None));
        mailbox.wait_for(&token, answer.clone(), sender);
        Ticket { mailbox, token, answer, wake }
    }

    /// What `BEGIN` queues the saga with: its token, the mailbox, the leader lock's life.
    pub fn queue_ticket(&self) -> QueueTicket<'_> {
        QueueTicket { token: &self.token, mailbox: &self.mailbox.id, leader_ms: LEADER_MS }
    }

    /// The answers of the saga queued with this ticket; `leading` if `BEGIN` made this checkout
    /// the leader.
    pub async fn answers(mut self, leading: bool) -> Answered {
        let mut led = Tally::new();
        if leading && let Some(steps) = lead(&self.token, &mut led).await {
            return Answered { steps, settled: false, led };
        }
        self.mailbox.listen();
        self.wake.recv().await;
        let message = self.answer.borrow_mut().take();
        match message {
            Some(MailboxMessage { steps, settled, .. }) => Answered { steps, settled, led },
            None => Answered { steps: StepAnswers::abandoned(), settled: false, led },
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.mailbox.waiting.borrow_mut().remove(&self.token);
    }
}

thread_local! {
    static MAILBOX: Rc<Mailbox> = Rc::new(Mailbox { id: unique_token("box"), waiting: RefCell::default(), listening: Cell::new(false) });
}

/// One instance's mailbox: its checkouts waiting for answers, by ticket token.
struct Mailbox {
    id: String,
    waiting: RefCell<HashMap<String, Waiter>>,
    listening: Cell<bool>,
}

struct Waiter {
    answer: Rc<RefCell<Option<MailboxMessage>>>,
    wake: signal::Sender,
    since_ms: u64,
}

impl Mailbox {
    fn wait_for(&self, token: &str, answer: Rc<RefCell<Option<MailboxMessage>>>, wake: signal::Sender) {
        let since_ms = WallClock.now_ms();
        self.waiting.borrow_mut().insert(token.to_string(), Waiter { answer, wake, since_ms });
    }

    /// Starts the instance's listener unless it runs: it takes answers from the mailbox while
    /// any checkout waits for some, and wakes those that waited [`GIVE_UP_MS`] with none.
    fn listen(self: &Rc<Self>) {
        if self.listening.replace(true) {
            return;
        }
        let mailbox = self.clone();
        spin_sdk::wit_bindgen::spawn(async move {
            let key = mailbox_key(&mailbox.id);
            let mut conn = None;
            while !mailbox.waiting.borrow().is_empty() {
                if conn.is_none() {
                    conn = dedicated_redis_connection().await.ok();
                }
                let popped = match &conn {
                    Some(c) => {
                        c.execute("BLMPOP", args([LISTEN_SECONDS, "1", key.as_str(), "LEFT", "COUNT", "256"])).await
                    }
                    None => Ok(Vec::new()),
                };
                match popped {
                    // [key, message, message, ...], or nil after the timeout. A message whose
                    // answers do not decode wakes its checkout without answers.
                    Ok(reply) => {
                        for item in reply_texts(&reply).iter().skip(1) {
                            if let Some(token) = MailboxMessage::token_of(item) {
                                mailbox.deliver(token, MailboxMessage::decode(item));
                            }
                        }
                    }
                    Err(_) => {
                        conn = None;
                        WallClock.sleep_ms(50).await;
                    }
                }
                let now = WallClock.now_ms();
                let expired: Vec<String> = mailbox
                    .waiting
                    .borrow()
                    .iter()
                    .filter(|(_, w)| now.saturating_sub(w.since_ms) >= GIVE_UP_MS)
                    .map(|(token, _)| token.clone())
                    .collect();
                for token in expired {
                    mailbox.deliver(&token, None);
                }
            }
            mailbox.listening.set(false);
        });
    }

    fn deliver(&self, token: &str, answer: Option<MailboxMessage>) {
        let waiter = self.waiting.borrow_mut().remove(token);
        if let Some(w) = waiter {
            *w.answer.borrow_mut() = answer;
            w.wake.send();
        }
    }
}

/// Leads batches until one answers the saga queued under `own` (its answers), or until the
/// queue is empty or the lock is lost (`None`: its answers come from another leader). Each batch
/// sent is counted in `led`.
async fn lead(own: &str, led: &mut Tally) -> Option<StepAnswers> {
    loop {
        let queued = take(own).await?;
        if queued.is_empty() {
            return None;
        }
        led.batch(queued.len());
        if let Some(mine) = send_and_settle(queued, Some(own)).await {
            keep_leading(own.to_string());
            return Some(mine);
        }
    }
}

/// The next batch's sagas (empty: the queue was empty and the lock is let go); `None` if the
/// lock is lost or Redis failed.
async fn take(leader: &str) -> Option<Vec<QueueEntry>> {
    let reply = call(&BATCH_TAKE, [leader, &MAX_SAGAS.to_string(), &LEADER_MS.to_string()]).await?;
    if matches!(reply.first(), Some(spin_sdk::redis::RedisResult::Nil)) {
        return None;
    }
    Some(reply_texts(&reply).iter().filter_map(|e| QueueEntry::decode(e)).collect())
}

/// Goes on leading in the background once the leader's own saga is answered (its checkout
/// answers at once): takes batches until the queue is empty, which lets go of the lock. Counts
/// as a request of the instance meanwhile, so the instance keeps its Postgres connection.
fn keep_leading(token: String) {
    spin_sdk::wit_bindgen::spawn(async move {
        let _busy = spin_kit::pg_store::request_started();
        loop {
            let Some(queued) = take(&token).await else {
                // Lock lost, or Redis failed: let go (if Redis still holds the lock, it expires).
                let _ = call(&BATCH_RELEASE, [token.as_str()]).await;
                return;
            };
            if queued.is_empty() {
                return;
            }
            let mut batch = Tally::new();
            batch.batch(queued.len());
            send_and_settle(queued, None).await;
            spin_kit::metrics::count(batch);
        }
    });
}

/// Sends one batch of `queued` sagas; settles every saga but the one queued under `own`, whose
/// answers are returned.
async fn send_and_settle(queued: Vec<QueueEntry>, own: Option<&str>) -> Option<StepAnswers> {
    let plans: Vec<Plan> = queued.iter().map(|q| q.plan.clone()).collect();
    let answers = batch_steps::send_batch(plans).await;
    let now = WallClock.now_ms();
    let mut mine = None;
    let mut settle = SettleArgs { box_ms: RESULT_MS, now_ms: now, sagas: Vec::new() };
    for (q, steps) in queued.into_iter().zip(answers) {
        if Some(q.token.as_str()) == own {
            mine = Some(steps);
            continue;
        }
        let record = Record::decided_by(&q.plan, q.created_ms, &steps.answers(), now, "checkout");
        settle.sagas.push(SettleSaga {
            mailbox: q.mailbox,
            token: q.token,
            steps,
            saga_id: q.plan.saga_id,
            owner: q.owner,
            record,
        });
    }
    if !settle.sagas.is_empty() {
        // In the background: the leader takes its next batch (or answers its own checkout)
        // meanwhile. Lost answers are not lost work: their checkouts give up and retry the steps.
        spin_sdk::wit_bindgen::spawn(async move {
            let _busy = spin_kit::pg_store::request_started();
            let _ = call(&BATCH_SETTLE, settle.argv()).await;
        });
    }
    mine
}

/// Runs a script; `None` if Redis failed (the caller falls back, nothing is retried blindly).
async fn call<S: AsRef<str>>(
    script: &Script,
    argv: impl IntoIterator<Item = S>,
) -> Option<Vec<spin_sdk::redis::RedisResult>> {
    script_once(script, argv).await.ok()
}
