//! The payment service's endpoints, black-box, over HTTP.
//!
//! The checkout saga's steps `charge` and `refund` are private routes (service chaining only):
//! from outside they do not exist, which is tested here; their semantics are exercised through
//! `POST /orders/checkout` (here for what concerns credit, and in `checkout.rs`).

use e2e::market::in_parallel;
use e2e::{App, Reply};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

fn assert_client_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    let v = reply.json();
    assert!(v["error"].is_string() && v["message"].is_string(), "error body: {v}");
}

/// Asserts a `{"user_id", "credit"}` answer.
fn assert_user(reply: &Reply, user: &str, credit: i64) {
    assert_eq!(reply.status, 200, "{reply:?}");
    let v = reply.json();
    assert_eq!((v["user_id"].as_str(), v["credit"].as_i64()), (Some(user), Some(credit)), "{v}");
}

#[test]
fn create_user_returns_a_uuid_and_the_user_starts_with_no_credit() {
    let created = app().post("/payment/create_user");
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.json()["user_id"].as_str().expect("user_id is a string").to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(id.matches('-').count(), 4, "a UUID: {id}");
    assert_user(&app().get(&format!("/payment/find_user/{id}")), &id, 0);
    assert_ne!(app().new_user(0), id, "every user gets a new id");
}

#[test]
fn unknown_users_are_404_everywhere() {
    assert_client_error(&app().get("/payment/find_user/no-such-user"), 404);
    assert_client_error(&app().post("/payment/add_funds/no-such-user/1"), 404);
    assert_client_error(&app().post("/payment/pay/no-such-user/1"), 404);
}

#[test]
fn add_funds_increases_credit_and_answers_the_new_credit() {
    let user = app().new_user(0);
    assert_user(&app().post(&format!("/payment/add_funds/{user}/5")), &user, 5);
    assert_user(&app().post(&format!("/payment/add_funds/{user}/10")), &user, 15);
    assert_user(&app().post(&format!("/payment/add_funds/{user}/0")), &user, 15);
    assert_eq!(app().credit_of(&user), 15);
}

#[test]
fn adding_past_the_largest_credit_is_400_not_a_server_error() {
    let user = app().new_user(1);
    assert_client_error(&app().post(&format!("/payment/add_funds/{user}/{}", i64::MAX)), 400);
    assert_eq!(app().credit_of(&user), 1);
    assert_user(&app().post(&format!("/payment/add_funds/{user}/{}", i64::MAX - 1)), &user, i64::MAX);
}

#[test]
fn pay_decreases_credit_and_refuses_to_go_below_zero() {
    let user = app().new_user(5);
    assert_user(&app().post(&format!("/payment/pay/{user}/3")), &user, 2);
    let refused = app().post(&format!("/payment/pay/{user}/3"));
    assert_client_error(&refused, 409);
    assert_eq!(app().credit_of(&user), 2, "a refused payment changes nothing");
    assert_user(&app().post(&format!("/payment/pay/{user}/2")), &user, 0);
    assert_user(&app().post(&format!("/payment/pay/{user}/0")), &user, 0);
    assert_client_error(&app().post(&format!("/payment/pay/{user}/1")), 409);
}

#[test]
fn concurrent_payments_never_overdraw() {
    let user = app().new_user(50);
    let replies = in_parallel(100, &[(); 100], |_| app().post(&format!("/payment/pay/{user}/1")));
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 409), "only success or refusal: {replies:?}");
    let successes = replies.iter().filter(|r| r.is_success()).count();
    assert_eq!(successes, 50);
    assert_eq!(app().credit_of(&user), 0);
}

#[test]
fn batch_init_creates_users_zero_to_n_minus_one_quickly_and_resets_them() {
    let bystander = app().new_user(3);
    let started = Instant::now();
    let first = app().post("/payment/batch_init/100000/10");
    let took = started.elapsed();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.content_length, Some(first.body.len()), "{first:?}");
    assert!(took < Duration::from_secs(10), "batch_init of 100000 users took {took:?}");
    assert_user(&app().get("/payment/find_user/0"), "0", 10);
    assert_user(&app().get("/payment/find_user/99999"), "99999", 10);
    assert_eq!(app().credit_of(&bystander), 3, "users outside 0..n are left alone");
    assert_user(&app().post("/payment/pay/7/4"), "7", 6);
    let second = app().post("/payment/batch_init/100000/20");
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(app().credit_of("7"), 20, "batch_init re-creates existing users");
    assert_eq!(app().credit_of("99999"), 20);
}

#[test]
fn bad_input_is_400_and_changes_nothing() {
    let user = app().new_user(1);
    for amount in ["abc", "-1", "1.5", "+1", "99999999999999999999"] {
        assert_client_error(&app().post(&format!("/payment/add_funds/{user}/{amount}")), 400);
        assert_client_error(&app().post(&format!("/payment/pay/{user}/{amount}")), 400);
        assert_client_error(&app().post(&format!("/payment/batch_init/10/{amount}")), 400);
    }
    assert_client_error(&app().get("/payment/find_user/a%2Fb"), 400);
    assert_client_error(&app().post("/payment/pay/a%20b/1"), 400);
    assert_client_error(&app().post("/payment/batch_init/ten/1"), 400);
    assert_client_error(&app().post("/payment/batch_init/1000001/1"), 400);
    assert_client_error(&app().post("/payment/batch_init/-1/1"), 400);
    assert_eq!(app().credit_of(&user), 1, "refused requests change nothing");
}

#[test]
fn wrong_method_is_405() {
    let user = app().new_user(3);
    assert_client_error(&app().get("/payment/create_user"), 405);
    assert_client_error(&app().post(&format!("/payment/find_user/{user}")), 405);
    assert_client_error(&app().get(&format!("/payment/add_funds/{user}/1")), 405);
    assert_client_error(&app().get(&format!("/payment/pay/{user}/1")), 405);
    assert_client_error(&app().request("DELETE", &format!("/payment/pay/{user}/1")), 405);
    assert_client_error(&app().get("/payment/batch_init/1/1"), 405);
    assert_eq!(app().credit_of(&user), 3);
}

#[test]
fn unknown_routes_and_the_private_saga_steps_are_404_from_outside() {
    let user = app().new_user(10);
    assert_eq!(app().get("/payment/nothing-here").status, 404);
    assert_eq!(app().post(&format!("/payment/pay/{user}")).status, 404);
    assert_eq!(app().post(&format!("/payment/charge/outside-saga/{user}/5")).status, 404);
    assert_eq!(app().post("/payment/refund/outside-saga").status, 404);
    assert_eq!(app().credit_of(&user), 10, "the saga steps cannot be called from outside");
}

#[test]
fn every_response_carries_its_content_length() {
    let user = app().new_user(1);
    for reply in [
        app().post("/payment/create_user"),
        app().get(&format!("/payment/find_user/{user}")),
        app().get("/payment/find_user/no-such-user"),
        app().post(&format!("/payment/add_funds/{user}/1")),
        app().post(&format!("/payment/pay/{user}/1")),
        app().post(&format!("/payment/pay/{user}/100")),
        app().post(&format!("/payment/pay/{user}/x")),
        app().get(&format!("/payment/pay/{user}/1")),
    ] {
        assert_eq!(reply.content_length, Some(reply.body.len()), "{reply:?}");
    }
}

#[test]
fn a_payment_retried_with_the_same_idempotency_key_pays_once() {
    let user = app().new_user(10);
    let key = format!("pay-{user}");
    let first = app().post_with_key(&format!("/payment/pay/{user}/4"), &key);
    assert_user(&first, &user, 6);
    let retry = app().post_with_key(&format!("/payment/pay/{user}/4"), &key);
    assert_eq!((retry.status, retry.body.clone()), (first.status, first.body.clone()));
    assert_eq!(app().credit_of(&user), 6, "the retry paid nothing");
    assert_client_error(&app().post_with_key(&format!("/payment/pay/{user}/5"), &key), 422);
    let funds_key = format!("add-{user}");
    assert_user(&app().post_with_key(&format!("/payment/add_funds/{user}/1"), &funds_key), &user, 7);
    assert_user(&app().post_with_key(&format!("/payment/add_funds/{user}/1"), &funds_key), &user, 7);
    assert_eq!(app().credit_of(&user), 7);
}

// ---- The saga steps, through the checkout saga (their only caller).

/// Checks out a new order of `user` for `quantity` units of a new item of `price`; the status.
fn checkout(user: &str, price: i64, quantity: i64) -> (Reply, String) {
    let item = app().new_item(price, quantity);
    let order = app().new_order(user, &[(&item, quantity)]);
    (app().post(&format!("/orders/checkout/{order}")), order)
}

#[test]
fn a_checkout_charges_the_total_once_even_when_repeated() {
    let user = app().new_user(20);
    let (paid, order) = checkout(&user, 3, 4);
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!(app().credit_of(&user), 8);
    let again = app().post(&format!("/orders/checkout/{order}"));
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(app().credit_of(&user), 8, "a paid order is not charged again");
}

#[test]
fn a_checkout_beyond_the_credit_is_refused_and_charges_nothing() {
    let user = app().new_user(5);
    let (refused, order) = checkout(&user, 3, 2);
    assert_client_error(&refused, 409);
    assert_eq!(app().credit_of(&user), 5);
    assert_eq!(app().order(&order)["paid"], false);
    // The refusal was for credit: with enough credit, a new checkout goes through.
    assert_user(&app().post(&format!("/payment/add_funds/{user}/1")), &user, 6);
    let paid = app().post(&format!("/orders/checkout/{order}"));
    assert_eq!(paid.status, 200, "{paid:?}");
    assert_eq!(app().credit_of(&user), 0);
}

#[test]
fn concurrent_checkouts_of_one_user_never_overdraw() {
    let user = app().new_user(10);
    let orders: Vec<String> = (0..8)
        .map(|_| {
            let item = app().new_item(3, 1);
            app().new_order(&user, &[(&item, 1)])
        })
        .collect();
    let paid = e2e::market::in_parallel(8, &orders, |o| app().post(&format!("/orders/checkout/{o}")))
        .into_iter()
        .map(|r| {
            assert!(r.status == 200 || r.status == 409, "{r:?}");
            r.is_success()
        })
        .filter(|ok| *ok)
        .count();
    assert_eq!(paid, 3, "10 credit buys three orders of 3");
    assert_eq!(app().credit_of(&user), 1);
}
