//! The stock service's endpoints, black-box, over HTTP.

use e2e::market::in_parallel;
use e2e::{App, Reply};
use std::sync::OnceLock;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

/// Creates an item with `price` and `stock` units; returns its id.
fn new_item(price: i64, stock: i64) -> String {
    let created = app().post(&format!("/stock/item/create/{price}"));
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.json()["item_id"].as_str().expect("item_id is a string").to_string();
    if stock > 0 {
        let added = app().post(&format!("/stock/add/{id}/{stock}"));
        assert!(added.is_success(), "{added:?}");
    }
    id
}

fn find(id: &str) -> (i64, i64) {
    let found = app().get(&format!("/stock/find/{id}"));
    assert_eq!(found.status, 200, "{found:?}");
    let v = found.json();
    (v["stock"].as_i64().expect("stock"), v["price"].as_i64().expect("price"))
}

fn assert_client_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    let v = reply.json();
    assert!(v["error"].is_string() && v["message"].is_string(), "error body: {v}");
}

#[test]
fn create_returns_a_uuid_and_the_item_starts_empty_at_its_price() {
    let id = new_item(7, 0);
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(id.matches('-').count(), 4, "a UUID: {id}");
    assert_eq!(find(&id), (0, 7));
}

#[test]
fn find_of_an_unknown_item_is_404_with_a_json_error() {
    assert_client_error(&app().get("/stock/find/no-such-item"), 404);
}

#[test]
fn add_increases_stock_and_find_sees_it_even_when_cached() {
    let id = new_item(3, 0);
    assert_eq!(find(&id), (0, 3)); // now cached
    let added = app().post(&format!("/stock/add/{id}/5"));
    assert_eq!(added.status, 200, "{added:?}");
    assert_eq!(find(&id), (5, 3));
    app().post(&format!("/stock/add/{id}/10"));
    assert_eq!(find(&id), (15, 3));
}

#[test]
fn subtract_decreases_stock_and_refuses_to_go_below_zero() {
    let id = new_item(2, 5);
    assert_eq!(find(&id), (5, 2));
    let ok = app().post(&format!("/stock/subtract/{id}/3"));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(find(&id), (2, 2));
    let refused = app().post(&format!("/stock/subtract/{id}/3"));
    assert_client_error(&refused, 409);
    assert_eq!(find(&id), (2, 2), "a refused subtract changes nothing");
    assert_eq!(app().post(&format!("/stock/subtract/{id}/2")).status, 200);
    assert_eq!(find(&id), (0, 2));
}

#[test]
fn concurrent_subtracts_never_oversell() {
    let id = new_item(1, 50);
    let replies = in_parallel(100, &[(); 100], |_| app().post(&format!("/stock/subtract/{id}/1")));
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 409), "only success or refusal: {replies:?}");
    let successes = replies.iter().filter(|r| r.is_success()).count();
    assert_eq!(successes, 50);
    assert_eq!(find(&id), (0, 1));
}

#[test]
fn batch_init_creates_items_zero_to_n_minus_one_and_retires_cached_values() {
    let first = app().post("/stock/batch_init/100000/10/4");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(find("0"), (10, 4));
    assert_eq!(find("99999"), (10, 4));
    // "5" is cached now; a second batch_init must not leave it stale.
    assert_eq!(find("5"), (10, 4));
    let second = app().post("/stock/batch_init/100000/20/6");
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(find("5"), (20, 6));
    assert_eq!(find("99999"), (20, 6));
}

#[test]
fn bad_amounts_are_400() {
    let id = new_item(1, 1);
    for amount in ["abc", "-1", "1.5", "99999999999999999999"] {
        assert_client_error(&app().post(&format!("/stock/add/{id}/{amount}")), 400);
        assert_client_error(&app().post(&format!("/stock/subtract/{id}/{amount}")), 400);
    }
    assert_client_error(&app().post("/stock/item/create/-5"), 400);
    assert_client_error(&app().post("/stock/item/create/many"), 400);
    assert_client_error(&app().post("/stock/batch_init/ten/1/1"), 400);
    assert_client_error(&app().post("/stock/batch_init/10000000/1/1"), 400);
    assert_eq!(find(&id), (1, 1), "refused requests change nothing");
}

#[test]
fn adding_past_the_largest_stock_is_400_not_a_server_error() {
    let id = new_item(1, 1);
    assert_client_error(&app().post(&format!("/stock/add/{id}/{}", i64::MAX)), 400);
    assert_eq!(find(&id), (1, 1));
}

#[test]
fn unknown_items_are_404_for_add_and_subtract() {
    assert_client_error(&app().post("/stock/add/no-such-item/1"), 404);
    assert_client_error(&app().post("/stock/subtract/no-such-item/1"), 404);
}

#[test]
fn wrong_method_is_405() {
    let id = new_item(1, 1);
    assert_client_error(&app().get(&format!("/stock/subtract/{id}/1")), 405);
    assert_client_error(&app().get("/stock/item/create/1"), 405);
    assert_client_error(&app().post(&format!("/stock/find/{id}")), 405);
    assert_eq!(find(&id), (1, 1));
}

#[test]
fn unknown_routes_are_404() {
    assert_eq!(app().get("/stock/nothing-here").status, 404);
    assert_eq!(app().post("/stock/add/only-one-segment").status, 404);
}

#[test]
fn every_response_carries_its_content_length() {
    let id = new_item(1, 0);
    for reply in [
        app().get(&format!("/stock/find/{id}")),
        app().get("/stock/find/no-such-item"),
        app().post(&format!("/stock/add/{id}/1")),
        app().post(&format!("/stock/subtract/{id}/5")),
        app().post("/stock/item/create/1"),
    ] {
        assert_eq!(reply.content_length, Some(reply.body.len()), "{reply:?}");
    }
}

#[test]
fn a_retry_with_the_same_idempotency_key_does_the_work_once() {
    let id = new_item(1, 0);
    let key = format!("add-{id}");
    let first = app().post_with_key(&format!("/stock/add/{id}/5"), &key);
    assert_eq!(first.status, 200, "{first:?}");
    let retry = app().post_with_key(&format!("/stock/add/{id}/5"), &key);
    assert_eq!((retry.status, retry.body.clone()), (first.status, first.body.clone()));
    assert_eq!(find(&id), (5, 1), "the retry added nothing");
    let other = app().post_with_key(&format!("/stock/add/{id}/6"), &key);
    assert_client_error(&other, 422);
    assert_eq!(find(&id), (5, 1));
    // A refusal is an outcome too: replayed, not re-run, even after stock arrives.
    let refused = app().post_with_key(&format!("/stock/subtract/{id}/9"), &format!("sub-{id}"));
    assert_client_error(&refused, 409);
    app().post(&format!("/stock/add/{id}/10"));
    let replayed = app().post_with_key(&format!("/stock/subtract/{id}/9"), &format!("sub-{id}"));
    assert_eq!(replayed.status, 409);
    assert_eq!(find(&id), (15, 1));
    assert_client_error(&app().post_with_key(&format!("/stock/add/{id}/1"), "bad key with spaces"), 400);
}

#[test]
fn finds_during_concurrent_subtracts_never_show_stock_already_taken() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    const UNITS: i64 = 300;
    let id = new_item(1, UNITS);
    assert_eq!(find(&id), (UNITS, 1)); // in the view now
    // The lowest stock a subtract has answered so far: no find that starts later may show more.
    let answered_low = AtomicI64::new(UNITS);
    let done = AtomicBool::new(false);
    let checked = AtomicI64::new(0);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    let bound = answered_low.load(Ordering::SeqCst);
                    let (stock, _) = find(&id);
                    assert!(stock <= bound, "find showed {stock} after a subtract had answered {bound}");
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let subtracts = in_parallel(6, &[(); UNITS as usize], |_| {
            let reply = app().post(&format!("/stock/subtract/{id}/1"));
            assert_eq!(reply.status, 200, "{reply:?}");
            answered_low.fetch_min(reply.json()["stock"].as_i64().expect("stock"), Ordering::SeqCst);
        });
        assert_eq!(subtracts.len(), UNITS as usize);
        done.store(true, Ordering::SeqCst);
    });
    assert!(checked.load(Ordering::Relaxed) > 0, "the finders ran");
    assert_eq!(find(&id), (0, 1));
}
