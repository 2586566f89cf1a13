//! Orders that can never be paid ("poison orders"), black-box: what `addItem` refuses so that
//! they cannot be made, what a checkout of one made before those checks answers (a 400 at once,
//! the saga failed and compensated), that one such saga does not refuse the shared batch of
//! forward steps it is in, and what becomes of a saga that keeps failing: after a bounded number
//! of drives it is `stuck`, left alone by the worker, listed for an operator, who can re-drive it.
//!
//! The app runs with `saga_max_drives = 2` (the default is far higher), so that a saga that keeps
//! failing is stuck after its checkout's drive and one drive of the worker.

use e2e::market::in_parallel;
use e2e::{App, Value, redis_cli, sql};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const MAX_DRIVES: u32 = 2;

/// The stuck-saga test makes every reserve batch its saga is in fail; the batch test wants
/// batches without a failure: one at a time.
static BATCHES: Mutex<()> = Mutex::new(());

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App::start_with_env(&[("SPIN_VARIABLE_SAGA_MAX_DRIVES", &MAX_DRIVES.to_string())]))
}

/// An order as one made before `addItem` checked its limits: created empty through the API, its
/// lines then written in Postgres, its plan copy dropped (the checkout reads the order again).
fn legacy_order(user: &str, lines: &[(&str, i64)], total: i64) -> String {
    let order = app().new_order(user, &[]);
    let items: Vec<Value> = lines.iter().map(|(item, qty)| serde_json::json!([item, qty])).collect();
    let items = Value::Array(items).to_string();
    sql(&format!("UPDATE orders.orders SET items = '{items}'::jsonb, total_cost = {total} WHERE order_id = '{order}'"));
    redis_cli(&["-n", "1", "DEL", &format!("orders:plan:{order}")]);
    order
}

fn in_active_set(saga_id: &str) -> bool {
    !redis_cli(&["-n", "1", "ZSCORE", "orders:sagas:active", saga_id]).concat().trim().is_empty()
}

fn steps_and_outcomes(saga: &Value) -> Vec<(String, String)> {
    saga["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| {
            (e["step"].as_str().unwrap_or_default().to_string(), e["outcome"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

// ---- 3. addItem refuses what would make an order unpayable.

#[test]
fn add_item_refuses_quantities_that_overflow_and_lines_beyond_the_reservation_limit() {
    let free = app().new_item(0, 5);
    let user = app().new_user(0);
    let order = app().new_order(&user, &[(&free, i64::MAX)]);
    for qty in [i64::MAX, 1] {
        let refused = app().post(&format!("/orders/addItem/{order}/{free}/{qty}"));
        assert_eq!(refused.status, 400, "quantities summing past 2^63 - 1: {refused:?}");
        assert!(refused.json()["message"].as_str().is_some_and(|m| m.contains("quantit")), "{refused:?}");
    }
    let found = app().order(&order);
    assert_eq!(
        (found["items"].as_array().map(Vec::len), &found["total_cost"]),
        (Some(1), &Value::from(0)),
        "unchanged: {found}"
    );

    // price × quantity, and the total, past 2^63 - 1 (checked before, still checked).
    let dear = app().new_item(2, 0);
    let costly = app().new_order(&user, &[(&dear, i64::MAX / 4)]);
    assert_eq!(app().post(&format!("/orders/addItem/{costly}/{dear}/{}", i64::MAX / 2 + 1)).status, 400);
    assert_eq!(app().post(&format!("/orders/addItem/{costly}/{dear}/{}", i64::MAX / 4 + 2)).status, 400);
    assert_eq!(app().order(&costly)["total_cost"], Value::from(2 * (i64::MAX / 4)));

    // At most 1000 lines: what the stock service's reservation takes. An order of 1000 lines is
    // paid like any other.
    let item = app().new_item(1, 1000);
    let payer = app().new_user(1000);
    let long = app().new_order(&payer, &[]);
    let added = in_parallel(16, &[(); 1000], |_| app().post(&format!("/orders/addItem/{long}/{item}/1")).status);
    assert!(added.iter().all(|s| *s == 200), "{:?}", added.iter().find(|s| **s != 200));
    let refused = app().post(&format!("/orders/addItem/{long}/{item}/1"));
    assert_eq!(refused.status, 400, "line 1001: {refused:?}");
    assert!(refused.json()["message"].as_str().is_some_and(|m| m.contains("1000")), "{refused:?}");
    assert_eq!(app().order(&long)["items"].as_array().map(Vec::len), Some(1000));
    let paid = app().post(&format!("/orders/checkout/{long}"));
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!((app().stock_of(&item).0, app().credit_of(&payer)), (0, 0));
}

// ---- 1. A participant's "invalid request" fails the saga for good, at once.

#[test]
fn a_checkout_of_an_order_that_cannot_be_paid_is_refused_at_once_and_changes_nothing() {
    let free = app().new_item(0, 5);
    let cheap = app().new_item(1, 5000);
    let user = app().new_user(5000);
    let overflowing = legacy_order(&user, &[(&free, i64::MAX), (&free, i64::MAX)], 0);
    let too_long = legacy_order(&user, &vec![(cheap.as_str(), 1); 1001], 1001);
    for order in [&overflowing, &too_long] {
        let started = Instant::now();
        let refused = app().post(&format!("/orders/checkout/{order}"));
        let took = started.elapsed();
        assert_eq!(refused.status, 400, "{refused:?}");
        assert_eq!(refused.json()["error"], "bad_request", "{refused:?}");
        assert!(took < Duration::from_secs(10), "refused at once, not after the checkout's wait: {took:?}");
        let saga = app().saga_of(order);
        assert_eq!(saga["state"], "failed", "{saga}");
        assert_eq!(saga["drives"], 1, "{saga}");
        let history = steps_and_outcomes(&saga);
        assert!(history[0].0 == "reserve_stock" && history[0].1.starts_with("invalid: "), "{history:?}");
        assert_eq!(
            history.last().map(|(s, o)| (s.as_str(), o.as_str())),
            Some(("release_stock", "done")),
            "compensated: {history:?}"
        );
        assert!(!in_active_set(saga["saga_id"].as_str().expect("saga id")), "the worker has nothing left to do");
        assert_eq!(app().order(order)["paid"], false);
        // Checked out again: a new attempt, refused the same way.
        let again = app().post(&format!("/orders/checkout/{order}"));
        assert_eq!(again.status, 400, "{again:?}");
        assert_eq!(app().saga_of(order)["attempt"], 1);
    }
    assert_eq!((app().stock_of(&free).0, app().stock_of(&cheap).0, app().credit_of(&user)), (5, 5000, 5000));
}

// ---- 4. One saga cannot poison a shared batch.

#[test]
fn a_saga_that_cannot_be_paid_does_not_refuse_the_batch_it_shares() {
    let _alone = BATCHES.lock().unwrap_or_else(|e| e.into_inner());
    let free = app().new_item(0, 10);
    let item = app().new_item(1, 60);
    let poison_payer = app().new_user(10);
    let users: Vec<String> = in_parallel(16, &[(); 60], |_| app().new_user(1));
    let mut orders: Vec<(String, bool)> = in_parallel(16, &users, |u| (app().new_order(u, &[(&item, 1)]), false));
    // Poison orders among them, checked out at the same time: they share batches.
    for i in 0..4 {
        let poison = legacy_order(&poison_payer, &[(&free, i64::MAX), (&free, i64::MAX)], 0);
        orders.insert(i * 15, (poison, true));
    }
    let replies = in_parallel(64, &orders, |(o, _)| app().post(&format!("/orders/checkout/{o}")));
    for ((order, _), reply) in orders.iter().zip(&replies).filter(|((_, poison), _)| !poison) {
        assert_eq!(reply.status, 200, "{order}: {reply:?}");
        // Its forward steps went through in the batch, with no error and no retry.
        let history = steps_and_outcomes(&app().saga_of(order));
        let done = |step: &str| (step.to_string(), "done".to_string());
        assert_eq!(history, [done("reserve_stock"), done("charge_payment"), done("mark_paid")], "{order}");
    }
    for ((order, _), reply) in orders.iter().zip(&replies).filter(|((_, poison), _)| *poison) {
        assert_eq!(reply.status, 400, "{order}: {reply:?}");
    }
    assert_eq!(app().stock_of(&item).0, 0);
    assert_eq!((app().stock_of(&free).0, app().credit_of(&poison_payer)), (10, 10));
    let credits = in_parallel(16, &users, |u| app().credit_of(u));
    assert!(credits.iter().all(|c| *c == 0), "{credits:?}");
}

// ---- 2. A bounded number of drives, then `stuck`, until an operator re-drives it.

/// A fault on one item: its `find` view's writer count (`stock:view:busy:<item>`) holds a value
/// that is not a number, so the stock service's writer protocol fails (`INCR`) and every reserve
/// of the item answers 503 — transient, as far as a saga can tell. It expires by itself after a
/// minute (a test that dies leaves nothing behind) and is removed when dropped.
struct BrokenItem(String);

impl BrokenItem {
    fn new(item: &str) -> BrokenItem {
        redis_cli(&["SET", &format!("stock:view:busy:{item}"), "not-a-count", "PX", "60000"]);
        BrokenItem(item.to_string())
    }

    fn repair(&self) {
        redis_cli(&["DEL", &format!("stock:view:busy:{}", self.0)]);
    }
}

impl Drop for BrokenItem {
    fn drop(&mut self) {
        self.repair();
    }
}

/// The saga's record as stored in Redis.
fn record(saga_id: &str) -> Value {
    let raw = redis_cli(&["-n", "1", "GET", &format!("orders:saga:{saga_id}")]).concat();
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("record of {saga_id}: {e}: {raw:?}"))
}

#[test]
fn a_saga_that_keeps_failing_is_stuck_after_its_drives_and_an_operator_redrives_it() {
    let _alone = BATCHES.lock().unwrap_or_else(|e| e.into_inner());
    let item = app().new_item(3, 5);
    let user = app().new_user(10);
    let order = app().new_order(&user, &[(&item, 1)]);
    let saga_id = format!("{order}.0.0");
    let broken = BrokenItem::new(&item);

    let started = Instant::now();
    let first = app().post(&format!("/orders/checkout/{order}"));
    assert_eq!(first.status, 503, "{first:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "answered once stuck: {:?}", started.elapsed());
    assert!(first.json()["message"].as_str().is_some_and(|m| m.contains("stuck")), "{first:?}");
    let saga = app().saga_of(&order);
    assert_eq!(saga["saga_id"], saga_id.as_str());
    assert_eq!(saga["state"], "stuck", "{saga}");
    assert_eq!((&saga["drives"], &saga["drive_limit"]), (&Value::from(MAX_DRIVES), &Value::from(MAX_DRIVES)), "{saga}");
    assert!(saga["reason"].as_str().is_some_and(|r| r.contains("reserve_stock")), "{saga}");
    let by: Vec<&str> = saga["history"].as_array().expect("history").iter().filter_map(|e| e["by"].as_str()).collect();
    assert!(by.contains(&"checkout") && by.contains(&"worker"), "driven by its checkout, then the worker: {by:?}");
    assert!(!in_active_set(&saga_id), "not in the active set: the worker leaves it alone");

    // Left alone: no more drives, its record kept; a checkout of the order says so at once.
    std::thread::sleep(Duration::from_secs(4));
    let later = record(&saga_id);
    assert_eq!(
        (&later["state"], &later["drives"], &later["history"]),
        (&saga["state"], &saga["drives"], &saga["history"])
    );
    let started = Instant::now();
    let again = app().post(&format!("/orders/checkout/{order}"));
    assert_eq!(again.status, 503, "{again:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(app().saga_of(&order)["attempt"], 0, "no new attempt while one is stuck");
    assert_eq!((app().stock_of(&item).0, app().credit_of(&user)), (5, 10));

    // The operator's list.
    let listed = app().get("/orders/sagas/stuck");
    assert_eq!(listed.status, 200, "{listed:?}");
    let listed = listed.json();
    let entry = listed["sagas"].as_array().expect("sagas").iter().find(|s| s["saga_id"] == saga_id.as_str()).cloned();
    let entry = entry.unwrap_or_else(|| panic!("{saga_id} not listed: {listed}"));
    assert_eq!((&entry["order_id"], &entry["state"]), (&Value::from(order.as_str()), &Value::from("stuck")), "{entry}");

    // The cause repaired, the operator re-drives it: it is driven at once, and paid.
    broken.repair();
    let redriven = app().post(&format!("/orders/saga/{saga_id}/redrive"));
    assert_eq!(redriven.status, 200, "{redriven:?}");
    assert_eq!(redriven.json()["state"], "paid", "{redriven:?}");
    assert_eq!(app().order(&order)["paid"], true);
    assert_eq!((app().stock_of(&item).0, app().credit_of(&user)), (4, 7));
    let paid = app().saga_of(&order);
    assert_eq!((&paid["state"], &paid["drives"]), (&Value::from("paid"), &Value::from(MAX_DRIVES + 1)), "{paid}");
    assert_eq!(app().post(&format!("/orders/checkout/{order}")).status, 200);
    assert_eq!((app().stock_of(&item).0, app().credit_of(&user)), (4, 7), "charged once");
    let listed = app().get("/orders/sagas/stuck").json();
    assert!(!listed["sagas"].as_array().expect("sagas").iter().any(|s| s["saga_id"] == saga_id.as_str()), "{listed}");

    // Only a stuck saga is re-driven.
    assert_eq!(app().post(&format!("/orders/saga/{saga_id}/redrive")).status, 409);
    assert_eq!(app().post(&format!("/orders/saga/{order}.9.9/redrive")).status, 404);
    assert_eq!(app().post("/orders/saga/no%20such/redrive").status, 400);
    assert_eq!(app().get(&format!("/orders/saga/{saga_id}/redrive")).status, 405);
}

#[test]
fn the_operator_routes_are_absent_when_admin_routes_is_false() {
    let off = App::start_with_env(&[("SPIN_VARIABLE_ADMIN_ROUTES", "false")]);
    assert_eq!(off.get("/orders/sagas/stuck").status, 404);
    assert_eq!(off.post("/orders/saga/o.0.0/redrive").status, 404);
    assert_eq!(app().get("/orders/sagas/stuck").status, 200, "on by default");
}

/// A rental is a saga of the same table: one that keeps failing is stuck after its drives,
/// listed for the operator with its rental, and re-driven by the same route.
#[test]
fn a_rental_that_keeps_failing_is_stuck_listed_and_redriven_like_a_checkout() {
    let _alone = BATCHES.lock().unwrap_or_else(|e| e.into_inner());
    let json = ("content-type", "application/json");
    let owner = app().new_session("stuckowner");
    let borrower = app().new_session("stuckborrower");
    let listing = serde_json::json!({ "title": "Tile cutter", "daily_price": 4, "stock": 2 }).to_string();
    let listed = app().send("POST", "/stock/items", &[json, ("authorization", &owner.bearer())], listing.as_bytes());
    assert_eq!(listed.status, 201, "{listed:?}");
    let item = listed.json()["item_id"].as_str().expect("item_id").to_string();
    let funded = app().as_user(&borrower, "POST", &format!("/payment/add_funds/{}/20", borrower.user_id));
    assert_eq!(funded.status, 200, "{funded:?}");
    let broken = BrokenItem::new(&item);

    let body = serde_json::json!({ "item_id": item, "days": 2 }).to_string();
    let first = app().send("POST", "/rentals", &[json, ("authorization", &borrower.bearer())], body.as_bytes());
    assert_eq!(first.status, 503, "{first:?}");
    assert!(first.json()["message"].as_str().is_some_and(|m| m.contains("stuck")), "{first:?}");
    let rental_id =
        sql(&format!("SELECT rental_id FROM orders.rentals WHERE borrower_id = '{}'", borrower.user_id)).concat();
    let saga_id = format!("rental:{rental_id}");
    let stuck = record(&saga_id);
    assert_eq!((&stuck["state"], &stuck["drives"]), (&Value::from("stuck"), &Value::from(MAX_DRIVES)), "{stuck}");
    assert!(!in_active_set(&saga_id), "the worker leaves it alone");
    let seen = app().as_user(&borrower, "GET", &format!("/rentals/{rental_id}"));
    assert_eq!(seen.json()["state"], "pending", "{seen:?}");

    let listed = app().get("/orders/sagas/stuck").json();
    let entry = listed["sagas"].as_array().expect("sagas").iter().find(|s| s["saga_id"] == saga_id.as_str()).cloned();
    let entry = entry.unwrap_or_else(|| panic!("{saga_id} not listed: {listed}"));
    assert_eq!(
        (&entry["rental_id"], &entry["state"]),
        (&Value::from(rental_id.as_str()), &Value::from("stuck")),
        "{entry}"
    );

    broken.repair();
    let redriven = app().post(&format!("/orders/saga/{saga_id}/redrive"));
    assert_eq!((redriven.status, &redriven.json()["state"]), (200, &Value::from("paid")), "{redriven:?}");
    let active = app().as_user(&borrower, "GET", &format!("/rentals/{rental_id}"));
    assert_eq!(active.json()["state"], "active", "{active:?}");
    let credit = |session: &e2e::accounts::Session| {
        app().as_user(session, "GET", &format!("/payment/find_user/{}", session.user_id)).json()["credit"].as_i64()
    };
    assert_eq!((credit(&borrower), credit(&owner)), (Some(12), Some(8)), "charged and credited once");
    assert_eq!(app().get(&format!("/stock/items/{item}")).json()["stock"], 1);
}
