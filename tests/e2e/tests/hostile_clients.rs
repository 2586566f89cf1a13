//! What a hostile client tries, black-box: spoofed route parameters, keys left behind in Redis,
//! idempotency records bloated or reused for another body, additions that overflow inside the
//! checkout saga, store errors leaking into answers, and the admin routes (`batch_init`).

use e2e::{App, Reply, redis_cli, sql};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(App::start)
}

/// An id no other test or run uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A number from `base` no other run uses (so that a write with it would show).
fn unique_number(base: i64) -> i64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    base + (nanos % 1_000_000_000) as i64
}

fn assert_error(reply: &Reply, status: u16) -> serde_json::Value {
    assert_eq!(reply.status, status, "{reply:?}");
    let v = reply.json();
    assert!(v["error"].is_string() && v["message"].is_string(), "error body: {v}");
    v
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

// ---- 2. Every key the app writes has a bounded lifetime or count.

/// The Redis keys (database 0) matching `pattern`, each with its TTL in seconds (-1: none).
/// The keys matching `pattern` that have no TTL (one Lua script: a store may hold many keys).
fn keys_without_ttl(pattern: &str) -> Vec<String> {
    let script = "local out = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do \
                  if redis.call('TTL', k) < 0 then table.insert(out, k) end end return out";
    redis_cli(&["EVAL", script, "0", pattern]).into_iter().filter(|k| !k.is_empty()).collect()
}

#[test]
fn finds_and_writes_of_unknown_items_leave_no_key_without_a_ttl() {
    let ids: Vec<String> = (0..10).map(|i| unique(&format!("ghost{i}"))).collect();
    for id in &ids {
        assert_error(&app().get(&format!("/stock/find/{id}")), 404);
        assert_error(&app().post(&format!("/stock/add/{id}/1")), 404);
        assert_error(&app().post(&format!("/stock/subtract/{id}/1")), 404);
        assert_error(&app().get(&format!("/stock/find/{id}")), 404);
    }
    // The writers count themselves out after their answer.
    std::thread::sleep(Duration::from_millis(500));
    let mut forever = Vec::new();
    for id in &ids {
        forever.extend(keys_without_ttl(&format!("stock:view:*:{id}")));
    }
    assert!(forever.is_empty(), "keys without a TTL: {forever:?}");
    // Whatever the view keeps without a TTL is one key of its own, whatever the requests.
    for key in keys_without_ttl("stock:view:*").iter().filter(|k| !k.starts_with("stock:view:stamp:")) {
        let own_kind = ["stock:view:clock", "stock:view:epoch", "stock:view:list-generation"];
        assert!(own_kind.contains(&key.as_str()), "{key} has no TTL");
    }
}

// ---- 3. The idempotency fingerprint: method, path, and a digest of the body.

#[test]
fn an_idempotency_key_reused_with_another_body_is_422() {
    let user = app().new_user(0);
    let key = unique("body");
    let path = format!("/payment/add_funds/{user}/5");
    let first = app().send("POST", &path, &[("Idempotency-Key", &key)], br#"{"note": "first"}"#);
    assert_eq!(first.status, 200, "{first:?}");
    let other = app().send("POST", &path, &[("Idempotency-Key", &key)], br#"{"note": "second"}"#);
    assert_error(&other, 422);
    let again = app().send("POST", &path, &[("Idempotency-Key", &key)], br#"{"note": "first"}"#);
    assert_eq!((again.status, again.header("idempotent-replayed")), (200, Some("true")), "{again:?}");
    assert_eq!(again.body, first.body);
    assert_eq!(app().credit_of(&user), 5, "added once");
}

#[test]
fn a_huge_query_string_is_not_stored_with_the_idempotency_key() {
    let user = app().new_user(0);
    let key = unique("query");
    let padded = format!("/payment/add_funds/{user}/5?pad={}", "x".repeat(60_000));
    let first = app().send("POST", &padded, &[("Idempotency-Key", &key)], b"");
    assert_eq!(first.status, 200, "{first:?}");
    let stored: usize = redis_cli(&["STRLEN", &format!("payment:idem:{key}")])[0].parse().expect("a length");
    assert!(stored > 0 && stored < 1024, "the record under the key takes {stored} bytes");
    for path in [padded.clone(), format!("/payment/add_funds/{user}/5")] {
        let replay = app().send("POST", &path, &[("Idempotency-Key", &key)], b"");
        assert_eq!((replay.status, replay.header("idempotent-replayed")), (200, Some("true")), "{replay:?}");
        assert_eq!(replay.body, first.body);
    }
    assert_eq!(app().credit_of(&user), 5, "added once");
}

// ---- 4. Additions inside the saga's compensations are checked.

#[test]
fn a_release_that_would_overflow_the_stock_is_refused_for_good_and_loses_nothing() {
    let item = app().new_item(1, i64::MAX - 3);
    let user = app().new_user(0);
    let order = app().new_order(&user, &[(&item, 5)]);
    // The checkout's first saga (attempt 0 of generation 0) finds its reservation already made,
    // then the stock is filled to the brim: giving the 5 units back cannot fit.
    let saga = format!("{order}.0.0");
    let reserved = sql(&format!("SELECT stock.reserve('{saga}', ARRAY['{item}'], ARRAY[5]::bigint[])"));
    assert_eq!(reserved, ["reserved"]);
    let filled = app().post(&format!("/stock/add/{item}/8"));
    assert_eq!((filled.status, filled.json()["stock"].as_i64()), (200, Some(i64::MAX)), "{filled:?}");

    let started = Instant::now();
    let checkout = app().post(&format!("/orders/checkout/{order}"));
    assert_error(&checkout, 409);
    assert!(started.elapsed() < Duration::from_secs(15), "refused at once, not retried: {:?}", started.elapsed());
    let saga_record = app().saga_of(&order);
    assert_eq!(saga_record["state"], "failed", "{saga_record}");
    assert_eq!(app().credit_of(&user), 0, "nothing charged");
    // The 5 units stay reserved by the saga, on record: stock + held = what there was.
    assert_eq!(app().stock_of(&item).0, i64::MAX);
    let held = sql(&format!("SELECT state, quantities[1] FROM stock.reservations WHERE saga_id = '{saga}'"));
    assert_eq!(held, ["reserved|5"]);
    // Once the stock has room, releasing the saga again gives them back.
    assert_eq!(app().post(&format!("/stock/subtract/{item}/10")).status, 200);
    assert_eq!(sql(&format!("SELECT stock.release('{saga}')")), ["released"]);
    assert_eq!(app().stock_of(&item).0, i64::MAX - 5);
}

#[test]
fn refunds_and_releases_that_would_overflow_are_refused_and_lose_nothing() {
    // Payment: a charge, then credit filled to the brim; the refund cannot fit.
    let user = app().new_user(100);
    let saga = unique("refund-overflow");
    assert_eq!(sql(&format!("SELECT payment.charge('{saga}', '{user}', 100)")), ["charged"]);
    assert_eq!(app().post(&format!("/payment/add_funds/{user}/{}", i64::MAX)).status, 200);
    assert_eq!(sql(&format!("SELECT payment.refund('{saga}')")), ["credit_overflow"]);
    assert_eq!(app().credit_of(&user), i64::MAX, "nothing changed");
    assert_eq!(sql(&format!("SELECT state FROM payment.charges WHERE saga_id = '{saga}'")), ["charged"]);
    assert_eq!(app().post(&format!("/payment/pay/{user}/100")).status, 200);
    assert_eq!(sql(&format!("SELECT payment.refund('{saga}')")), ["refunded"]);
    assert_eq!(app().credit_of(&user), i64::MAX, "given back once there was room");
    assert_eq!(sql(&format!("SELECT payment.refund('{saga}')")), ["refunded"], "idempotent");
    assert_eq!(app().credit_of(&user), i64::MAX);

    // Stock: two items, only the second overflows; the release is all or nothing.
    let a = app().new_item(1, 10);
    let b = app().new_item(1, 10);
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    let saga = unique("release-overflow");
    let reserve = format!("SELECT stock.reserve('{saga}', ARRAY['{first}', '{second}'], ARRAY[2, 3]::bigint[])");
    assert_eq!(sql(&reserve), ["reserved"]);
    assert_eq!(app().post(&format!("/stock/add/{second}/{}", i64::MAX - 7)).status, 200);
    let refused = sql(&format!("SELECT stock.release('{saga}')"));
    assert_eq!(refused, [format!("refused: stock overflow: {second}")]);
    assert_eq!((app().stock_of(&first).0, app().stock_of(&second).0), (8, i64::MAX));
    assert_eq!(sql(&format!("SELECT state FROM stock.reservations WHERE saga_id = '{saga}'")), ["reserved"]);
}

// ---- 5. Store errors stay in the log; the client gets a request id.

const STORE_WORDS: [&str; 6] = ["postgres", "redis", "connect", "127.0.0.1", "refused", "pool"];

#[test]
fn a_store_that_does_not_answer_is_a_generic_503_with_a_request_id() {
    let broken = App::start_with_env(&[("SPIN_VARIABLE_PG_HOST", "127.0.0.1:1")]);
    let key = unique("broken");
    for (method, path, headers) in [
        ("GET", "/stock/find/anything".to_string(), vec![]),
        ("POST", "/payment/create_user".to_string(), vec![]),
        ("POST", "/stock/add/anything/1".to_string(), vec![("Idempotency-Key", key.as_str())]),
        ("GET", "/orders/find/anything".to_string(), vec![]),
    ] {
        let reply = broken.send(method, &path, &headers, b"");
        let body = assert_error(&reply, 503);
        assert_eq!(body["error"], "unavailable", "{body}");
        assert_eq!(body["message"], "a data store is unavailable; retry later", "{body}");
        let id = body["request_id"].as_str().expect("a request id").to_string();
        assert!(!id.is_empty());
        assert_eq!(reply.header("x-request-id"), Some(id.as_str()), "{reply:?}");
        let text = reply.body.to_lowercase();
        for word in STORE_WORDS {
            assert!(!text.contains(word), "{method} {path}: {word:?} in {}", reply.body);
        }
        // The details are in the log, under the request id.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !broken.log_text().contains(&id) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(broken.log_text().contains(&id), "no log line for request {id}:\n{}", broken.log_text());
    }
}

#[test]
fn every_answer_carries_a_request_id_and_error_bodies_repeat_it() {
    let missing = app().get(&format!("/stock/find/{}", unique("missing")));
    let body = assert_error(&missing, 404);
    assert_eq!(body["request_id"].as_str(), missing.header("x-request-id"), "{missing:?}");
    let created = app().post("/payment/create_user");
    assert_eq!(created.status, 200);
    let first = created.header("x-request-id").expect("x-request-id").to_string();
    let again = app().post("/payment/create_user");
    assert_ne!(again.header("x-request-id"), Some(first.as_str()), "one id per request");
}

// ---- 6. batch_init only where the admin routes are on.

#[test]
fn admin_routes_off_make_every_batch_init_a_404_that_changes_nothing() {
    let off = App::start_with_env(&[("SPIN_VARIABLE_ADMIN_ROUTES", "false")]);
    // Values no other test or run uses, so that a batch that ran would show.
    let (stock, price, money) =
        (unique_number(91_000_000_000), unique_number(54_000_000_000), unique_number(77_000_000_000));
    for path in [
        format!("/stock/batch_init/1/{stock}/{price}"),
        format!("/payment/batch_init/1/{money}"),
        format!("/orders/batch_init/1/1/1/{price}"),
        format!("/payment/batch_init/1/{}", i64::MAX),
    ] {
        let reply = off.post(&path);
        let body = assert_error(&reply, 404);
        assert_eq!(body["error"], "not_found", "{path}: {body}");
    }
    let changed = sql(&format!(
        "SELECT (SELECT count(*) FROM stock.items WHERE stock = {stock} AND price = {price}) \
              + (SELECT count(*) FROM payment.users WHERE credit = {money}) \
              + (SELECT count(*) FROM orders.orders WHERE total_cost = 2 * {price}::bigint)"
    ));
    assert_eq!(changed, ["0"], "a batch_init ran");
    // The rest of the app works as usual.
    assert_eq!(off.post("/payment/create_user").status, 200);
}

#[test]
fn admin_routes_are_on_by_default() {
    for path in ["/stock/batch_init/0/0/0", "/payment/batch_init/0/0", "/orders/batch_init/0/1/1/0"] {
        let reply = app().post(path);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
}

#[test]
fn an_admin_routes_value_other_than_true_or_false_is_a_clear_500() {
    let odd = App::start_with_env(&[("SPIN_VARIABLE_ADMIN_ROUTES", "yes")]);
    let money = unique_number(55_000_000_000);
    let reply = odd.post(&format!("/payment/batch_init/1/{money}"));
    let body = assert_error(&reply, 500);
    assert_eq!(body["error"], "misconfigured", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("admin_routes")), "{body}");
    assert_eq!(sql(&format!("SELECT count(*) FROM payment.users WHERE credit = {money}")), ["0"]);
}

// ---- 7. Redis: a password, and a memory limit that never evicts saga state.

#[test]
fn redis_asks_for_a_password_and_never_evicts() {
    use std::io::{Read, Write};
    let host = std::env::var("SPIN_VARIABLE_REDIS_HOST").unwrap_or_else(|_| "127.0.0.1:16379".into());
    let mut conn = std::net::TcpStream::connect(&host).expect("Redis answers");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
    conn.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    let mut reply = [0u8; 64];
    let n = conn.read(&mut reply).expect("a reply");
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("-NOAUTH"), "Redis answered a client without the password: {reply:?}");
    assert_eq!(e2e::redis_cli(&["CONFIG", "GET", "maxmemory-policy"]), ["maxmemory-policy", "noeviction"]);
    let limit = e2e::redis_cli(&["CONFIG", "GET", "maxmemory"]);
    assert!(limit[1].parse::<u64>().expect("a number") > 0, "no memory limit: {limit:?}");
}

/// A body the route does not read is read all the same before the answer. Answered and dropped
/// unread, the server stops reading and later closes with the client's bytes unread: the client's
/// write fails half-way (a reset), which can cost it the answer, and the connection is lost.
/// Here the whole request is taken and the same connection serves the next one.
#[test]
fn a_body_the_route_does_not_read_is_taken_whole_and_the_connection_stays_open() {
    use std::io::Write;
    let addr = app().base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let body = vec![b'x'; 512 * 1024];
    // A route that takes no body, and a method the route does not serve (refused before any
    // handler runs).
    for (request_line, status) in [("GET /health/live", 200), ("POST /stock/find/no-such-item", 405)] {
        let head = format!("{request_line} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
        conn.write_all(head.as_bytes()).expect("the request head");
        // In pieces with pauses, so the server can answer before the body is all there.
        for piece in body.chunks(64 * 1024) {
            conn.write_all(piece).unwrap_or_else(|e| panic!("{request_line}: the body was refused half-way: {e}"));
            std::thread::sleep(Duration::from_millis(20));
        }
        match e2e::raw_http::read_response(&conn, false, Instant::now() + Duration::from_secs(10)) {
            e2e::raw_http::Outcome::Reply(reply) => assert_eq!(reply.status, status, "{request_line}: {reply:?}"),
            other => panic!("{request_line}: no answer on the connection: {other:?}"),
        }
    }
}
