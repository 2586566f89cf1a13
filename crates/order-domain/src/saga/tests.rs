//! The saga against a fake world: participants with real ledger semantics, a fake clock, and
//! failures injected at every step (before the step applies, and after it applied but its reply
//! was lost), plus crashes of the driver between any two steps.

use super::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future that never waits on anything real (all fakes answer at once).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reservation {
    Reserved,
    Refused,
    Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charge {
    Charged,
    Refused,
    Refunded,
}

/// How a participant call fails, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Fails before applying anything.
    Before,
    /// Applies, then the reply is lost.
    After,
    /// Answers that the request is invalid (HTTP 400), applying nothing.
    Invalid,
}

#[derive(Default)]
struct World {
    stock: RefCell<HashMap<String, i64>>,
    credit: RefCell<HashMap<String, i64>>,
    reservations: RefCell<HashMap<String, Reservation>>,
    charges: RefCell<HashMap<String, Charge>>,
    /// order id → (generation, saga that paid it)
    orders: RefCell<HashMap<String, (i64, Option<String>)>>,
    /// Faults to inject, in call order; empty = none.
    faults: RefCell<Vec<Fault>>,
    calls: Cell<usize>,
}

impl World {
    fn with(stock: &[(&str, i64)], credit: &[(&str, i64)], orders: &[(&str, i64)]) -> World {
        let w = World::default();
        w.stock.borrow_mut().extend(stock.iter().map(|(k, v)| (k.to_string(), *v)));
        w.credit.borrow_mut().extend(credit.iter().map(|(k, v)| (k.to_string(), *v)));
        w.orders.borrow_mut().extend(orders.iter().map(|(k, g)| (k.to_string(), (*g, None))));
        w
    }

    fn apply(&self, step: Step, plan: &Plan) -> Outcome {
        let id = plan.saga_id.clone();
        match step {
            Step::ReserveStock => {
                if let Some(r) = self.reservations.borrow().get(&id) {
                    return if *r == Reservation::Reserved {
                        Outcome::Done
                    } else {
                        Outcome::Refused("out of stock".into())
                    };
                }
                let mut stock = self.stock.borrow_mut();
                let enough = plan.items.iter().all(|Line(item, qty)| stock.get(item).is_some_and(|s| s >= qty));
                if !enough {
                    self.reservations.borrow_mut().insert(id, Reservation::Refused);
                    return Outcome::Refused("out of stock".into());
                }
                for Line(item, qty) in &plan.items {
                    *stock.get_mut(item).unwrap() -= qty;
                }
                self.reservations.borrow_mut().insert(id, Reservation::Reserved);
                Outcome::Done
            }
            Step::ReleaseStock => {
                let prior = self.reservations.borrow().get(&id).copied();
                match prior {
                    None => {
                        self.reservations.borrow_mut().insert(id, Reservation::Released);
                    }
                    Some(Reservation::Reserved) => {
                        let mut stock = self.stock.borrow_mut();
                        for Line(item, qty) in &plan.items {
                            *stock.get_mut(item).unwrap() += qty;
                        }
                        self.reservations.borrow_mut().insert(id, Reservation::Released);
                    }
                    Some(_) => {}
                }
                Outcome::Done
            }
            Step::ChargePayment => {
                if let Some(c) = self.charges.borrow().get(&id) {
                    return if *c == Charge::Charged {
                        Outcome::Done
                    } else {
                        Outcome::Refused("insufficient credit".into())
                    };
                }
                let mut credit = self.credit.borrow_mut();
                match credit.get_mut(&plan.user_id) {
                    Some(c) if *c >= plan.total => {
                        *c -= plan.total;
                        self.charges.borrow_mut().insert(id, Charge::Charged);
                        Outcome::Done
                    }
                    _ => {
                        self.charges.borrow_mut().insert(id, Charge::Refused);
                        Outcome::Refused("insufficient credit".into())
                    }
                }
            }
            Step::RefundPayment => {
                let prior = self.charges.borrow().get(&id).copied();
                match prior {
                    None => {
                        self.charges.borrow_mut().insert(id, Charge::Refunded);
                    }
                    Some(Charge::Charged) => {
                        *self.credit.borrow_mut().get_mut(&plan.user_id).unwrap() += plan.total;
                        self.charges.borrow_mut().insert(id, Charge::Refunded);
                    }
                    Some(_) => {}
                }
                Outcome::Done
            }
            Step::MarkPaid => {
                let mut orders = self.orders.borrow_mut();
                match orders.get_mut(&plan.order_id) {
                    Some((generation, paid_by)) if *generation == plan.generation => match paid_by {
                        Some(s) if *s != id => Outcome::Refused("paid by another checkout".into()),
                        _ => {
                            *paid_by = Some(id);
                            Outcome::Done
                        }
                    },
                    _ => Outcome::Refused("order changed".into()),
                }
            }
            other => Outcome::Invalid(format!("{other:?} is not a checkout's step")),
        }
    }
}

impl Participants for World {
    async fn perform(&self, step: Step, plan: &Plan) -> Outcome {
        let n = self.calls.get();
        self.calls.set(n + 1);
        let fault = self.faults.borrow().get(n).copied().unwrap_or(Fault::None);
        match fault {
            Fault::None => self.apply(step, plan),
            Fault::Before => Outcome::Transient("injected: no answer".into()),
            Fault::Invalid => Outcome::Invalid("injected: too many lines".into()),
            Fault::After => {
                self.apply(step, plan);
                Outcome::Transient("injected: reply lost".into())
            }
        }
    }
}

/// A driver that dies after `budget` participant calls: later calls do nothing.
struct Crashing<'a> {
    world: &'a World,
    budget: Cell<usize>,
}

impl Participants for Crashing<'_> {
    async fn perform(&self, step: Step, plan: &Plan) -> Outcome {
        if self.budget.get() == 0 {
            return Outcome::Transient("driver crashed".into());
        }
        self.budget.set(self.budget.get() - 1);
        self.world.perform(step, plan).await
    }
}

struct FakeClock(Cell<u64>);

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
    async fn sleep_ms(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

struct Lease(Cell<bool>);

impl Fence for Lease {
    async fn renew(&self) -> bool {
        self.0.get()
    }
}

fn plan(order: &str, user: &str, items: &[(&str, i64)], total: i64) -> Plan {
    Plan {
        saga_id: Plan::saga_id(order, 0, 0),
        order_id: order.into(),
        generation: 0,
        attempt: 0,
        user_id: user.into(),
        items: items.iter().map(|(i, q)| Line(i.to_string(), *q)).collect(),
        total,
    }
}

fn patient() -> RetryPolicy {
    RetryPolicy { backoff_ms: vec![10, 20, 40], renew_every_ms: 1_000 }
}

fn no_retries() -> RetryPolicy {
    RetryPolicy { backoff_ms: vec![], renew_every_ms: 1_000 }
}

fn run(world: &impl Participants, plan: &Plan, policy: &RetryPolicy) -> DriveReport {
    block_on(drive(plan, world, &FakeClock(Cell::new(0)), &Lease(Cell::new(true)), policy, "test"))
}

/// Re-drives until the saga finishes, like the worker does (bounded).
fn run_to_end(world: &World, plan: &Plan) -> (State, Option<String>) {
    for _ in 0..50 {
        if let DriveResult::Final { succeeded, reason } = run(world, plan, &no_retries()).result {
            return (if succeeded { State::Paid } else { State::Failed }, reason);
        }
    }
    panic!("saga did not finish");
}

fn stock(w: &World, item: &str) -> i64 {
    w.stock.borrow()[item]
}

fn credit(w: &World, user: &str) -> i64 {
    w.credit.borrow()[user]
}

#[test]
fn happy_path_reserves_charges_and_marks_paid() {
    let w = World::with(&[("a", 5), ("b", 5)], &[("u", 10)], &[("o", 0)]);
    let p = plan("o", "u", &[("a", 2), ("b", 1)], 7);
    let report = run(&w, &p, &patient());
    assert_eq!(report.result, DriveResult::Final { succeeded: true, reason: None });
    assert_eq!(
        report.events.iter().map(|e| e.step).collect::<Vec<_>>(),
        vec![Step::ReserveStock, Step::ChargePayment, Step::MarkPaid]
    );
    assert_eq!((stock(&w, "a"), stock(&w, "b"), credit(&w, "u")), (3, 4, 3));
}

#[test]
fn out_of_stock_fails_without_touching_anything() {
    let w = World::with(&[("a", 5), ("b", 0)], &[("u", 10)], &[("o", 0)]);
    let p = plan("o", "u", &[("a", 2), ("b", 1)], 7);
    let report = run(&w, &p, &patient());
    assert_eq!(report.result, DriveResult::Final { succeeded: false, reason: Some("out of stock".into()) });
    assert_eq!((stock(&w, "a"), stock(&w, "b"), credit(&w, "u")), (5, 0, 10));
}

#[test]
fn out_of_credit_releases_the_reserved_stock() {
    let w = World::with(&[("a", 5)], &[("u", 1)], &[("o", 0)]);
    let p = plan("o", "u", &[("a", 2)], 7);
    let report = run(&w, &p, &patient());
    assert_eq!(report.result, DriveResult::Final { succeeded: false, reason: Some("insufficient credit".into()) });
    assert_eq!(report.events.last().map(|e| e.step), Some(Step::ReleaseStock));
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (5, 1));
}

#[test]
fn an_order_changed_meanwhile_is_refunded_and_released() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 1)]); // the plan is for generation 0
    let p = plan("o", "u", &[("a", 2)], 7);
    let report = run(&w, &p, &patient());
    assert_eq!(report.result, DriveResult::Final { succeeded: false, reason: Some("order changed".into()) });
    let steps: Vec<_> = report.events.iter().map(|e| e.step).collect();
    assert_eq!(
        steps,
        vec![Step::ReserveStock, Step::ChargePayment, Step::MarkPaid, Step::RefundPayment, Step::ReleaseStock]
    );
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (5, 10));
}

#[test]
fn transient_failures_are_retried_inline_within_the_budget() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    *w.faults.borrow_mut() = vec![Fault::Before, Fault::After, Fault::None, Fault::Before];
    let report = run(&w, &plan("o", "u", &[("a", 1)], 1), &patient());
    assert_eq!(report.result, DriveResult::Final { succeeded: true, reason: None });
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (4, 9), "a lost reply never applies twice");
}

#[test]
fn a_step_that_keeps_failing_ends_the_drive_for_a_later_retry() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    *w.faults.borrow_mut() = vec![Fault::None, Fault::Before, Fault::Before, Fault::Before, Fault::Before];
    let p = plan("o", "u", &[("a", 1)], 1);
    let report = run(&w, &p, &patient());
    assert!(matches!(report.result, DriveResult::Retry { step: Step::ChargePayment, .. }), "{report:?}");
    assert_eq!(run_to_end(&w, &p), (State::Paid, None));
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (4, 9));
}

#[test]
fn a_lost_lease_stops_the_driver_before_its_next_step() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    let policy = RetryPolicy { backoff_ms: vec![], renew_every_ms: 0 };
    let report = block_on(drive(
        &plan("o", "u", &[("a", 1)], 1),
        &w,
        &FakeClock(Cell::new(0)),
        &Lease(Cell::new(false)),
        &policy,
        "test",
    ));
    assert_eq!(report.result, DriveResult::Fenced);
    assert_eq!(stock(&w, "a"), 5);
}

/// The three scenarios with a driver crash after every possible number of calls, then a
/// re-drive: always the same final state and the same balances as without a crash.
#[test]
fn a_crash_between_any_two_steps_is_finished_by_a_re_drive() {
    /// Stock, credit, the order's generation, and what must come out: state, stock, credit.
    type Scenario = (&'static [(&'static str, i64)], &'static [(&'static str, i64)], i64, (State, i64, i64));
    let scenarios: [Scenario; 4] = [
        (&[("a", 5)], &[("u", 10)], 0, (State::Paid, 4, 3)),
        (&[("a", 0)], &[("u", 10)], 0, (State::Failed, 0, 10)),
        (&[("a", 5)], &[("u", 1)], 0, (State::Failed, 5, 1)),
        (&[("a", 5)], &[("u", 10)], 1, (State::Failed, 5, 10)),
    ];
    for (stock_init, credit_init, generation, expected) in scenarios {
        for crash_after in 0..6 {
            for fault in [Fault::Before, Fault::After] {
                let w = World::with(stock_init, credit_init, &[("o", generation)]);
                let p = plan("o", "u", &[("a", 1)], 7);
                // The call the driver dies on either never reaches the participant or applies.
                let mut faults = vec![Fault::None; crash_after];
                faults.push(fault);
                *w.faults.borrow_mut() = faults;
                let crashing = Crashing { world: &w, budget: Cell::new(crash_after + 1) };
                let _ = run(&crashing, &p, &no_retries());
                let (state, _) = run_to_end(&w, &p);
                assert_eq!(
                    (state, stock(&w, "a"), credit(&w, "u")),
                    expected,
                    "crash after {crash_after} calls ({fault:?})"
                );
            }
        }
    }
}

/// Many sagas on two hot items with random faults: stock and money are conserved, and every
/// paid order was charged exactly its total.
#[test]
fn random_faults_conserve_stock_and_money() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let users: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    let w = World::with(&[("a", 40), ("b", 25)], &[], &[]);
    for u in &users {
        w.credit.borrow_mut().insert(u.clone(), 6);
    }
    let faults: Vec<Fault> = (0..5_000)
        .map(|_| match rand(10) {
            0 => Fault::Before,
            1 => Fault::After,
            _ => Fault::None,
        })
        .collect();
    *w.faults.borrow_mut() = faults;
    let mut plans = Vec::new();
    for i in 0..100 {
        let order = format!("o{i}");
        w.orders.borrow_mut().insert(order.clone(), (0, None));
        let qa = rand(3) as i64;
        let qb = 1 + rand(2) as i64;
        let p = plan(&order, &users[rand(users.len() as u64) as usize], &[("a", qa), ("b", qb)], qa + qb);
        plans.push(p);
    }
    let mut paid = Vec::new();
    for p in &plans {
        // A driver that may crash part-way, then re-drives until final.
        let crashing = Crashing { world: &w, budget: Cell::new(rand(6) as usize) };
        let _ = run(&crashing, p, &patient());
        if run_to_end(&w, p).0 == State::Paid {
            paid.push(p.clone());
        }
    }
    let sold = |item: &str| -> i64 { paid.iter().flat_map(|p| &p.items).filter(|l| l.0 == item).map(|l| l.1).sum() };
    assert_eq!(stock(&w, "a") + sold("a"), 40);
    assert_eq!(stock(&w, "b") + sold("b"), 25);
    let spent: i64 = paid.iter().map(|p| p.total).sum();
    let left: i64 = users.iter().map(|u| credit(&w, u)).sum();
    assert_eq!(left + spent, 6 * users.len() as i64);
    for p in &plans {
        let is_paid = w.orders.borrow()[&p.order_id].1.is_some();
        assert_eq!(is_paid, paid.contains(p), "order {} paid in the order table iff the saga says so", p.order_id);
    }
    assert!(!paid.is_empty() && paid.len() < plans.len(), "the scenario has both outcomes");
}

#[test]
fn records_round_trip_with_history() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    let p = plan("o", "u", &[("a", 1)], 1);
    let mut record = Record::new(p.clone(), 1);
    let report = run(&w, &p, &patient());
    record.apply(&report, 2);
    assert_eq!(record.state, State::Paid);
    assert_eq!(record.history.len(), 3);
    assert!(!record.encode().contains("saga_id"), "the id is the key, not stored");
    assert_eq!(Record::decode_for(&p.saga_id, &record.encode()), Some(record));
    assert_eq!(Record::<Plan>::decode_for("o.0.x", "{}"), None);
}

#[test]
fn retry_delays_grow_and_are_capped() {
    assert_eq!(retry_delay_ms(0), 250);
    assert!(retry_delay_ms(1) > retry_delay_ms(0));
    assert_eq!(retry_delay_ms(30), 5_000);
}

/// Answers a saga's steps from a list, in order; anything past it fails transiently.
struct Scripted(RefCell<Vec<Outcome>>);

impl Participants for Scripted {
    async fn perform(&self, _step: Step, _plan: &Plan) -> Outcome {
        let mut left = self.0.borrow_mut();
        if left.is_empty() { Outcome::Transient("not scripted".into()) } else { left.remove(0) }
    }
}

#[test]
fn decided_by_settles_exactly_the_sagas_drive_ends_on_those_answers_alone() {
    let kinds = [
        Outcome::Done,
        Outcome::Refused("no".into()),
        Outcome::Transient("lost".into()),
        Outcome::Invalid("bad".into()),
    ];
    let k = kinds.len();
    let mut lists: Vec<Vec<Outcome>> = vec![vec![]];
    for len in 1..=3 {
        for n in 0..k.pow(len) {
            lists.push((0..len).map(|i| kinds[n / k.pow(i) % k].clone()).collect());
        }
    }
    let p = plan("o", "u", &[("a", 1)], 1);
    let mut settled = 0;
    for answers in &lists {
        let refs: Vec<&Outcome> = answers.iter().collect();
        let decided = Record::decided_by(&p, 5, &refs, 9, "test");
        let report = run(&Scripted(RefCell::new(answers.clone())), &p, &no_retries());
        let used_only_the_answers = report.events.len() <= answers.len();
        match decided {
            Some(record) => {
                settled += 1;
                let DriveResult::Final { succeeded, reason } = &report.result else {
                    panic!("{answers:?}: drive did not end")
                };
                assert!(used_only_the_answers, "{answers:?}");
                let state = if *succeeded { State::Paid } else { State::Failed };
                assert_eq!((&record.state, &record.reason), (&state, reason), "{answers:?}");
                let steps = |events: &[Event]| events.iter().map(|e| (e.step, e.outcome.clone())).collect::<Vec<_>>();
                assert_eq!(steps(&record.history), steps(&report.events), "{answers:?}");
                assert_eq!((record.created_ms, record.updated_ms, record.drives), (5, 9, 1));
            }
            None => {
                let compensated =
                    report.events.iter().any(|e| matches!(e.step, Step::RefundPayment | Step::ReleaseStock));
                let ended_alone = matches!(report.result, DriveResult::Final { .. }) && used_only_the_answers;
                assert!(compensated || !ended_alone, "{answers:?}: drive ended on these answers, yet not decided");
            }
        }
    }
    let decided =
        |answers: &[Outcome]| Record::decided_by(&p, 0, &answers.iter().collect::<Vec<_>>(), 0, "t").map(|r| r.state);
    assert_eq!(decided(&[Outcome::Done, Outcome::Done, Outcome::Done]), Some(State::Paid));
    assert_eq!(decided(&[Outcome::Refused("out of stock".into())]), Some(State::Failed));
    assert_eq!(decided(&[Outcome::Done, Outcome::Refused("out of credit".into())]), None, "needs a release");
    assert_eq!(decided(&[Outcome::Done, Outcome::Done]), None, "mark paid not answered");
    assert_eq!(decided(&[Outcome::Invalid("too many lines".into())]), None, "needs a release");
    // Refused at reserve (whatever was listed after it: 1 + 4 + 16 lists), or done, done, done.
    assert_eq!(settled, 1 + 4 + 16 + 1);
}

// ---- Invalid requests: a permanent failure, compensated.

#[test]
fn an_invalid_reserve_fails_the_saga_for_good_after_releasing() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    *w.faults.borrow_mut() = vec![Fault::Invalid];
    let p = plan("o", "u", &[("a", 1)], 1);
    let report = run(&w, &p, &patient());
    let DriveResult::Final { succeeded: false, reason: Some(reason) } = &report.result else { panic!("{report:?}") };
    assert_eq!(reason, &format!("{INVALID_ORDER}injected: too many lines"));
    let steps: Vec<_> = report.events.iter().map(|e| (e.step, e.outcome.as_str())).collect();
    assert_eq!(steps, [(Step::ReserveStock, "invalid: injected: too many lines"), (Step::ReleaseStock, "done")]);
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (5, 10));
    // Compensated for good: the release left a tombstone, so a re-drive cannot reserve.
    assert_eq!(run_to_end(&w, &p).0, State::Failed);
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (5, 10));
    let mut record = Record::new(p, 0);
    record.apply(&report, 1);
    assert!(record.failed_as_invalid(), "{record:?}");
}

#[test]
fn an_invalid_charge_refunds_and_releases_then_fails() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    *w.faults.borrow_mut() = vec![Fault::None, Fault::Invalid];
    let p = plan("o", "u", &[("a", 2)], 3);
    let report = run(&w, &p, &patient());
    assert!(
        matches!(&report.result, DriveResult::Final { succeeded: false, reason: Some(r) } if r.starts_with(INVALID_ORDER)),
        "{report:?}"
    );
    let steps: Vec<_> = report.events.iter().map(|e| e.step).collect();
    assert_eq!(steps, [Step::ReserveStock, Step::ChargePayment, Step::RefundPayment, Step::ReleaseStock]);
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (5, 10), "the reserved stock is back");
}

#[test]
fn a_refusal_is_not_invalid_and_an_invalid_compensation_is_retried_not_done() {
    let w = World::with(&[("a", 0)], &[("u", 10)], &[("o", 0)]);
    let mut refused = Record::new(plan("o", "u", &[("a", 1)], 1), 0);
    refused.apply(&run(&w, &refused.plan.clone(), &patient()), 1);
    assert_eq!(refused.state, State::Failed);
    assert!(!refused.failed_as_invalid(), "out of stock is a 409, not a 400");

    // Credit refused, then the release (a compensation) answers "invalid": not taken as done.
    let w = World::with(&[("a", 5)], &[("u", 0)], &[("o", 0)]);
    *w.faults.borrow_mut() = vec![Fault::None, Fault::None, Fault::Invalid];
    let p = plan("o", "u", &[("a", 1)], 1);
    let report = run(&w, &p, &no_retries());
    assert!(matches!(report.result, DriveResult::Retry { step: Step::ReleaseStock, .. }), "{report:?}");
    assert_eq!(stock(&w, "a"), 4, "still reserved");
    assert_eq!(run_to_end(&w, &p), (State::Failed, Some("insufficient credit".into())));
    assert_eq!(stock(&w, "a"), 5);
}

// ---- The drive limit: stuck, then re-driven.

/// Drives the saga as the checkout and then the worker do, each drive folded into the record,
/// until it is no longer running (or `max` drives).
fn drive_record(world: &impl Participants, record: &mut Record, max: u32) {
    for now in 1..=u64::from(max) {
        let plan = record.plan.clone();
        let report = run(world, &plan, &no_retries());
        record.apply(&report, now);
        if record.state != State::Running {
            return;
        }
    }
}

#[test]
fn a_saga_that_keeps_failing_is_stuck_after_its_drive_limit_and_a_redrive_finishes_it() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    // Reserve and charge go through; "mark paid" fails on every call of the first 3 drives.
    *w.faults.borrow_mut() = vec![
        Fault::None,
        Fault::None,
        Fault::Before,
        Fault::None,
        Fault::None,
        Fault::Before,
        Fault::None,
        Fault::None,
        Fault::Before,
    ];
    let p = plan("o", "u", &[("a", 1)], 2);
    let mut record = Record::new(p, 0).with_drive_limit(3);
    drive_record(&w, &mut record, 10);
    assert_eq!((record.state, record.drives), (State::Stuck, 3));
    let reason = record.reason.clone().unwrap_or_default();
    assert!(reason.contains("3 drives") && reason.contains("mark_paid") && reason.contains("injected"), "{reason}");
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (4, 8), "held while stuck");
    assert_eq!(record.redriven(5, 9).and_then(|r| r.redriven(5, 9)), None, "only a stuck saga is re-driven");

    let again = record.redriven(5, 20).expect("stuck");
    assert_eq!(
        (again.state, again.reason.as_deref(), again.drive_limit, again.drives, again.updated_ms),
        (State::Running, None, 8, 3, 20)
    );
    let mut again = again;
    drive_record(&w, &mut again, 10);
    assert_eq!((again.state, again.drives), (State::Paid, 4));
    assert_eq!((stock(&w, "a"), credit(&w, "u")), (4, 8), "charged once");
}

#[test]
fn a_saga_that_finishes_on_its_last_drive_is_not_stuck() {
    let w = World::with(&[("a", 5)], &[("u", 10)], &[("o", 0)]);
    *w.faults.borrow_mut() = vec![Fault::Before];
    let mut record = Record::new(plan("o", "u", &[("a", 1)], 1), 0).with_drive_limit(2);
    drive_record(&w, &mut record, 10);
    assert_eq!((record.state, record.drives), (State::Paid, 2));
    // A drive that was fenced out counts, but never makes a saga stuck (it wrote nothing).
    let mut fenced = Record::new(plan("o", "u", &[("a", 1)], 1), 0).with_drive_limit(1);
    fenced.apply(&DriveReport { result: DriveResult::Fenced, events: vec![] }, 1);
    assert_eq!(fenced.state, State::Running);
}

#[test]
fn the_history_keeps_its_first_and_latest_events_and_counts_the_dropped_ones() {
    let event = |i: u64| Event { at_ms: i, by: "worker".into(), step: Step::MarkPaid, outcome: format!("error: {i}") };
    let mut record = Record::new(plan("o", "u", &[("a", 1)], 1), 0).with_drive_limit(u32::MAX);
    let mut next_event = 0;
    for _ in 0..100 {
        let events: Vec<Event> = (next_event..next_event + 5).map(event).collect();
        next_event += 5;
        record.apply(
            &DriveReport { result: DriveResult::Retry { step: Step::MarkPaid, error: "e".into() }, events },
            next_event,
        );
        assert!(record.history.len() <= HISTORY_CAP);
    }
    assert_eq!(record.history.len(), HISTORY_CAP);
    assert_eq!(record.history_dropped, 500 - HISTORY_CAP as u64);
    let kept: Vec<u64> = record.history.iter().map(|e| e.at_ms).collect();
    let first: Vec<u64> = (0..HISTORY_HEAD as u64).collect();
    let last: Vec<u64> = (500 - (HISTORY_CAP - HISTORY_HEAD) as u64..500).collect();
    assert_eq!(kept, [first, last].concat());
    let decoded = Record::decode_for(&record.plan.saga_id, &record.encode()).expect("decodes");
    assert_eq!(decoded, record);
    assert!(
        !Record::new(plan("o", "u", &[], 0), 0).encode().contains("history_dropped"),
        "only when some were dropped"
    );
}

#[test]
fn records_written_before_drive_limits_get_the_default_and_limits_parse() {
    let old = r#"{"order_id":"o","generation":0,"user_id":"u","items":[],"total":0,"state":"running","reason":null,"drives":7,"history":[],"created_ms":1,"updated_ms":2}"#;
    let record = Record::<Plan>::decode_for("o.0.0", old).expect("decodes");
    assert_eq!((record.drive_limit, record.history_dropped, record.drives), (DEFAULT_DRIVE_LIMIT, 0, 7));
    assert_eq!(parse_drive_limit("3"), Ok(3));
    assert_eq!(parse_drive_limit(" 100 "), Ok(100));
    for bad in ["0", "-1", "", "many", "4294967296"] {
        assert!(parse_drive_limit(bad).is_err(), "{bad:?}");
    }
    let stuck = serde_json::to_string(&State::Stuck).unwrap_or_default();
    assert_eq!(stuck, "\"stuck\"");
    assert_eq!(Step::MarkPaid.name(), serde_json::to_value(Step::MarkPaid).unwrap_or_default());
}

#[test]
fn a_finished_saga_says_how_its_checkout_is_counted_and_how_many_compensations_it_did() {
    let outcome_of = |stock: i64, credit: i64, generation: i64| {
        let w = World::with(&[("a", stock)], &[("u", credit)], &[("o", generation)]);
        let p = plan("o", "u", &[("a", 2)], 7);
        let report = run(&w, &p, &patient());
        let mut record = Record::new(p, 0);
        record.apply(&report, 1);
        (record.checkout_outcome(), report.compensations(&CHECKOUT))
    };
    assert_eq!(outcome_of(5, 10, 0), (Some(CheckoutOutcome::Paid), 0));
    assert_eq!(outcome_of(1, 10, 0), (Some(CheckoutOutcome::RefusedStock), 0));
    assert_eq!(outcome_of(5, 1, 0), (Some(CheckoutOutcome::RefusedCredit), 1));
    assert_eq!(outcome_of(5, 10, 1), (Some(CheckoutOutcome::Failed), 2));
    assert_eq!(Record::new(plan("o", "u", &[("a", 2)], 7), 0).checkout_outcome(), None);
}
