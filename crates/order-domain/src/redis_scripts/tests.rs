//! The order service's scripts against the real Redis that `./dev test` starts, each test in a
//! Redis database of its own (the scripts name their keys themselves: see `redis-test-support`).
//! Arguments are built and replies read with the types of [`super::messages`], as the service
//! does: what one side writes, the other reads, through the real scripts.

use super::*;
use crate::order::Line;
use crate::rental::AnyRecord;
use crate::saga::{Outcome, Plan, Record, SagaNext, State, StepAnswers};
use redis_test_support::{Reply, TestRedis, texts};

const LEASE_MS: u64 = 5_000;
const LEADER_MS: u64 = 2_000;

fn run(redis: &mut TestRedis, script: &Script, argv: &[String]) -> Vec<Option<String>> {
    redis.run_script(script.source(), script.sha1(), argv).unwrap_or_else(|e| panic!("the script failed: {e}"))
}

fn run_int(redis: &mut TestRedis, script: &Script, argv: &[String]) -> i64 {
    let reply = run(redis, script, argv);
    assert_eq!(reply.len(), 1, "{reply:?}");
    reply[0].as_deref().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not a number: {reply:?}"))
}

fn strings<const N: usize>(values: [&str; N]) -> Vec<String> {
    values.map(str::to_string).to_vec()
}

/// A plan copy (no saga id yet); a user id that holds a state field's text, which JSON escapes.
fn copy(order_id: &str, generation: i64, lines: usize) -> Plan {
    Plan {
        saga_id: String::new(),
        order_id: order_id.into(),
        generation,
        attempt: 0,
        user_id: "u \"state\":\"failed\"\n".into(),
        items: (0..lines).map(|i| Line(format!("item-{i}"), 1 + i as i64)).collect(),
        total: 7,
    }
}

fn put(redis: &mut TestRedis, plans: &[&Plan]) -> i64 {
    run_int(redis, &PUT_PLANS, &put_plans_argv(plans.iter().copied()))
}

fn begin(redis: &mut TestRedis, args: &BeginArgs) -> Begun {
    let reply = texts(&run(redis, &BEGIN, &args.argv()));
    Begun::decode(&reply).unwrap_or_else(|| panic!("unexpected BEGIN reply {reply:?}"))
}

fn args<'a>(order_id: &'a str, owner: &'a str, now_ms: u64) -> BeginArgs<'a> {
    BeginArgs { order_id, owner, now_ms, lease_ms: LEASE_MS, drive_limit: 100, queue: None, caller: None }
}

/// Starts a saga of a new order (its plan copy written first) for `owner`; its plan.
fn started(redis: &mut TestRedis, order_id: &str, owner: &str, now_ms: u64) -> Plan {
    put(redis, &[&copy(order_id, 0, 1)]);
    match begin(redis, &args(order_id, owner, now_ms)) {
        Begun::Drive { plan, .. } => plan,
        other => panic!("{order_id}: {other:?}"),
    }
}

fn save(redis: &mut TestRedis, record: &Record, owner: &str, next: SagaNext, now_ms: u64) -> i64 {
    run_int(redis, &SAVE_RECORD, &SaveArgs { record, owner, next, now_ms }.argv())
}

fn record(redis: &mut TestRedis, saga_id: &str) -> Option<Record> {
    redis.get(&saga_key(saga_id)).and_then(|raw| Record::decode_for(saga_id, &raw))
}

fn score(redis: &mut TestRedis, set: &str, id: &str) -> Option<i64> {
    redis.cmd(&["ZSCORE", set, id]).int()
}

fn ended(plan: &Plan, state: State, reason: Option<&str>, now_ms: u64) -> Record {
    let mut record = Record::new(plan.clone(), 0);
    record.state = state;
    record.reason = reason.map(str::to_string);
    record.drives = 1;
    record.updated_ms = now_ms;
    record
}

#[test]
fn begin_starts_a_saga_from_the_plan_copy_and_queues_it_for_the_batches() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let plan = copy("o-1", 3, 2);
    assert_eq!(put(&mut redis, &[&plan]), 1);
    let queue = Some(QueueTicket { token: "fwd-a", mailbox: "box-1", leader_ms: LEADER_MS });
    let begun = begin(&mut redis, &BeginArgs { drive_limit: 7, queue, ..args("o-1", "checkout-a", 1_000) });

    let saga_id = Plan::saga_id("o-1", 3, 0);
    let expected = Plan { saga_id: saga_id.clone(), ..plan };
    assert_eq!(begun, Begun::Drive { plan: expected.clone(), leading: true });
    // The record BEGIN composed from the plan copy is exactly a new saga's record.
    let raw = redis.get(&saga_key(&saga_id)).expect("a record");
    assert_eq!(Record::decode_for(&saga_id, &raw), Some(Record::new(expected.clone(), 1_000).with_drive_limit(7)));
    assert_eq!(raw.matches(&state_field(State::Running)).count(), 1, "{raw}");
    // Its lease, its place in the active set (due when the lease ends), the attempt pointer.
    assert_eq!(redis.get(&lease_key(&saga_id)).as_deref(), Some("checkout-a"));
    assert!((1..=LEASE_MS as i64).contains(&redis.pttl(&lease_key(&saga_id))));
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &saga_id), Some(6_000));
    assert_eq!(redis.get(&checkout_key("o-1", 3)).as_deref(), Some("0"));
    // The ladder of alarms: 1 s to 256 s.
    assert!((1..=1_000).contains(&redis.pttl("orders:alarm:0")));
    assert!((128_001..=256_000).contains(&redis.pttl("orders:alarm:8")));
    // The leader lock is the ticket's, and the queued entry decodes to what BEGIN was given.
    assert_eq!(redis.get("orders:fwd:leader").as_deref(), Some("fwd-a"));
    let taken = run(&mut redis, &BATCH_TAKE, &strings(["fwd-a", "64", "2000"]));
    let entries: Vec<Option<QueueEntry>> = texts(&taken).iter().map(|e| QueueEntry::decode(e)).collect();
    let entry = QueueEntry {
        token: "fwd-a".into(),
        mailbox: "box-1".into(),
        owner: "checkout-a".into(),
        created_ms: 1_000,
        plan: expected,
    };
    assert_eq!(entries, vec![Some(entry)]);
}

#[test]
fn begin_joins_the_saga_that_runs_or_paid_and_follows_one_that_failed() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let plan = copy("o-2", 0, 1);
    put(&mut redis, &[&plan]);
    let Begun::Drive { plan: first, leading } = begin(&mut redis, &args("o-2", "checkout-a", 1_000)) else {
        panic!("a saga starts")
    };
    assert!(!leading, "not queued: no ticket");
    assert!(!redis.exists(BATCH_QUEUE) && !redis.exists("orders:fwd:leader"));

    // Running: another checkout joins it (the failed text in the user id does not fool BEGIN).
    let running = Record::new(first.clone(), 1_000);
    assert_eq!(
        begin(&mut redis, &args("o-2", "checkout-b", 2_000)),
        Begun::Join { saga_id: first.saga_id.clone(), record: Some(running) }
    );

    // Failed: the next checkout starts the next attempt.
    let failed = ended(&first, State::Failed, Some("out of stock"), 3_000);
    assert_eq!(save(&mut redis, &failed, "checkout-a", SagaNext::Final, 3_000), 1);
    let Begun::Drive { plan: second, .. } = begin(&mut redis, &args("o-2", "checkout-b", 4_000)) else {
        panic!("a new attempt")
    };
    assert_eq!((second.saga_id.as_str(), second.attempt), ("o-2.0.1", 1));
    assert_eq!(record(&mut redis, &first.saga_id), Some(failed), "the failed attempt's record is kept");

    // Paid: joined, with its record.
    let paid = ended(&second, State::Paid, None, 5_000);
    assert_eq!(save(&mut redis, &paid, "checkout-b", SagaNext::Final, 5_000), 1);
    assert_eq!(
        begin(&mut redis, &args("o-2", "checkout-c", 6_000)),
        Begun::Join { saga_id: second.saga_id.clone(), record: Some(paid) }
    );

    // A record that was lost: re-driven under the same id.
    redis.cmd(&["DEL", &saga_key(&second.saga_id)]);
    let Begun::Drive { plan: again, .. } = begin(&mut redis, &args("o-2", "checkout-d", 7_000)) else {
        panic!("re-driven")
    };
    assert_eq!(again, second);

    // No plan copy.
    assert_eq!(begin(&mut redis, &args("o-unknown", "checkout-e", 8_000)), Begun::NoCopy);
}

#[test]
fn the_shared_batches_take_in_order_behind_the_lock_and_let_it_go_when_empty() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let plans = [copy("o-a", 0, 1), copy("o-b", 0, 2), copy("o-c", 0, 3)];
    put(&mut redis, &plans.iter().collect::<Vec<_>>());
    let mut leading = Vec::new();
    for (i, (order, token)) in [("o-a", "fwd-a"), ("o-b", "fwd-b"), ("o-c", "fwd-c")].into_iter().enumerate() {
        let queue = Some(QueueTicket { token, mailbox: "box-1", leader_ms: LEADER_MS });
        match begin(&mut redis, &BeginArgs { queue, ..args(order, "checkout", i as u64) }) {
            Begun::Drive { leading: l, .. } => leading.push(l),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(leading, [true, false, false], "the first takes the free lock");

    let take =
        |redis: &mut TestRedis, leader: &str, most: &str| run(redis, &BATCH_TAKE, &strings([leader, most, "2000"]));
    assert_eq!(take(&mut redis, "fwd-b", "64"), vec![None], "not the leader: nil, nothing taken");
    redis.cmd(&["PEXPIRE", "orders:fwd:leader", "100"]);
    let first = take(&mut redis, "fwd-a", "2");
    let orders: Vec<String> =
        texts(&first).iter().filter_map(|e| QueueEntry::decode(e)).map(|e| e.plan.order_id).collect();
    assert_eq!(orders, ["o-a", "o-b"], "the oldest first, at most that many");
    assert!(redis.pttl("orders:fwd:leader") > 1_000, "the lock is renewed");
    assert_eq!(texts(&take(&mut redis, "fwd-a", "64")).len(), 1);
    assert_eq!(take(&mut redis, "fwd-a", "64"), Vec::<Option<String>>::new(), "empty: an empty list");
    assert!(!redis.exists("orders:fwd:leader"), "and the lock is let go");

    redis.cmd(&["SET", "orders:fwd:leader", "fwd-x"]);
    assert_eq!(run_int(&mut redis, &BATCH_RELEASE, &strings(["fwd-y"])), 1);
    assert_eq!(redis.get("orders:fwd:leader").as_deref(), Some("fwd-x"), "only its holder lets it go");
    run(&mut redis, &BATCH_RELEASE, &strings(["fwd-x"]));
    assert!(!redis.exists("orders:fwd:leader"));
}

#[test]
fn put_plans_keeps_the_newest_copy_and_forgets_an_old_generations_attempts() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let stored = |redis: &mut TestRedis| {
        let reply = redis.cmd(&["HMGET", &plan_key("o"), "g", "n", "p"]).flat();
        texts(&reply)
    };
    let (g1n2, g1n1, g0n5, g1n3, g2n1) =
        (copy("o", 1, 2), copy("o", 1, 1), copy("o", 0, 5), copy("o", 1, 3), copy("o", 2, 1));
    assert_eq!(put(&mut redis, &[&g1n2]), 1);
    assert_eq!(put(&mut redis, &[&g1n1, &g0n5, &g1n2]), 0, "fewer lines, an older generation, the same copy");
    assert_eq!(stored(&mut redis), ["1", "2", g1n2.copy_json().as_str()]);
    assert_eq!(put(&mut redis, &[&g1n3]), 1, "more lines");
    redis.cmd(&["SET", &checkout_key("o", 1), "4"]);
    assert_eq!(put(&mut redis, &[&g2n1, &copy("p", 0, 1)]), 2, "a new generation, another order");
    assert_eq!(stored(&mut redis), ["2", "1", g2n1.copy_json().as_str()]);
    assert!(!redis.exists(&checkout_key("o", 1)), "the old generation's attempt counter is gone");
    assert_eq!(Plan::from_copy("o.2.0", &stored(&mut redis)[2]), Some(Plan { saga_id: "o.2.0".into(), ..g2n1 }));
}

#[test]
fn save_record_writes_only_under_the_lease_and_moves_the_saga_between_the_sets() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let plan = started(&mut redis, "o-s", "checkout-a", 1_000);
    let id = plan.saga_id.clone();
    let mut retried = Record::new(plan.clone(), 1_000);
    retried.drives = 1;
    retried.updated_ms = 2_000;

    // Fenced: another owner writes nothing.
    assert_eq!(save(&mut redis, &retried, "checkout-b", SagaNext::RetryAt(9_000), 2_000), 0);
    assert_eq!(record(&mut redis, &id), Some(Record::new(plan.clone(), 1_000)));
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &id), Some(6_000));

    // A retry: due then, its lease given up, the next alarm armed for it.
    assert_eq!(save(&mut redis, &retried, "checkout-a", SagaNext::RetryAt(9_000), 2_000), 1);
    assert_eq!(record(&mut redis, &id), Some(retried.clone()));
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &id), Some(9_000));
    assert!(!redis.exists(&lease_key(&id)));
    assert!((6_000..=7_000).contains(&redis.pttl("orders:alarm:next")));
    assert_eq!(save(&mut redis, &retried, "checkout-a", SagaNext::RetryAt(9_000), 2_000), 0, "the lease is gone");

    // Stuck, whatever comes next: kept, out of the active set.
    redis.cmd(&["SET", &lease_key(&id), "worker"]);
    let stuck = Record { state: State::Stuck, reason: Some("not finished".into()), ..retried.clone() };
    assert_eq!(save(&mut redis, &stuck, "worker", SagaNext::RetryAt(12_000), 10_000), 1);
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &id), None);
    assert_eq!(score(&mut redis, STUCK_SAGAS, &id), Some(10_000));
    assert_eq!(record(&mut redis, &id), Some(stuck));

    // Final: out of the active set, into the final one.
    let other = started(&mut redis, "o-t", "checkout-a", 1_000);
    let paid = ended(&other, State::Paid, None, 3_000);
    assert_eq!(save(&mut redis, &paid, "checkout-a", SagaNext::Final, 3_000), 1);
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &other.saga_id), None);
    assert_eq!(score(&mut redis, "orders:sagas:final", &other.saga_id), Some(3_000));
    assert_eq!(record(&mut redis, &other.saga_id), Some(paid));
}

#[test]
fn final_records_are_deleted_after_their_retention_two_by_each_final_save() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let old: Vec<Plan> = (0..3).map(|i| started(&mut redis, &format!("old-{i}"), "c", 0)).collect();
    for (i, plan) in old.iter().enumerate() {
        save(&mut redis, &ended(plan, State::Paid, None, 1_000 + i as u64), "c", SagaNext::Final, 1_000 + i as u64);
    }
    let later = 1_001 + RECORD_RETENTION_MS;
    let new = started(&mut redis, "new", "c", later);
    save(&mut redis, &ended(&new, State::Failed, Some("no"), later), "c", SagaNext::Final, later);
    let kept: Vec<bool> = old.iter().map(|p| record(&mut redis, &p.saga_id).is_some()).collect();
    assert_eq!(kept, [false, false, true], "ended more than the retention ago: the two oldest deleted");
    assert_eq!(redis.cmd(&["ZCARD", "orders:sagas:final"]), Reply::Int(2));
    assert!(record(&mut redis, &new.saga_id).is_some());
}

#[test]
fn renew_extends_only_a_lease_still_held() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let plan = started(&mut redis, "o-r", "checkout-a", 1_000);
    let id = plan.saga_id.as_str();
    redis.cmd(&["PEXPIRE", &lease_key(id), "500"]);
    assert_eq!(run_int(&mut redis, &RENEW, &strings([id, "checkout-b", "5000", "3000"])), 0);
    assert!(redis.pttl(&lease_key(id)) <= 500);
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, id), Some(6_000));
    assert_eq!(run_int(&mut redis, &RENEW, &strings([id, "checkout-a", "5000", "3000"])), 1);
    assert!(redis.pttl(&lease_key(id)) > 4_000);
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, id), Some(8_000), "due when the renewed lease ends");
}

#[test]
fn claim_takes_the_due_running_sagas_whose_lease_is_free() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let free = started(&mut redis, "o-free", "dead-checkout", 0);
    redis.cmd(&["DEL", &lease_key(&free.saga_id)]); // its driver died: the lease expired
    let held = started(&mut redis, "o-held", "checkout", 0);
    let later = started(&mut redis, "o-later", "checkout", 20_000);
    redis.cmd(&["DEL", &lease_key(&later.saga_id)]);
    redis.cmd(&["ZADD", ACTIVE_SAGAS, "0", "ghost.0.0"]); // a saga whose record is gone

    let claim = |redis: &mut TestRedis| {
        let argv = strings(["10000", "5000", "worker", "32"]).into_iter().chain([state_field(State::Running)]);
        records_of(&texts(&run(redis, &CLAIM, &argv.collect::<Vec<_>>())))
    };
    assert_eq!(claim(&mut redis), vec![AnyRecord::Checkout(Record::new(free.clone(), 0))]);
    assert_eq!(redis.get(&lease_key(&free.saga_id)).as_deref(), Some("worker"));
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &free.saga_id), Some(15_000));
    assert_eq!(redis.get(&lease_key(&held.saga_id)).as_deref(), Some("checkout"), "a held lease stays");
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, "ghost.0.0"), None, "no record: out of the active set");
    assert!(!redis.exists(&lease_key("ghost.0.0")));
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &later.saga_id), Some(25_000), "not due");

    // A saga whose record is not running is let go too, and the next alarm is for the next due.
    let done = ended(&held, State::Paid, None, 1);
    redis.cmd(&["SET", &saga_key(&held.saga_id), &done.encode()]);
    redis.cmd(&["DEL", &lease_key(&held.saga_id), "orders:alarm:next"]);
    assert_eq!(claim(&mut redis), vec![]);
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, &held.saga_id), None);
    assert!((4_000..=5_000).contains(&redis.pttl("orders:alarm:next")), "due at 15 000, now 10 000");
}

#[test]
fn list_stuck_and_redrive_hand_a_stuck_saga_back_once() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let mut stuck = Vec::new();
    for (i, order) in ["o-1", "o-2"].into_iter().enumerate() {
        let plan = started(&mut redis, order, "worker", 0);
        let record = ended(&plan, State::Stuck, Some("not finished"), 5);
        assert_eq!(save(&mut redis, &record, "worker", SagaNext::RetryAt(9), 100 + i as u64), 1);
        stuck.push(record);
    }
    let list = |redis: &mut TestRedis, most: &str| Stuck::decode(&texts(&run(redis, &LIST_STUCK, &strings([most]))));
    assert_eq!(
        list(&mut redis, "1"),
        Stuck { total: 2, records: vec![AnyRecord::Checkout(stuck[0].clone())] },
        "the stuck longest first"
    );
    assert_eq!(list(&mut redis, "100").records, stuck.iter().cloned().map(AnyRecord::Checkout).collect::<Vec<_>>());

    let id = stuck[0].plan.saga_id.clone();
    let read = redis.get(&saga_key(&id)).expect("a record");
    let redriven = stuck[0].redriven(5, 1_000).expect("stuck");
    let redrive = |redis: &mut TestRedis, read: &str, owner: &str| {
        let argv = [id.as_str(), read, &redriven.encode(), owner, "5000", "1000"].map(str::to_string);
        run_int(redis, &REDRIVE, &argv)
    };
    assert_eq!(redrive(&mut redis, &read.replace("stuck", "stuck "), "operator"), 0, "not the record read");
    assert_eq!(redrive(&mut redis, &read, "operator"), 1);
    assert_eq!(record(&mut redis, &id), Some(redriven.clone()));
    assert_eq!(redis.get(&lease_key(&id)).as_deref(), Some("operator"));
    assert_eq!((score(&mut redis, STUCK_SAGAS, &id), score(&mut redis, ACTIVE_SAGAS, &id)), (None, Some(6_000)));
    assert_eq!(redrive(&mut redis, &read, "another-operator"), 0, "once");
    assert_eq!(list(&mut redis, "100"), Stuck { total: 1, records: vec![AnyRecord::Checkout(stuck[1].clone())] });

    // One whose lease is held is not taken either.
    let other = stuck[1].plan.saga_id.clone();
    redis.cmd(&["SET", &lease_key(&other), "somebody"]);
    let read = redis.get(&saga_key(&other)).expect("a record");
    let argv = [other.as_str(), &read, &stuck[1].redriven(5, 1_000).expect("stuck").encode(), "op", "5000", "1000"];
    assert_eq!(run_int(&mut redis, &REDRIVE, &argv.map(str::to_string)), 0);
    assert_eq!(redis.get(&saga_key(&other)), Some(read));
}

#[test]
fn batch_settle_ends_the_decided_sagas_and_its_messages_decode_to_the_answers() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let now = 5_000;
    let answers = |reserve: Outcome, charge: Option<Outcome>, mark_paid: Option<Outcome>| StepAnswers {
        reserve,
        charge,
        mark_paid,
    };
    let cases = [
        // Paid: decided, ended.
        ("o-paid", "checkout-1", answers(Outcome::Done, Some(Outcome::Done), Some(Outcome::Done))),
        // Refused at its reserve: decided, ended.
        ("o-refused", "checkout-2", answers(Outcome::Refused("out of stock: \"a\"\nand b".into()), None, None)),
        // Needs more (a retry; a compensation): not decided.
        ("o-retry", "checkout-3", answers(Outcome::Done, Some(Outcome::Transient("timeout\n{\"x\":1}".into())), None)),
        ("o-invalid", "checkout-4", answers(Outcome::Invalid("too many lines".into()), None, None)),
        // Decided, but its checkout lost the lease: nothing ended.
        ("o-fenced", "checkout-gone", answers(Outcome::Done, Some(Outcome::Done), Some(Outcome::Done))),
    ];
    let mut sagas = Vec::new();
    for (i, (order, owner, steps)) in cases.iter().enumerate() {
        let plan = started(&mut redis, order, owner.replace("-gone", "-5").as_str(), 1_000);
        let record = Record::decided_by(&plan, 1_000, &steps.answers(), now, "checkout");
        sagas.push(SettleSaga {
            mailbox: if i % 2 == 0 { "box-even".into() } else { "box-odd".into() },
            token: format!("fwd-{i}"),
            steps: steps.clone(),
            saga_id: plan.saga_id.clone(),
            owner: owner.to_string(),
            record,
        });
    }
    let settle = SettleArgs { box_ms: 60_000, now_ms: now, sagas: sagas.clone() };
    assert_eq!(run_int(&mut redis, &BATCH_SETTLE, &settle.argv()), cases.len() as i64);

    let settled = [true, true, false, false, false];
    for (saga, ended) in sagas.iter().zip(settled) {
        let stored = record(&mut redis, &saga.saga_id).expect("a record");
        if ended {
            assert_eq!(Some(&stored), saga.record.as_ref(), "{}: the decided record", saga.saga_id);
            assert!(!redis.exists(&lease_key(&saga.saga_id)));
            assert_eq!(score(&mut redis, ACTIVE_SAGAS, &saga.saga_id), None);
            assert_eq!(score(&mut redis, "orders:sagas:final", &saga.saga_id), Some(now as i64));
        } else {
            assert_eq!(stored.state, State::Running, "{}", saga.saga_id);
            assert!(redis.exists(&lease_key(&saga.saga_id)), "{}", saga.saga_id);
        }
    }
    // Every saga's message, in its instance's mailbox, in order: its answers and the flag.
    let mut received = Vec::new();
    for mailbox in ["box-even", "box-odd"] {
        let key = mailbox_key(mailbox);
        assert!((59_000..=60_000).contains(&redis.pttl(&key)), "kept a while");
        let messages = redis.cmd(&["LRANGE", &key, "0", "-1"]).flat();
        received.extend(texts(&messages).iter().map(|m| {
            assert_eq!(MailboxMessage::token_of(m), MailboxMessage::decode(m).map(|d| d.token).as_deref());
            MailboxMessage::decode(m).unwrap_or_else(|| panic!("undecodable {m:?}"))
        }));
    }
    received.sort_by(|a, b| a.token.cmp(&b.token));
    let expected: Vec<MailboxMessage> = sagas
        .iter()
        .zip(settled)
        .map(|(s, settled)| MailboxMessage { token: s.token.clone(), settled, steps: s.steps.clone() })
        .collect();
    assert_eq!(received, expected);
}

#[test]
fn the_state_field_is_in_a_record_once_however_its_strings_read() {
    let mut record = Record::new(Plan { saga_id: "o.0.0".into(), ..copy("o", 0, 1) }, 1);
    for state in [State::Running, State::Paid, State::Failed, State::Stuck] {
        record.state = state;
        record.reason = Some(state_field(State::Failed));
        let json = record.encode();
        assert_eq!(json.matches(&state_field(state)).count(), 1, "{json}");
        for other in [State::Running, State::Paid, State::Failed, State::Stuck].into_iter().filter(|s| *s != state) {
            assert!(!json.contains(&state_field(other)), "{json}");
        }
    }
    assert_eq!(state_field(State::Running), r#""state":"running""#);
}

#[test]
fn messages_that_are_not_messages_do_not_decode() {
    assert_eq!(MailboxMessage::decode("fwd-1\n1\n[null]"), None, "a reserve is always answered");
    assert_eq!(MailboxMessage::decode("fwd-1"), None);
    assert_eq!(MailboxMessage::token_of("fwd-1\nrest"), Some("fwd-1"));
    assert_eq!(QueueEntry::decode("fwd-1\nbox-2"), None);
    assert_eq!(Begun::decode(&strings(["drive", "o.0.0"])), None);
    assert_eq!(Begun::decode(&strings(["what"])), None);
}

#[test]
fn begin_does_nothing_for_a_caller_whose_order_it_is_not() {
    let Some(mut redis) = TestRedis::claim() else { return };
    let plan = copy("o-9", 0, 1);
    put(&mut redis, &[&plan]);
    let stranger = BeginArgs { caller: Some("someone-else"), ..args("o-9", "checkout-a", 1_000) };
    assert_eq!(begin(&mut redis, &stranger), Begun::OtherUser);
    assert!(redis.keys("orders:saga:*").is_empty() && redis.keys("orders:checkout:*").is_empty(), "nothing started");
    let owner = BeginArgs { caller: Some(plan.user_id.as_str()), ..args("o-9", "checkout-a", 1_000) };
    assert!(matches!(begin(&mut redis, &owner), Begun::Drive { .. }));
}

#[test]
fn start_puts_a_rental_in_the_checkouts_table_where_the_worker_claims_it_with_them() {
    use crate::rental::{RentableItem, RentalPlan};
    use crate::saga::SagaPlan;
    let Some(mut redis) = TestRedis::claim() else { return };
    let item = RentableItem { item_id: "i".into(), owner_id: "o".into(), daily_price: 3 };
    let plan = RentalPlan::rental("r1", &item, "b", 2).expect("plan");
    let rental = Record::new(plan.clone(), 0).with_drive_limit(9);
    let start = |redis: &mut TestRedis, record: &Record<RentalPlan>, owner: &str| {
        let argv = StartArgs { record, owner, lease_ms: LEASE_MS, now_ms: 0 }.argv();
        Started::<RentalPlan>::decode(record.plan.id(), &texts(&run(redis, &START, &argv))).expect("a START reply")
    };
    assert_eq!(start(&mut redis, &rental, "rent-request"), Started::Drive);
    assert_eq!(redis.get(&lease_key("rental:r1")).as_deref(), Some("rent-request"));
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, "rental:r1"), Some(5_000), "due when its lease ends");
    assert!(redis.exists("orders:alarm:0"), "the alarms are armed");
    // A second start finds it (a request sent twice, or a return of the same rental).
    assert_eq!(start(&mut redis, &rental, "other"), Started::Join(Some(rental.clone())));

    // Its driver died: the worker claims it along with a checkout, each as its own workflow.
    let checkout = started(&mut redis, "o-1", "dead-checkout", 0);
    redis.cmd(&["DEL", &lease_key("rental:r1"), &lease_key(&checkout.saga_id)]);
    let argv = strings(["10000", "5000", "worker", "32"]).into_iter().chain([state_field(State::Running)]);
    let mut claimed = records_of(&texts(&run(&mut redis, &CLAIM, &argv.collect::<Vec<_>>())));
    claimed.sort_by_key(|r| r.saga_id().to_string());
    assert_eq!(claimed, vec![AnyRecord::Checkout(Record::new(checkout, 0)), AnyRecord::Rental(rental.clone())]);

    // Its record is written by SAVE_RECORD as a checkout's is.
    let mut ended = rental.clone();
    ended.state = State::Paid;
    let saved = SaveArgs { record: &ended, owner: "worker", next: SagaNext::Final, now_ms: 10_000 }.argv();
    assert_eq!(run_int(&mut redis, &SAVE_RECORD, &saved), 1);
    assert_eq!(score(&mut redis, ACTIVE_SAGAS, "rental:r1"), None);
    let raw = redis.get(&saga_key("rental:r1")).expect("its record");
    assert_eq!(AnyRecord::decode_for("rental:r1", &raw), Some(AnyRecord::Rental(ended)));
}
