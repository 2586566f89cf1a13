//! The sharing-economy inventory, black-box: owners list items, change and take down their own
//! only; anyone reads the list (filters, full-text search, cursor pages) and an item's page,
//! which is served through Redis and never stale after a write. The app runs with tokens
//! required.

use e2e::accounts::{Session, unique_username};
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

fn list_item(owner: &Session, body: Value) -> Reply {
    let auth = owner.bearer();
    app().send("POST", "/stock/items", &[JSON, ("authorization", &auth)], body.to_string().as_bytes())
}

fn new_item(owner: &Session, title: &str, category: &str) -> String {
    let reply =
        list_item(owner, json!({ "title": title, "category": category, "daily_price": 3, "price": 40, "stock": 2 }));
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.json()["item_id"].as_str().expect("item_id").to_string()
}

fn patch(session: Option<&Session>, item: &str, body: Value) -> Reply {
    let auth = session.map(Session::bearer).unwrap_or_default();
    let mut headers = vec![JSON];
    if session.is_some() {
        headers.push(("authorization", &auth));
    }
    app().send("PATCH", &format!("/stock/items/{item}"), &headers, body.to_string().as_bytes())
}

fn page(item: &str) -> Reply {
    app().get(&format!("/stock/items/{item}"))
}

/// Every item of the list at `query`, following its cursors with `limit` per page.
fn all_pages(query: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/stock/items?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let reply = app().get(&path);
        assert_eq!(reply.status, 200, "{reply:?}");
        let v = reply.json();
        let got = v["items"].as_array().expect("items").clone();
        assert!(got.len() <= limit);
        items.extend(got);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["item_id"].as_str().expect("id").to_string()).collect()
}

#[test]
fn an_owner_lists_items_and_anyone_reads_them_filtered_searched_and_paged() {
    let owner = app().new_session("lender");
    let category = unique_username("cat").replace('_', "-");
    let titles = ["Cordless drill", "Camping tent", "Drill bits set", "Ladder", "Power drills pack"];
    let made: Vec<String> = titles.iter().map(|t| new_item(&owner, t, &category)).collect();

    let first = page(&made[0]);
    assert_eq!(first.status, 200, "{first:?}");
    let v = first.json();
    assert_eq!(
        (
            v["owner_id"].as_str(),
            v["title"].as_str(),
            v["category"].as_str(),
            v["daily_price"].as_i64(),
            v["stock"].as_i64()
        ),
        (Some(owner.user_id.as_str()), Some("Cordless drill"), Some(category.as_str()), Some(3), Some(2))
    );
    assert!(v["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");

    // By owner, newest first, in pages of 2.
    let mine = all_pages(&format!("owner={}", owner.user_id), 2);
    assert_eq!(ids(&mine), made.iter().rev().cloned().collect::<Vec<_>>());
    // By category, the same.
    assert_eq!(ids(&all_pages(&format!("category={category}"), 3)).len(), titles.len());
    // Full-text search (English stemming: "drill" finds "drills"), within the category.
    let found: HashSet<String> = ids(&all_pages(&format!("category={category}&q=drill"), 10)).into_iter().collect();
    assert_eq!(found, HashSet::from([made[0].clone(), made[2].clone(), made[4].clone()]));
    let tent = ids(&all_pages(&format!("category={category}&q=camping+tent"), 10));
    assert_eq!(tent, vec![made[1].clone()]);
    assert!(all_pages(&format!("owner={}&q=submarine", owner.user_id), 10).is_empty());

    for bad in ["limit=0", "limit=1000", "cursor=bogus", "category=Not%20A%20Tag", "colour=red"] {
        let reply = app().get(&format!("/stock/items?{bad}"));
        assert_eq!((reply.status, reply.json()["error"].as_str()), (400, Some("bad_request")), "{bad}: {reply:?}");
    }
    assert_eq!(page("no-such-item").status, 404);
}

#[test]
fn pages_do_not_shift_when_items_are_listed_meanwhile() {
    let owner = app().new_session("busy");
    let before: Vec<String> = (0..6).map(|i| new_item(&owner, &format!("Thing {i}"), "things")).collect();
    let query = format!("owner={}&limit=2", owner.user_id);
    let first = app().get(&format!("/stock/items?{query}")).json();
    let mut seen = ids(first["items"].as_array().expect("items"));
    let mut cursor = first["next_cursor"].as_str().map(str::to_string);
    let mut added = Vec::new();
    while let Some(c) = cursor {
        added.push(new_item(&owner, "Listed meanwhile", "things"));
        let next = app().get(&format!("/stock/items?{query}&cursor={c}")).json();
        seen.extend(ids(next["items"].as_array().expect("items")));
        cursor = next["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, before.iter().rev().cloned().collect::<Vec<_>>(), "each item once, none skipped");
    assert!(added.iter().all(|a| !seen.contains(a)), "items listed meanwhile come before the cursor");
}

#[test]
fn only_the_owner_changes_or_takes_down_an_item() {
    let owner = app().new_session("owner");
    let other = app().new_session("other");
    let item = new_item(&owner, "Kayak", "water");
    let as_other = patch(Some(&other), &item, json!({ "title": "Mine now" }));
    assert_eq!((as_other.status, as_other.json()["error"].as_str()), (403, Some("forbidden")), "{as_other:?}");
    assert_eq!(patch(None, &item, json!({ "title": "Anyone's" })).status, 401);
    let delete_other =
        app().send("DELETE", &format!("/stock/items/{item}"), &[("authorization", &other.bearer())], b"");
    assert_eq!(delete_other.status, 403, "{delete_other:?}");
    // The WDM stock writes too: only the owner changes the stock of an item it owns.
    assert_eq!(app().as_user(&other, "POST", &format!("/stock/add/{item}/5")).status, 403);
    assert_eq!(app().as_user(&other, "POST", &format!("/stock/subtract/{item}/1")).status, 403);
    assert_eq!(app().request("POST", &format!("/stock/add/{item}/5")).status, 401);
    assert_eq!(app().as_user(&owner, "POST", &format!("/stock/add/{item}/5")).json()["stock"], 7);
    assert_eq!(page(&item).json()["title"], "Kayak", "nothing changed");

    for bad in [json!({}), json!({ "stock": 3 }), json!({ "price": -1 }), json!({ "title": "" })] {
        assert_eq!(patch(Some(&owner), &item, bad.clone()).status, 400, "{bad}");
    }
    let changed = patch(Some(&owner), &item, json!({ "title": "Sea kayak", "daily_price": 9 }));
    assert_eq!((changed.status, changed.json()["title"].as_str()), (200, Some("Sea kayak")), "{changed:?}");
    assert_eq!(page(&item).json()["daily_price"], 9);
    let deleted = app().send("DELETE", &format!("/stock/items/{item}"), &[("authorization", &owner.bearer())], b"");
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(page(&item).status, 404);
    assert_eq!(app().get(&format!("/stock/find/{item}")).status, 404);
    // Listing needs a token, whatever else.
    assert_eq!(app().send("POST", "/stock/items", &[JSON], br#"{"title": "x", "daily_price": 1}"#).status, 401);
    assert_eq!(list_item(&owner, json!({ "daily_price": 1 })).status, 400);
}

#[test]
fn an_items_page_is_never_stale_after_a_patch_even_with_concurrent_writers_and_readers() {
    let owner = app().new_session("writer");
    let item = new_item(&owner, "Version 0", "tests");
    // One writer at a time: each answer is followed by a page that shows it (the page having
    // been read, and so cached, just before).
    for n in 1..=15 {
        assert_eq!(page(&item).status, 200);
        let title = format!("Version {n}");
        assert_eq!(patch(Some(&owner), &item, json!({ "title": title })).status, 200);
        assert_eq!(page(&item).json()["title"], title.as_str(), "read after write");
    }
    // Writers and readers at once; afterwards the page is what Postgres has.
    let jobs: Vec<usize> = (0..64).collect();
    in_parallel(8, &jobs, |job| {
        if job % 2 == 0 {
            assert_eq!(
                patch(Some(&owner), &item, json!({ "title": format!("Concurrent {job}"), "price": *job as i64 }))
                    .status,
                200
            );
        } else {
            assert_eq!(page(&item).status, 200);
        }
    });
    let truth = sql(&format!("SELECT title || '|' || price FROM stock.items WHERE item_id = '{item}'"));
    for _ in 0..5 {
        let v = page(&item).json();
        assert_eq!(vec![format!("{}|{}", v["title"].as_str().unwrap_or(""), v["price"])], truth, "{v}");
    }
    // Stock changes reach the page too (through the same view).
    assert_eq!(app().as_user(&owner, "POST", &format!("/stock/add/{item}/4")).status, 200);
    assert_eq!(page(&item).json()["stock"], 6);
}

#[test]
fn a_list_page_is_never_stale_after_a_listing_change() {
    let owner = app().new_session("relist");
    let item = new_item(&owner, "Old title", "relist");
    let mine = format!("/stock/items?owner={}", owner.user_id);
    let titles = || -> Vec<String> {
        let reply = app().get(&mine);
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["title"].as_str().unwrap_or("").to_string())
            .collect()
    };
    for n in 0..10 {
        // Read twice: the second is served from the view.
        assert_eq!(titles(), titles());
        let title = format!("Title {n}");
        assert_eq!(patch(Some(&owner), &item, json!({ "title": title })).status, 200);
        assert_eq!(titles()[0], title, "the list after a change shows it");
    }
    let second = new_item(&owner, "Listed later", "relist");
    assert_eq!(ids(&app().get(&mine).json()["items"].as_array().expect("items").clone())[0], second);
    let deleted = app().send("DELETE", &format!("/stock/items/{second}"), &[("authorization", &owner.bearer())], b"");
    assert_eq!(deleted.status, 200);
    assert_eq!(ids(&app().get(&mine).json()["items"].as_array().expect("items").clone()), vec![item]);
    // The list shows listings, not stock: its entries have none.
    assert!(app().get(&mine).json()["items"][0].get("stock").is_none());
}

#[test]
fn an_item_with_an_active_rental_is_not_taken_down() {
    let owner = app().new_session("lender");
    let rented = new_item(&owner, "Tent", "camping");
    let checked_out = new_item(&owner, "Stove", "camping");
    let delete =
        |item: &str| app().send("DELETE", &format!("/stock/items/{item}"), &[("authorization", &owner.bearer())], b"");
    // A rental's open reservation holds `rented` (second of its items); a checkout's holds
    // `checked_out`, which is no rental: it does not keep the item from being taken down.
    let rental = format!("rental:{rented}");
    sql(&format!(
        "INSERT INTO stock.reservations (saga_id, items, quantities, state) VALUES \
         ('{rental}', ARRAY['{checked_out}', '{rented}'], ARRAY[1, 1]::bigint[], 'reserved'), \
         ('checkout-{checked_out}', ARRAY['{checked_out}'], ARRAY[1]::bigint[], 'reserved')"
    ));
    let refused = delete(&rented);
    assert_eq!((refused.status, refused.json()["error"].as_str()), (409, Some("conflict")), "{refused:?}");
    assert!(refused.json()["message"].as_str().unwrap_or("").contains("the item has an active rental"), "{refused:?}");
    assert_eq!(page(&rented).json()["title"], "Tent", "nothing changed");
    assert_eq!(sql(&format!("SELECT count(*) FROM stock.items WHERE item_id = '{rented}'")), ["1"]);
    // The owner check comes first: another user gets 403, not the rental's 409.
    let other = app().new_session("not_lender");
    let as_other = app().send("DELETE", &format!("/stock/items/{rented}"), &[("authorization", &other.bearer())], b"");
    assert_eq!(as_other.status, 403, "{as_other:?}");

    // Once the rental's reservation is released, the item goes; but the rental held
    // `checked_out` too, so that one waited for the release as well.
    assert_eq!(delete(&checked_out).status, 409, "the rental holds it as well");
    sql(&format!("UPDATE stock.reservations SET state = 'released' WHERE saga_id = '{rental}'"));
    for item in [&rented, &checked_out] {
        let deleted = delete(item);
        assert_eq!(deleted.status, 200, "{deleted:?}");
        assert_eq!(page(item).status, 404);
    }
    assert_eq!(delete(&rented).status, 404, "gone");
}
