//! Who may do what, black-box, with tokens required (`auth_required` on): payment and order
//! routes act only for the token's own user (403 for another, 401 without a token), the admin
//! routes need the admin role, and a checkout with tokens works end to end (the token forwarded
//! on the chained calls).

use e2e::accounts::Session;
use e2e::{App, sql};
use std::sync::OnceLock;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App::start_with_env(&[("SPIN_VARIABLE_AUTH_REQUIRED", "true")]))
}

/// An item with stock, made the way an operator would (the WDM route, as admin).
fn item(admin: &Session, price: i64, stock: i64) -> String {
    let created = app().as_user(admin, "POST", &format!("/stock/item/create/{price}"));
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.json()["item_id"].as_str().expect("item_id").to_string();
    assert_eq!(app().as_user(admin, "POST", &format!("/stock/add/{id}/{stock}")).status, 200);
    id
}

fn admin() -> Session {
    let session = app().new_session("admin");
    sql(&format!("UPDATE accounts.users SET admin = true WHERE user_id = '{}'", session.user_id));
    let token = app().login(&session.username, &session.password).json()["token"].as_str().expect("token").to_string();
    Session { token, ..session }
}

#[test]
fn a_user_acts_for_itself_and_a_checkout_goes_through() {
    let alice = app().new_session("alice");
    let admin = admin();
    let item = item(&admin, 5, 10);
    let funded = app().as_user(&alice, "POST", &format!("/payment/add_funds/{}/100", alice.user_id));
    assert_eq!((funded.status, funded.json()["credit"].as_i64()), (200, Some(100)), "{funded:?}");
    let order = app().as_user(&alice, "POST", &format!("/orders/create/{}", alice.user_id));
    assert_eq!(order.status, 200, "{order:?}");
    let order = order.json()["order_id"].as_str().expect("order_id").to_string();
    assert_eq!(app().as_user(&alice, "POST", &format!("/orders/addItem/{order}/{item}/3")).status, 200);
    let paid = app().as_user(&alice, "POST", &format!("/orders/checkout/{order}"));
    assert_eq!(paid.status, 200, "{paid:?}");
    let found = app().as_user(&alice, "GET", &format!("/orders/find/{order}"));
    assert_eq!((found.status, found.json()["paid"].as_bool()), (200, Some(true)), "{found:?}");
    assert_eq!(app().as_user(&alice, "GET", &format!("/orders/checkout/{order}/status")).status, 200);
    let credit = app().as_user(&alice, "GET", &format!("/payment/find_user/{}", alice.user_id));
    assert_eq!(credit.json()["credit"].as_i64(), Some(85), "{credit:?}");
    assert_eq!(app().as_user(&alice, "POST", &format!("/payment/pay/{}/5", alice.user_id)).json()["credit"], 80);
}

#[test]
fn acting_for_another_user_is_403_and_without_a_token_401_on_every_protected_route() {
    let alice = app().new_session("alice");
    let bob = app().new_session("bob");
    let admin = admin();
    let item = item(&admin, 1, 5);
    let bobs_order = app().as_user(&bob, "POST", &format!("/orders/create/{}", bob.user_id)).json()["order_id"]
        .as_str()
        .expect("order")
        .to_string();
    assert_eq!(app().as_user(&bob, "POST", &format!("/payment/add_funds/{}/10", bob.user_id)).status, 200);
    let b = &bob.user_id;
    let routes = [
        ("POST", format!("/payment/pay/{b}/1")),
        ("POST", format!("/payment/add_funds/{b}/1")),
        ("GET", format!("/payment/find_user/{b}")),
        ("POST", format!("/orders/create/{b}")),
        ("GET", format!("/orders/find/{bobs_order}")),
        ("POST", format!("/orders/addItem/{bobs_order}/{item}/1")),
        ("POST", format!("/orders/checkout/{bobs_order}")),
        ("GET", format!("/orders/checkout/{bobs_order}/status")),
    ];
    for (method, path) in &routes {
        let as_alice = app().as_user(&alice, method, path);
        assert_eq!(
            (as_alice.status, as_alice.json()["error"].as_str()),
            (403, Some("forbidden")),
            "{path}: {as_alice:?}"
        );
        let anonymous = app().request(method, path);
        assert_eq!(anonymous.status, 401, "{path}: {anonymous:?}");
    }
    // Nothing changed for Bob.
    let bobs = app().as_user(&bob, "GET", &format!("/payment/find_user/{b}"));
    assert_eq!(bobs.json()["credit"].as_i64(), Some(10), "{bobs:?}");
    let order = app().as_user(&bob, "GET", &format!("/orders/find/{bobs_order}")).json();
    assert_eq!((order["paid"].as_bool(), order["items"].as_array().map(Vec::len)), (Some(false), Some(0)), "{order}");
}

#[test]
fn admin_routes_need_the_admin_role() {
    let user = app().new_session("plain");
    let admin = admin();
    for path in ["/payment/batch_init/1/1", "/stock/batch_init/1/1/1", "/orders/batch_init/1/1/1/1"] {
        assert_eq!(app().as_user(&user, "POST", path).status, 403, "{path}");
        assert_eq!(app().request("POST", path).status, 401, "{path}");
    }
    assert_eq!(app().as_user(&user, "POST", "/payment/create_user").status, 403);
    let created = app().as_user(&admin, "POST", "/payment/create_user");
    assert_eq!(created.status, 200, "{created:?}");
}
