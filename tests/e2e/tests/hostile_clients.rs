//! What a hostile client tries, black-box: spoofed route parameters, keys left behind in Redis,
//! idempotency records bloated or reused for another body, additions that overflow inside the
//! checkout saga, store errors leaking into answers, and the admin routes (`batch_init`).

use e2e::App;
use std::sync::OnceLock;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

// ---- 1. Route parameters come from the path only.

#[test]
fn route_parameters_come_from_the_path_never_from_request_headers() {
    let victim = app().new_user(1000);
    let payer = app().new_user(10);
    let spoofed = app().send(
        "POST",
        &format!("/payment/pay/{payer}/1"),
        &[
            ("spin-path-match-user_id", victim.as_str()),
            ("spin-path-match-user-id", victim.as_str()),
            ("spin-path-match-amount", "500"),
        ],
        b"",
    );
    assert_eq!(spoofed.status, 200, "{spoofed:?}");
    assert_eq!(spoofed.json()["user_id"], payer.as_str(), "{spoofed:?}");
    assert_eq!(app().credit_of(&payer), 9, "the path's user paid the path's amount");
    assert_eq!(app().credit_of(&victim), 1000, "the user named in a header paid nothing");

    let item = app().new_item(7, 3);
    let other = app().new_item(9, 0);
    let found = app().send("GET", &format!("/stock/find/{item}"), &[("spin-path-match-item_id", other.as_str())], b"");
    assert_eq!((found.status, found.json()["price"].as_i64()), (200, Some(7)), "{found:?}");
}
