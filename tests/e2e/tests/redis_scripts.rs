//! The services run their Redis scripts by digest (`EVALSHA`) and fall back to sending the
//! script (`EVAL`) when Redis answers `NOSCRIPT`: after Redis forgot every script (a restart, a
//! failover, `SCRIPT FLUSH`), nothing a client sees changes.

use e2e::App;

#[test]
fn every_route_works_on_after_redis_forgets_its_scripts() {
    let app = App::start();
    let user = app.new_user(100);
    let item = app.new_item(10, 5);
    let first = app.new_order(&user, &[(&item, 1)]);
    assert_eq!(app.post(&format!("/orders/checkout/{first}")).status, 200);
    assert_eq!(app.stock_of(&item).0, 4);

    assert_eq!(e2e::redis_cli(&["SCRIPT", "FLUSH"]), ["OK"]);
    // The checkout's scripts (begin, the batch's take and settle, save), the find view's, and the
    // Idempotency-Key claim, each first run by a digest Redis no longer knows.
    let second = app.new_order(&user, &[(&item, 2)]);
    let paid = app.post(&format!("/orders/checkout/{second}"));
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!(app.order(&second)["paid"], true);
    assert_eq!(app.stock_of(&item).0, 2);
    assert_eq!(app.credit_of(&user), 100 - 10 - 20);
    // Keys live for a day, across runs: one of this user's own.
    let key = format!("after-flush-{user}");
    let keyed = app.post_with_key(&format!("/payment/add_funds/{user}/5"), &key);
    assert_eq!(keyed.status, 200, "{keyed:?}");
    let replayed = app.post_with_key(&format!("/payment/add_funds/{user}/5"), &key);
    assert_eq!(replayed.status, 200, "{replayed:?}");
    assert_eq!(app.credit_of(&user), 75, "the replay was answered from the first, not applied again");
}
