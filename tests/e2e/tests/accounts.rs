//! The accounts service, black-box: register, log in, who am I, validate, log out; what a token
//! must be to count; login limits; and how passwords are stored. The app runs with tokens
//! required and a short failed-login window.

use auth_token::{Claims, ISSUER, Issuer, key_text};
use e2e::accounts::{credentials, unique_username};
use e2e::{App, Reply, sql};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const FAILURES_PER_USER: u32 = 3;
const WINDOW_SECONDS: u64 = 3;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        App::start_with_env(&[
            ("SPIN_VARIABLE_AUTH_REQUIRED", "true"),
            ("SPIN_VARIABLE_LOGIN_MAX_FAILURES_PER_USER", &FAILURES_PER_USER.to_string()),
            ("SPIN_VARIABLE_LOGIN_MAX_FAILURES_PER_ADDRESS", "100000"),
            ("SPIN_VARIABLE_LOGIN_FAILURE_WINDOW_SECONDS", &WINDOW_SECONDS.to_string()),
        ])
    })
}

/// The app's signing key: spin.toml's default (what the app under test signs with).
fn app_issuer() -> Issuer {
    let manifest: toml::Table =
        std::fs::read_to_string(e2e::repo_root().join("spin.toml")).expect("spin.toml").parse().expect("toml");
    let seed = manifest["variables"]["auth_signing_key"]["default"].as_str().expect("auth_signing_key default");
    Issuer::from_seed_text(seed).expect("seed")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

fn claims_for(user_id: &str, iat: u64, exp: u64) -> Claims {
    Claims { sub: user_id.into(), jti: format!("test-{iat}-{exp}"), iat, exp, iss: ISSUER.into(), admin: false }
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.json()["error"], code, "{reply:?}");
}

fn me(token: &str) -> Reply {
    app().with_token("GET", "/accounts/me", &format!("Bearer {token}"))
}

#[test]
fn register_login_me_validate_and_logout() {
    let username = unique_username("Life");
    let password = "a long enough password";
    let registered = app().register(&username, password);
    assert_eq!(registered.status, 201, "{registered:?}");
    let user_id = registered.json()["user_id"].as_str().expect("user_id").to_string();

    // Usernames are case-folded: the same name in another case is taken.
    let login = app().login(&username.to_uppercase(), password);
    assert_eq!(login.status, 200, "{login:?}");
    let v = login.json();
    let token = v["token"].as_str().expect("token").to_string();
    assert_eq!(v["user_id"], user_id.as_str());
    let expires_at = v["expires_at"].as_u64().expect("expires_at");
    assert!((now() + 3500..=now() + 3700).contains(&expires_at), "an hour: {expires_at}");

    let who = me(&token);
    assert_eq!(who.status, 200, "{who:?}");
    // The login listed it as issued; a token the list lost (a Redis that lost its data) still
    // counts by its signature.
    let issued = auth_token::issued_key(&token);
    assert_eq!(e2e::redis_cli(&["EXISTS", &issued]), ["1"]);
    e2e::redis_cli(&["DEL", &issued]);
    assert_eq!(me(&token).status, 200, "verified by its signature");
    assert_eq!(
        (who.json()["user_id"].as_str(), who.json()["username"].as_str(), who.json()["admin"].as_bool()),
        (Some(user_id.as_str()), Some(username.to_lowercase().as_str()), Some(false))
    );

    // The registration opened the user's payment account, under the same id.
    let account = app().with_token("GET", &format!("/payment/find_user/{user_id}"), &format!("Bearer {token}"));
    assert_eq!((account.status, account.json()["credit"].as_i64()), (200, Some(0)), "{account:?}");

    let body = serde_json::json!({ "token": token }).to_string();
    let validated = app().send("POST", "/accounts/validate", &[], body.as_bytes());
    assert_eq!(validated.status, 200, "{validated:?}");
    assert_eq!(
        (validated.json()["sub"].as_str(), validated.json()["iss"].as_str()),
        (Some(user_id.as_str()), Some(ISSUER))
    );

    let out = app().with_token("POST", "/accounts/logout", &format!("Bearer {token}"));
    assert_eq!(out.status, 200, "{out:?}");
    // Revoked: every component that checks tokens refuses it.
    assert_error(&me(&token), 401, "unauthorized");
    assert_error(&app().send("POST", "/accounts/validate", &[], body.as_bytes()), 401, "unauthorized");
    let after = app().with_token("GET", &format!("/payment/find_user/{user_id}"), &format!("Bearer {token}"));
    assert_error(&after, 401, "unauthorized");
    assert_error(&app().with_token("POST", "/accounts/logout", &format!("Bearer {token}")), 401, "unauthorized");
    // A new login gives a new token that counts.
    let again = app().login(&username, password).json()["token"].as_str().expect("token").to_string();
    assert_eq!(me(&again).status, 200);
}

#[test]
fn a_taken_username_is_409_and_bad_registrations_400() {
    let username = unique_username("dup");
    assert_eq!(app().register(&username, "first password!").status, 201);
    let again = app().register(&username.to_uppercase(), "another password");
    assert_error(&again, 409, "conflict");
    for (name, password, mentions) in [
        ("ab", "long enough password", "username"),
        ("has-dash", "long enough password", "username"),
        (&"x".repeat(33)[..], "long enough password", "username"),
        ("fine_name", "too short", "password"),
        ("fine_name", &"p".repeat(129)[..], "password"),
    ] {
        let reply = app().register(name, password);
        assert_error(&reply, 400, "bad_request");
        assert!(reply.json()["message"].as_str().unwrap_or("").contains(mentions), "{reply:?}");
    }
    for body in [&b"not json"[..], b"{}", br#"{"username":"abc"}"#, b""] {
        assert_error(&app().send("POST", "/accounts/register", &[], body), 400, "bad_request");
        assert_error(&app().send("POST", "/accounts/login", &[], body), 400, "bad_request");
    }
}

#[test]
fn the_stored_password_is_an_argon2id_hash_not_the_password() {
    let username = unique_username("stored");
    let password = "plain text never stored";
    assert_eq!(app().register(&username, password).status, 201);
    let stored = sql(&format!("SELECT password_hash FROM accounts.users WHERE username = '{username}'"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored:?}");
    assert!(!stored[0].contains(password) && !stored[0].contains("plain"), "{stored:?}");
}

#[test]
fn a_registration_cut_off_before_its_payment_account_is_finished_by_sending_it_again() {
    let username = unique_username("retry");
    let password = "retried registration";
    let user_id = app().register(&username, password).json()["user_id"].as_str().expect("id").to_string();
    // As if the first request had failed after storing the user, before opening the account.
    sql(&format!("UPDATE accounts.users SET payment_open = false WHERE user_id = '{user_id}'"));
    sql(&format!("DELETE FROM payment.users WHERE user_id = '{user_id}'"));
    assert_error(&app().register(&username, "not the same password"), 409, "conflict");
    let again = app().register(&username, password);
    assert_eq!((again.status, again.json()["user_id"].as_str()), (201, Some(user_id.as_str())), "{again:?}");
    assert_eq!(sql(&format!("SELECT count(*) FROM payment.users WHERE user_id = '{user_id}'")), ["1"]);
    assert_eq!(sql(&format!("SELECT count(*) FROM accounts.users WHERE username = '{username}'")), ["1"]);
    // Finished: now it is taken, whatever the password.
    assert_error(&app().register(&username, password), 409, "conflict");
}

#[test]
fn tokens_that_do_not_count_are_401_everywhere() {
    let session = app().new_session("tok");
    let issuer = app_issuer();
    let t = now();
    let expired = issuer.issue(&claims_for(&session.user_id, t - 7200, t - 3600)).expect("token");
    let other_key =
        Issuer::from_seed(&[9; 32]).expect("issuer").issue(&claims_for(&session.user_id, t, t + 600)).expect("token");
    let parts: Vec<&str> = session.token.split('.').collect();
    let forged_payload = key_text(
        serde_json::json!({"sub": "someone-else", "jti": "x", "iat": t, "exp": t + 600, "iss": ISSUER, "admin": true})
            .to_string()
            .as_bytes(),
    );
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    let none = format!("{}.{}.", key_text(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let good = issuer.issue(&claims_for(&session.user_id, t, t + 600)).expect("token");
    assert_eq!(me(&good).status, 200, "a token signed with the app's key counts");
    let find = format!("/payment/find_user/{}", session.user_id);
    for (what, authorization) in [
        ("expired", format!("Bearer {expired}")),
        ("another key", format!("Bearer {other_key}")),
        ("tampered", format!("Bearer {tampered}")),
        ("alg none", format!("Bearer {none}")),
        ("garbage", "Bearer not.a.token".to_string()),
        ("another scheme", format!("Basic {}", session.token)),
    ] {
        for (method, path) in [("GET", "/accounts/me"), ("GET", find.as_str()), ("POST", "/accounts/logout")] {
            let reply = app().with_token(method, path, &authorization);
            assert_eq!(reply.status, 401, "{what} on {path}: {reply:?}");
            assert_eq!(reply.json()["error"], "unauthorized", "{what}");
        }
        let Some(token) = authorization.strip_prefix("Bearer ") else { continue };
        let body = serde_json::json!({ "token": token }).to_string();
        assert_eq!(app().send("POST", "/accounts/validate", &[], body.as_bytes()).status, 401, "{what}");
    }
    // No token at all.
    assert_error(&app().get("/accounts/me"), 401, "unauthorized");
    assert_error(&app().get(&find), 401, "unauthorized");
}

/// The time `login` took, and its answer without its request id.
fn timed(login: impl FnOnce() -> Reply) -> (f64, (u16, serde_json::Value)) {
    let started = Instant::now();
    let reply = login();
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let mut body = reply.json();
    body.as_object_mut().map(|o| o.remove("request_id"));
    (took, (reply.status, body))
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[test]
fn a_wrong_password_and_an_unknown_user_are_indistinguishable() {
    // Users enough that no username reaches its failure limit.
    let users: Vec<String> = (0..6)
        .map(|_| {
            let name = unique_username("victim");
            assert_eq!(app().register(&name, "the right password").status, 201);
            name
        })
        .collect();
    let (mut answers, mut wrong_password, mut unknown_user) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so that both kinds meet the same load (other tests run meanwhile).
    for round in 0..2 {
        for user in &users {
            let (took, answer) = timed(|| app().login(user, &format!("wrong password {round}")));
            wrong_password.push(took);
            answers.push(answer);
            let (took, answer) = timed(|| app().login(&unique_username("nobody"), "wrong password"));
            unknown_user.push(took);
            answers.push(answer);
        }
    }
    let first = answers[0].clone();
    assert_eq!(first.0, 401, "{first:?}");
    for answer in &answers {
        assert_eq!(answer, &first, "every refusal is the same status and body");
    }
    let (w, u) = (median(wrong_password), median(unknown_user));
    // Both verify an argon2id hash (tens of ms); what differs is one indexed read, and noise.
    let bound = 20.0_f64.max(0.35 * w.max(u));
    assert!((w - u).abs() <= bound, "wrong password {w:.1} ms, unknown user {u:.1} ms (bound {bound:.1} ms)");
    assert!(w >= 5.0 && u >= 5.0, "both paths hash: {w:.1} / {u:.1} ms");
}

#[test]
fn failed_logins_are_limited_with_429_and_retry_after_then_recover() {
    let username = unique_username("limited");
    let password = "the right password";
    assert_eq!(app().register(&username, password).status, 201);
    for _ in 0..FAILURES_PER_USER {
        assert_error(&app().login(&username, "a wrong password"), 401, "unauthorized");
    }
    // Full: even the right password is refused, without being checked.
    let limited = app().login(&username, password);
    assert_error(&limited, 429, "too_many_requests");
    let retry_after: u64 = limited.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=WINDOW_SECONDS).contains(&retry_after), "{retry_after}");
    // Other usernames are not limited.
    assert_eq!(app().login(&unique_username("other"), "whatever password").status, 401);
    std::thread::sleep(Duration::from_secs(retry_after) + Duration::from_millis(300));
    let deadline = Instant::now() + Duration::from_secs(WINDOW_SECONDS + 2);
    loop {
        let reply = app().login(&username, password);
        if reply.status == 200 {
            break;
        }
        assert!(reply.status == 429 && Instant::now() < deadline, "recovers after the window: {reply:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_login_body_is_json_credentials() {
    let body = credentials("someone", "some password here");
    assert_eq!(app().send("POST", "/accounts/login", &[("content-type", "application/json")], &body).status, 401);
    assert_error(&app().request("GET", "/accounts/login"), 405, "method_not_allowed");
}
