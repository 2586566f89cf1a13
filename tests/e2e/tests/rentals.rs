//! Renting, black-box: a borrower rents a listed item for some days (`POST /rentals`, a saga:
//! record the rental, reserve one unit, charge the borrower, credit the owner, mark it active),
//! the borrower and the owner read it, the borrower returns it. Refusals (no unit free, not enough
//! credit) change nothing; bad requests are 400, unknown items 404, no token 401; an item with an
//! active rental cannot be taken down; racing borrowers get exactly the units there are. The app
//! runs with tokens required (renting needs one whatever `auth_required` says).

use e2e::accounts::Session;
use e2e::market::in_parallel;
use e2e::{App, Reply, sql};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::OnceLock;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App::start_with_env(&[("SPIN_VARIABLE_AUTH_REQUIRED", "true")]))
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// An item `owner` lists for rent at `daily_price`, with `stock` units; its id.
fn listed(owner: &Session, daily_price: i64, stock: i64) -> String {
    let body = json!({ "title": "Pressure washer", "category": "garden", "daily_price": daily_price, "price": 90, "stock": stock });
    let auth = owner.bearer();
    let reply = app().send("POST", "/stock/items", &[JSON, ("authorization", &auth)], body.to_string().as_bytes());
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.json()["item_id"].as_str().expect("item_id").to_string()
}

/// A registered, logged-in user with `funds` of credit.
fn user_with(prefix: &str, funds: i64) -> Session {
    let session = app().new_session(prefix);
    if funds > 0 {
        let added = app().as_user(&session, "POST", &format!("/payment/add_funds/{}/{funds}", session.user_id));
        assert_eq!((added.status, added.json()["credit"].as_i64()), (200, Some(funds)), "{added:?}");
    }
    session
}

/// `POST /rentals` with this body, and `Authorization: <auth>` if given.
fn rent_with(auth: Option<&str>, body: &[u8]) -> Reply {
    let mut headers = vec![JSON];
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    app().send("POST", "/rentals", &headers, body)
}

/// `borrower` rents `item` for `days`.
fn rent(borrower: &Session, item: &str, days: i64) -> Reply {
    rent_with(Some(&borrower.bearer()), json!({ "item_id": item, "days": days }).to_string().as_bytes())
}

/// `GET /rentals/{id}`, as `who` (no token: `None`).
fn rental(who: Option<&Session>, id: &str) -> Reply {
    let path = format!("/rentals/{id}");
    match who {
        Some(session) => app().as_user(session, "GET", &path),
        None => app().get(&path),
    }
}

/// `POST /rentals/{id}/return`, as `who` (no token: `None`).
fn give_back(who: Option<&Session>, id: &str) -> Reply {
    let path = format!("/rentals/{id}/return");
    match who {
        Some(session) => app().as_user(session, "POST", &path),
        None => app().post(&path),
    }
}

/// The item's stock, as its page shows it.
fn stock(item: &str) -> i64 {
    let page = app().get(&format!("/stock/items/{item}"));
    assert_eq!(page.status, 200, "{page:?}");
    page.json()["stock"].as_i64().expect("stock")
}

/// The user's credit, read with the user's token.
fn credit(user: &Session) -> i64 {
    let found = app().as_user(user, "GET", &format!("/payment/find_user/{}", user.user_id));
    assert_eq!(found.status, 200, "{found:?}");
    found.json()["credit"].as_i64().expect("credit")
}

/// The ids of the rentals `borrower` made, as the order service stored them.
fn rentals_of(borrower: &Session) -> Vec<String> {
    sql(&format!("SELECT rental_id FROM orders.rentals WHERE borrower_id = '{}'", borrower.user_id))
}

/// The one rental `borrower` made.
fn only_rental_of(borrower: &Session) -> String {
    let ids = rentals_of(borrower);
    assert_eq!(ids.len(), 1, "one rental of {}: {ids:?}", borrower.user_id);
    ids[0].clone()
}

/// The state of the stock reservation of a rental's saga (none: "").
fn reservation_state(rental_id: &str) -> String {
    sql(&format!("SELECT state FROM stock.reservations WHERE saga_id = 'rental:{rental_id}'")).concat()
}

/// The fields a rental shows everywhere (the answer of a rent, a read, a return).
fn summary(v: &Value) -> Value {
    let fields = ["rental_id", "item_id", "borrower_id", "owner_id", "days", "daily_price", "amount"];
    fields.iter().map(|f| (f.to_string(), v[*f].clone())).collect::<serde_json::Map<_, _>>().into()
}

/// A rental's history as (step, outcome) pairs; panics unless it is a non-empty array of events
/// that have both as strings.
fn history(v: &Value) -> Vec<(String, String)> {
    let events = v["history"].as_array().unwrap_or_else(|| panic!("no history array: {v}"));
    assert!(!events.is_empty(), "empty history: {v}");
    events
        .iter()
        .map(|e| {
            let step = e["step"].as_str().unwrap_or_else(|| panic!("an event without a step: {v}"));
            let outcome = e["outcome"].as_str().unwrap_or_else(|| panic!("an event without an outcome: {v}"));
            (step.to_string(), outcome.to_string())
        })
        .collect()
}

/// A user with the admin role (set in the accounts store), logged in again to carry it.
fn admin() -> Session {
    let session = app().new_session("admin");
    sql(&format!("UPDATE accounts.users SET admin = true WHERE user_id = '{}'", session.user_id));
    let login = app().login(&session.username, &session.password);
    assert_eq!(login.status, 200, "{login:?}");
    Session { token: login.json()["token"].as_str().expect("token").to_string(), ..session }
}

/// The answer is a JSON error of this kind.
fn assert_error(reply: &Reply, status: u16, error: &str, what: &str) {
    assert_eq!(reply.status, status, "{what}: {reply:?}");
    assert_eq!(reply.json()["error"].as_str(), Some(error), "{what}: {reply:?}");
    assert!(reply.json()["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a message: {reply:?}");
}

#[test]
fn a_rental_moves_one_unit_and_the_money_and_only_the_borrower_returns_it() {
    let owner = app().new_session("lender");
    let borrower = user_with("borrower", 100);
    let stranger = user_with("stranger", 100);
    let item = listed(&owner, 7, 3);
    let owner_before = credit(&owner);

    let rented = rent(&borrower, &item, 3);
    assert_eq!(rented.status, 201, "{rented:?}");
    let v = rented.json();
    let id =
        v["rental_id"].as_str().filter(|id| !id.is_empty()).unwrap_or_else(|| panic!("rental_id: {v}")).to_string();
    let expected = json!({
        "rental_id": id,
        "item_id": item,
        "borrower_id": borrower.user_id,
        "owner_id": owner.user_id,
        "days": 3,
        "daily_price": 7,
        "amount": 21,
    });
    assert_eq!(summary(&v), expected, "{v}");
    assert_eq!(v["state"], "active", "{v}");
    assert!(v["saga_id"].as_str().is_some_and(|s| !s.is_empty()), "saga_id: {v}");

    // One unit and the amount moved, exactly.
    assert_eq!(stock(&item), 2, "one unit reserved");
    assert_eq!(credit(&borrower), 100 - 21, "the borrower charged daily_price × days");
    assert_eq!(credit(&owner), owner_before + 21, "the owner credited the amount");
    assert_eq!(credit(&stranger), 100);
    assert_eq!(
        sql(&format!("SELECT state || '|' || amount FROM orders.rentals WHERE rental_id = '{id}'")),
        ["active|21"]
    );
    assert_eq!(reservation_state(&id), "reserved");

    // The borrower and the owner read it; nobody else does.
    for who in [&borrower, &owner] {
        let read = rental(Some(who), &id);
        assert_eq!(read.status, 200, "as {}: {read:?}", who.username);
        let r = read.json();
        assert_eq!(summary(&r), expected, "{r}");
        assert_eq!((r["state"].as_str(), r["reason"].is_null()), (Some("active"), true), "{r}");
        let events = history(&r);
        assert!(events.contains(&("reserve_stock".to_string(), "done".to_string())), "{events:?}");
        let done: HashSet<&str> = events.iter().filter(|(_, o)| o == "done").map(|(s, _)| s.as_str()).collect();
        assert!(done.len() >= 3, "reserve, charge and credit done: {events:?}");
    }
    assert_eq!(rental(Some(&stranger), &id).status, 403);
    assert_eq!(rental(None, &id).status, 401);
    assert_eq!(rental(Some(&borrower), "no-such-rental").status, 404);

    // Only the borrower returns it.
    assert_eq!(give_back(Some(&owner), &id).status, 403);
    assert_eq!(give_back(Some(&stranger), &id).status, 403);
    assert_eq!(give_back(None, &id).status, 401);
    assert_eq!(give_back(Some(&borrower), "no-such-rental").status, 404);
    assert_eq!(stock(&item), 2, "refused returns free nothing");
    assert_eq!(rental(Some(&borrower), &id).json()["state"], "active");

    for attempt in ["first", "second"] {
        let returned = give_back(Some(&borrower), &id);
        assert_eq!(returned.status, 200, "{attempt} return: {returned:?}");
        let r = returned.json();
        assert_eq!((summary(&r), r["state"].as_str()), (expected.clone(), Some("returned")), "{attempt} return: {r}");
        // The unit is free again (once); the money stays where it went.
        assert_eq!(stock(&item), 3, "after the {attempt} return");
        assert_eq!((credit(&borrower), credit(&owner)), (100 - 21, owner_before + 21), "after the {attempt} return");
        assert_eq!(rental(Some(&owner), &id).json()["state"], "returned");
    }
    assert_eq!(sql(&format!("SELECT state FROM orders.rentals WHERE rental_id = '{id}'")), ["returned"]);
}

#[test]
fn a_borrower_without_enough_credit_is_refused_and_nothing_changes() {
    let owner = app().new_session("lender");
    let borrower = user_with("short", 10);
    let item = listed(&owner, 4, 2);
    let owner_before = credit(&owner);

    // 4 × 3 = 12 > 10.
    let refused = rent(&borrower, &item, 3);
    assert_error(&refused, 409, "conflict", "not enough credit");
    let id = only_rental_of(&borrower);
    let message = refused.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains(&id), "the message names the rental {id}: {message}");

    assert_eq!(stock(&item), 2, "stock conserved");
    assert_eq!((credit(&borrower), credit(&owner)), (10, owner_before), "credits conserved");
    assert_ne!(reservation_state(&id), "reserved", "the unit was given back");

    for who in [&borrower, &owner] {
        let read = rental(Some(who), &id);
        assert_eq!(read.status, 200, "as {}: {read:?}", who.username);
        let r = read.json();
        assert_eq!(r["state"], "failed", "{r}");
        assert!(r["reason"].as_str().is_some_and(|reason| !reason.is_empty()), "a failed rental says why: {r}");
        assert_eq!((r["item_id"].as_str(), r["amount"].as_i64()), (Some(item.as_str()), Some(12)), "{r}");
        history(&r);
    }
    assert_eq!(sql(&format!("SELECT state FROM orders.rentals WHERE rental_id = '{id}'")), ["failed"]);

    // A failed rental cannot be returned; still nothing changes.
    let returned = give_back(Some(&borrower), &id);
    assert_eq!(returned.status, 409, "{returned:?}");
    assert_eq!(stock(&item), 2);
    assert_eq!((credit(&borrower), credit(&owner)), (10, owner_before));
    assert_eq!(rental(Some(&borrower), &id).json()["state"], "failed");
}

#[test]
fn the_last_unit_goes_to_the_first_borrower_and_the_next_is_refused() {
    let owner = app().new_session("lender");
    let first = user_with("first", 50);
    let second = user_with("second", 50);
    let item = listed(&owner, 5, 1);
    let owner_before = credit(&owner);

    let rented = rent(&first, &item, 2);
    assert_eq!((rented.status, rented.json()["amount"].as_i64()), (201, Some(10)), "{rented:?}");
    assert_eq!(stock(&item), 0);

    let refused = rent(&second, &item, 2);
    assert_error(&refused, 409, "conflict", "out of stock");
    let id = only_rental_of(&second);
    assert!(refused.json()["message"].as_str().unwrap_or_default().contains(&id), "names {id}: {refused:?}");
    assert_eq!(rental(Some(&second), &id).json()["state"], "failed");
    assert_ne!(reservation_state(&id), "reserved");

    assert_eq!(stock(&item), 0);
    assert_eq!((credit(&first), credit(&second), credit(&owner)), (40, 50, owner_before + 10), "credits conserved");
}

#[test]
fn bad_rental_requests_are_400_unknown_items_404_no_token_401_and_nothing_changes() {
    let owner = user_with("lender", 100);
    let borrower = user_with("borrower", 100);
    let item = listed(&owner, 3, 2);
    // An item made by the WDM route: no owner, not listed for rent.
    let admin = admin();
    let created = app().as_user(&admin, "POST", "/stock/item/create/5");
    assert_eq!(created.status, 200, "{created:?}");
    let wdm_item = created.json()["item_id"].as_str().expect("item_id").to_string();
    assert_eq!(app().as_user(&admin, "POST", &format!("/stock/add/{wdm_item}/3")).status, 200);

    let auth = borrower.bearer();
    let bodies = [
        json!({ "item_id": item, "days": 0 }).to_string(),
        json!({ "item_id": item, "days": 366 }).to_string(),
        json!({ "item_id": item, "days": -1 }).to_string(),
        json!({ "item_id": item, "days": "x" }).to_string(),
        json!({ "item_id": item, "days": 1.5 }).to_string(),
        json!({ "item_id": item, "days": null }).to_string(),
        json!({ "item_id": item }).to_string(),
        json!({ "days": 1 }).to_string(),
        format!(r#"{{"item_id": "{item}", "days": "#),
        "not json".to_string(),
        String::new(),
    ];
    for body in &bodies {
        assert_error(&rent_with(Some(&auth), body.as_bytes()), 400, "bad_request", body);
    }
    assert_error(&rent(&owner, &item, 1), 400, "bad_request", "the owner's own item");
    assert_error(&rent(&borrower, &wdm_item, 1), 400, "bad_request", "an item not listed for rent");
    let unknown = rent(&borrower, "no-such-item", 1);
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let valid = json!({ "item_id": item, "days": 1 }).to_string();
    assert_eq!(rent_with(None, valid.as_bytes()).status, 401, "no token");
    assert_eq!(rent_with(Some("Bearer not-a-token"), valid.as_bytes()).status, 401, "a bogus token");

    // Nothing changed for anyone.
    assert_eq!((stock(&item), stock(&wdm_item)), (2, 3));
    assert_eq!((credit(&borrower), credit(&owner)), (100, 100));
    for who in [&borrower, &owner] {
        let held = sql(&format!(
            "SELECT count(*) FROM orders.rentals WHERE borrower_id = '{}' AND state IN ('pending', 'active')",
            who.user_id
        ));
        assert_eq!(held, ["0"], "no rental of {} holds anything", who.username);
    }

    // The bounds themselves are fine: 365 days (and 1, elsewhere).
    let year = listed(&owner, 1, 1);
    let added = app().as_user(&borrower, "POST", &format!("/payment/add_funds/{}/400", borrower.user_id));
    assert_eq!(added.status, 200, "{added:?}");
    let rented = rent(&borrower, &year, 365);
    assert_eq!((rented.status, rented.json()["amount"].as_i64()), (201, Some(365)), "{rented:?}");
    assert_eq!(credit(&borrower), 500 - 365);
}

#[test]
fn an_item_with_an_active_rental_cannot_be_taken_down_until_it_is_returned() {
    let owner = app().new_session("lender");
    let borrower = user_with("borrower", 20);
    let item = listed(&owner, 2, 2);
    let rented = rent(&borrower, &item, 1);
    assert_eq!(rented.status, 201, "{rented:?}");
    let id = rented.json()["rental_id"].as_str().expect("rental_id").to_string();

    let delete = || app().send("DELETE", &format!("/stock/items/{item}"), &[("authorization", &owner.bearer())], b"");
    let refused = delete();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(stock(&item), 1, "the item is still there");
    assert_eq!(rental(Some(&owner), &id).json()["state"], "active");

    assert_eq!(give_back(Some(&borrower), &id).status, 200);
    let deleted = delete();
    assert!(deleted.is_success(), "{deleted:?}");
    assert_eq!(app().get(&format!("/stock/items/{item}")).status, 404);
}

#[test]
fn sixteen_borrowers_racing_for_five_units_get_exactly_five_rentals() {
    let owner = app().new_session("lender");
    let item = listed(&owner, 2, 5);
    let borrowers: Vec<Session> = in_parallel(16, &[(); 16], |_| user_with("racer", 100));
    let owner_before = credit(&owner);

    let replies = in_parallel(16, &borrowers, |b| rent(b, &item, 3));
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 11, "{statuses:?}");

    assert_eq!(stock(&item), 0);
    let credits: Vec<i64> = in_parallel(16, &borrowers, credit);
    for ((b, reply), c) in borrowers.iter().zip(&replies).zip(&credits) {
        let id = only_rental_of(b);
        if reply.status == 201 {
            assert_eq!((reply.json()["rental_id"].as_str(), *c), (Some(id.as_str()), 94), "{reply:?}");
        } else {
            assert_eq!(*c, 100, "refused {}: {reply:?}", b.username);
            assert!(reply.json()["message"].as_str().unwrap_or_default().contains(&id), "names {id}: {reply:?}");
        }
    }
    let lost: i64 = credits.iter().map(|c| 100 - c).sum();
    assert_eq!(lost, 5 * 6, "the borrowers paid for five rentals");
    assert_eq!(credit(&owner) - owner_before, lost, "the owner got what they paid");
    let states = sql(&format!(
        "SELECT state || '|' || count(*) FROM orders.rentals WHERE item_id = '{item}' GROUP BY state ORDER BY state"
    ));
    assert_eq!(states, ["active|5", "failed|11"]);
}
