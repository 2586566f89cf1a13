//! Accounts and tokens as a client uses them: register, log in, and send the token.

use crate::{App, Reply};
use std::sync::atomic::{AtomicU64, Ordering};

/// A user that registered and logged in.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub password: String,
    pub token: String,
}

impl Session {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

/// A username no other test uses (3–32 of `[a-z0-9_]`).
pub fn unique_username(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}_{:x}{n}", (nanos as u64) ^ u64::from(std::process::id()));
    name.chars().take(32).collect()
}

/// The JSON body of a register or login.
pub fn credentials(username: &str, password: &str) -> Vec<u8> {
    serde_json::json!({ "username": username, "password": password }).to_string().into_bytes()
}

const JSON: (&str, &str) = ("content-type", "application/json");

impl App {
    /// `POST /accounts/register`.
    pub fn register(&self, username: &str, password: &str) -> Reply {
        self.send("POST", "/accounts/register", &[JSON], &credentials(username, password))
    }

    /// `POST /accounts/login`.
    pub fn login(&self, username: &str, password: &str) -> Reply {
        self.send("POST", "/accounts/login", &[JSON], &credentials(username, password))
    }

    /// A new user, registered and logged in; panics if either fails.
    pub fn new_session(&self, prefix: &str) -> Session {
        let username = unique_username(prefix);
        let password = format!("pw of {username} is long");
        let registered = self.register(&username, &password);
        assert_eq!(registered.status, 201, "register: {registered:?}");
        let user_id = registered.json()["user_id"].as_str().expect("user_id").to_string();
        let logged_in = self.login(&username, &password);
        assert_eq!(logged_in.status, 200, "login: {logged_in:?}");
        let token = logged_in.json()["token"].as_str().expect("token").to_string();
        Session { user_id, username, password, token }
    }

    /// `method path` with `Authorization: <authorization>` (no body).
    pub fn with_token(&self, method: &str, path: &str, authorization: &str) -> Reply {
        self.send(method, path, &[("authorization", authorization)], b"")
    }

    /// `method path` as `session`'s user.
    pub fn as_user(&self, session: &Session, method: &str, path: &str) -> Reply {
        self.with_token(method, path, &session.bearer())
    }
}
