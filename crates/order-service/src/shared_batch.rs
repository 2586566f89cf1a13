//! Forward steps batched across instances. The host spreads checkouts over many instances (a
//! burst of 128 connections made 83 order-service instances, about 1.5 checkouts each), so the
//! batches one instance can form ([`crate::forward_batch`]) stay small exactly when the load is
//! highest. Here each instance's batch (a *group*) joins a queue in Redis instead, and one
//! checkout at a time, anywhere, leads: it takes every group queued, sends their steps as one
//! batch, and leaves each group its answers. While a batch is in flight, the next one fills.
//!
//! - Joining queues the group and takes the leader lock if it is free ([`FORWARD_JOIN`]), in one
//!   round trip. The leader takes groups until its own is answered; its checkout goes on, and the
//!   instance goes on leading in the background until the queue is empty, which lets go of the
//!   lock ([`FORWARD_TAKE`]). A group queued while the lock is held is taken by that leader, one
//!   queued after it was let go takes the lock itself: no group waits for a leader that left.
//! - The leader pushes each group's answers to the mailbox of the instance that queued it
//!   ([`FORWARD_PUT`]). Each instance has one listener that waits on its mailbox with `BLMPOP`
//!   on a Redis connection of its own, and hands the answers to its waiting checkouts: nobody
//!   polls.
//! - Nothing here is truth. A leader that dies takes its groups' answers with it (its lock expires
//!   after [`LEADER_MS`]): after [`GIVE_UP_MS`] without answers, a group's sagas retry their
//!   steps on their own (the steps are idempotent per saga; a group still queued then may run
//!   once more, harmlessly). If Redis cannot queue the group, the instance sends its batch itself.

use crate::forward_batch::{self, Forward};
use crate::saga_store::{WallClock, owner_token};
use order_domain::redis_scripts::{FORWARD_JOIN, FORWARD_PUT, FORWARD_RELEASE, FORWARD_TAKE};
use order_domain::saga::{Clock, Outcome, Plan};
use serde_json::{Value, json};
use spin_kit::signal;
use spin_kit::stores::{args, dedicated_redis_connection, reply_texts, script_once};
use spin_sdk::redis::RedisResult;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// The leader lock's life without renewal (each batch renews it).
const LEADER_MS: u64 = 2_000;
/// Most groups in one batch.
const MAX_GROUPS: usize = 64;
/// How long answers wait in a mailbox for its listener.
const RESULT_MS: u64 = 60_000;
/// How long a group waits for its answers before its sagas retry their steps on their own.
pub const GIVE_UP_MS: u64 = 2_000;
/// How long one `BLMPOP` of the listener blocks (then it checks for checkouts that gave up).
const LISTEN_SECONDS: &str = "0.2";

/// The forward steps of `plans` (a group), sent in a shared batch.
pub async fn exchange(plans: Vec<Plan>) -> Vec<Forward> {
    let mailbox = MAILBOX.with(Rc::clone);
    let token = owner_token("fwd");
    let entry = json!({ "g": token, "b": mailbox.id, "s": plans.iter().map(|p| json!([p.saga_id, p])).collect::<Vec<_>>() }).to_string();
    // Waiting before joining: the answers may come before the join's reply does.
    let (sender, mut receiver) = signal::pair();
    let answer = Rc::new(RefCell::new(None));
    mailbox.wait_for(&token, answer.clone(), sender);
    let mut waiting = Waiting { mailbox: &mailbox, token: &token };
    let leading = match call(FORWARD_JOIN, [token.as_str(), &entry, &LEADER_MS.to_string()]).await {
        Some(reply) => matches!(reply.first(), Some(RedisResult::Int64(1))),
        None => {
            drop(waiting);
            return forward_batch::run(plans).await;
        }
    };
    if leading && let Some(answers) = lead(&token).await {
        return answers;
    }
    mailbox.listen();
    receiver.recv().await;
    waiting.token = "";
    let answer = answer.borrow_mut().take();
    answer.and_then(|a| decode_answers(&a, plans.len())).unwrap_or_else(|| abandoned(plans.len()))
}

/// Stops waiting for a group's answers however its checkout ends.
struct Waiting<'a> {
    mailbox: &'a Mailbox,
    token: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.mailbox.waiting.borrow_mut().remove(self.token);
    }
}

thread_local! {
    static MAILBOX: Rc<Mailbox> = Rc::new(Mailbox { id: owner_token("box"), waiting: RefCell::default(), listening: Cell::new(false) });
}

/// One instance's mailbox: the groups of its checkouts waiting for answers.
struct Mailbox {
    id: String,
    waiting: RefCell<HashMap<String, Waiter>>,
    listening: Cell<bool>,
}

struct Waiter {
    answer: Rc<RefCell<Option<String>>>,
    wake: signal::Sender,
    since_ms: u64,
}

impl Mailbox {
    fn wait_for(&self, token: &str, answer: Rc<RefCell<Option<String>>>, wake: signal::Sender) {
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
            let key = format!("orders:fwd:box:{}", mailbox.id);
            let mut conn = None;
            while !mailbox.waiting.borrow().is_empty() {
                if conn.is_none() {
                    conn = dedicated_redis_connection().await.ok();
                }
                let popped = match &conn {
                    Some(c) => c.execute("BLMPOP", args([LISTEN_SECONDS, "1", key.as_str(), "LEFT", "COUNT", "256"])).await,
                    None => Ok(Vec::new()),
                };
                match popped {
                    // [key, answer, answer, ...], or nil after the timeout.
                    Ok(reply) => {
                        for item in reply_texts(&reply).iter().skip(1) {
                            if let Some((token, answer)) = item.split_once('\n') {
                                mailbox.deliver(token, Some(answer.to_string()));
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

    fn deliver(&self, token: &str, answer: Option<String>) {
        let waiter = self.waiting.borrow_mut().remove(token);
        if let Some(w) = waiter {
            *w.answer.borrow_mut() = answer;
            w.wake.send();
        }
    }
}

/// Leads batches until one answers the group `own` (its answers), or until the queue is empty
/// or the lock is lost (`None`: the group's answers come from another leader).
async fn lead(own: &str) -> Option<Vec<Forward>> {
    loop {
        let reply = call(FORWARD_TAKE, [own, &MAX_GROUPS.to_string(), &LEADER_MS.to_string()]).await?;
        let groups: Vec<Group> = reply_texts(&reply).iter().filter_map(|e| decode_entry(e)).collect();
        if groups.is_empty() {
            return None;
        }
        if let Some(mine) = answer(&groups, Some(own)).await {
            keep_leading(own.to_string());
            return Some(mine);
        }
    }
}

/// Goes on leading in the background once the leader's own group is answered (its checkout
/// answers at once): takes batches until the queue is empty, which lets go of the lock. Counts
/// as a request of the instance meanwhile, so the instance keeps its Postgres connection.
fn keep_leading(token: String) {
    spin_sdk::wit_bindgen::spawn(async move {
        let _busy = spin_kit::stores::request_started();
        loop {
            let Some(reply) = call(FORWARD_TAKE, [token.as_str(), &MAX_GROUPS.to_string(), &LEADER_MS.to_string()]).await else {
                // Redis failed: let go (if Redis still holds the lock, it expires).
                let _ = call(FORWARD_RELEASE, [token.as_str()]).await;
                return;
            };
            let groups: Vec<Group> = reply_texts(&reply).iter().filter_map(|e| decode_entry(e)).collect();
            if groups.is_empty() {
                return;
            }
            answer(&groups, None).await;
        }
    });
}

/// A queued group: its token, its instance's mailbox and its sagas.
struct Group {
    token: String,
    mailbox: String,
    plans: Vec<Plan>,
}

/// Sends one batch of `groups`; pushes every group's answers to its mailbox, except those of
/// the group `own`, returned.
async fn answer(groups: &[Group], own: Option<&str>) -> Option<Vec<Forward>> {
    let plans: Vec<Plan> = groups.iter().flat_map(|g| g.plans.iter().cloned()).collect();
    let mut answers = forward_batch::run(plans).await.into_iter();
    let mut mine = None;
    let mut others = vec![RESULT_MS.to_string()];
    for group in groups {
        let list: Vec<Forward> = answers.by_ref().take(group.plans.len()).collect();
        if Some(group.token.as_str()) == own {
            mine = Some(list);
        } else {
            others.push(group.mailbox.clone());
            others.push(format!("{}\n{}", group.token, encode_answers(&list)));
        }
    }
    if others.len() > 1 {
        // In the background: the leader takes its next batch (or answers its own checkout)
        // meanwhile. Lost answers are not lost work: their groups give up and retry the steps.
        spin_sdk::wit_bindgen::spawn(async move {
            let _busy = spin_kit::stores::request_started();
            let _ = call(FORWARD_PUT, others.iter().map(String::as_str)).await;
        });
    }
    mine
}

/// Runs a script; `None` if Redis failed (the caller falls back, nothing is retried blindly).
async fn call<'a>(script: &'a str, argv: impl IntoIterator<Item = &'a str>) -> Option<Vec<RedisResult>> {
    script_once(script, argv).await.ok()
}

fn abandoned(n: usize) -> Vec<Forward> {
    (0..n).map(|_| Forward::abandoned()).collect()
}

fn decode_entry(entry: &str) -> Option<Group> {
    let v: Value = serde_json::from_str(entry).ok()?;
    let plans = v["s"]
        .as_array()?
        .iter()
        .map(|pair| Plan::from_copy(pair[0].as_str()?, &pair[1].to_string()))
        .collect::<Option<Vec<_>>>()?;
    Some(Group { token: v["g"].as_str()?.to_string(), mailbox: v["b"].as_str()?.to_string(), plans })
}

fn encode_outcome(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Done => json!({ "done": true }),
        Outcome::Refused(reason) => json!({ "refused": reason }),
        Outcome::Transient(error) => json!({ "transient": error }),
    }
}

fn decode_outcome(v: &Value) -> Option<Outcome> {
    if v.is_null() {
        return None;
    }
    Some(if let Some(reason) = v["refused"].as_str() {
        Outcome::Refused(reason.to_string())
    } else if let Some(error) = v["transient"].as_str() {
        Outcome::Transient(error.to_string())
    } else if v["done"] == json!(true) {
        Outcome::Done
    } else {
        Outcome::Transient(format!("unreadable answer {v}"))
    })
}

fn encode_answers(group: &[Forward]) -> String {
    let list: Vec<Value> = group
        .iter()
        .map(|f| {
            json!([
                encode_outcome(&f.reserve),
                f.charge.as_ref().map(encode_outcome),
                f.mark_paid.as_ref().map(encode_outcome),
            ])
        })
        .collect();
    Value::Array(list).to_string()
}

fn decode_answers(json: &str, n: usize) -> Option<Vec<Forward>> {
    let v: Value = serde_json::from_str(json).ok()?;
    let list = v.as_array().filter(|l| l.len() == n)?;
    list.iter()
        .map(|f| Some(Forward { reserve: decode_outcome(&f[0])?, charge: decode_outcome(&f[1]), mark_paid: decode_outcome(&f[2]) }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_survive_the_round_trip() {
        let group = vec![
            Forward { reserve: Outcome::Done, charge: Some(Outcome::Done), mark_paid: Some(Outcome::Refused("order changed".into())) },
            Forward { reserve: Outcome::Refused("out of stock".into()), charge: None, mark_paid: None },
            Forward { reserve: Outcome::Done, charge: Some(Outcome::Transient("timeout".into())), mark_paid: None },
        ];
        let back = decode_answers(&encode_answers(&group), 3).unwrap();
        for (a, b) in group.iter().zip(&back) {
            assert_eq!((&a.reserve, &a.charge, &a.mark_paid), (&b.reserve, &b.charge, &b.mark_paid));
        }
        assert!(decode_answers(&encode_answers(&group), 2).is_none(), "a count that does not match is refused");
    }
}
