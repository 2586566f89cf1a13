//! What `register` and `login` accept: `{"username", "password"}`.
//!
//! A username is 3–32 characters of `[a-z0-9_]` once case-folded (`Alice` is `alice`); a
//! password is 12–128 bytes of UTF-8, kept exactly as sent.

use market_core::ApiError;
use serde::Deserialize;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN_BYTES: usize = 12;
pub const PASSWORD_MAX_BYTES: usize = 128;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    username: String,
    password: String,
}

/// A registration: a valid username (folded) and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub username: String,
    pub password: String,
}

impl Registration {
    /// 400 with what is wrong: malformed JSON, a username or password out of the rules.
    pub fn parse(body: &[u8]) -> Result<Registration, ApiError> {
        let Body { username, password } = parse_body(body)?;
        let username = fold_username(&username).map_err(ApiError::BadRequest)?;
        check_password(&password).map_err(ApiError::BadRequest)?;
        Ok(Registration { username, password })
    }
}

/// A login attempt, as sent (folded username). Its username or password may break the rules:
/// such a login is answered like any wrong one (and costs the same), not with a 400 that would
/// say more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The folded username, if it is one that can exist.
    pub username: Option<String>,
    /// The username as the limiter counts it (folded, cut to the longest a username can be).
    pub limit_key: String,
    pub password: String,
}

impl Credentials {
    /// 400 only for malformed JSON.
    pub fn parse(body: &[u8]) -> Result<Credentials, ApiError> {
        let Body { username, password } = parse_body(body)?;
        let folded = username.to_lowercase();
        let limit_key: String =
            folded.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(USERNAME_MAX).collect();
        Ok(Credentials { username: fold_username(&username).ok(), limit_key, password })
    }
}

fn parse_body(body: &[u8]) -> Result<Body, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be JSON {{\"username\": \"...\", \"password\": \"...\"}}: {e}"))
    })
}

/// The username case-folded, or why it cannot be one.
pub fn fold_username(raw: &str) -> Result<String, String> {
    let folded = raw.to_ascii_lowercase();
    let length_ok = (USERNAME_MIN..=USERNAME_MAX).contains(&folded.len());
    if length_ok && folded.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Ok(folded)
    } else {
        Err(format!("a username is {USERNAME_MIN} to {USERNAME_MAX} characters of a-z, 0-9 and _ (case-folded)"))
    }
}

fn check_password(password: &str) -> Result<(), String> {
    if (PASSWORD_MIN_BYTES..=PASSWORD_MAX_BYTES).contains(&password.len()) {
        Ok(())
    } else {
        Err(format!("a password is {PASSWORD_MIN_BYTES} to {PASSWORD_MAX_BYTES} bytes (UTF-8)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(username: &str, password: &str) -> Vec<u8> {
        serde_json::json!({ "username": username, "password": password }).to_string().into_bytes()
    }

    #[test]
    fn usernames_are_folded_and_checked() {
        let r = Registration::parse(&body("Alice_99", "correct horse battery")).unwrap();
        assert_eq!(r.username, "alice_99");
        for bad in ["ab", "a-b-c", "has space", "ünï", &"x".repeat(33), ""] {
            let err = Registration::parse(&body(bad, "correct horse battery")).unwrap_err();
            assert_eq!(err.status(), 400, "{bad:?}");
            assert!(err.message().contains("username"), "{err}");
        }
        assert!(Registration::parse(&body(&"x".repeat(32), "correct horse battery")).is_ok());
    }

    #[test]
    fn passwords_are_12_to_128_bytes() {
        for (password, ok) in
            [("x".repeat(11), false), ("x".repeat(12), true), ("é".repeat(64), true), ("é".repeat(65), false)]
        {
            let parsed = Registration::parse(&body("alice", &password));
            assert_eq!(parsed.is_ok(), ok, "{} bytes", password.len());
            if let Err(e) = parsed {
                assert!(e.message().contains("password"), "{e}");
            }
        }
    }

    #[test]
    fn malformed_bodies_are_400() {
        for bad in [&b"not json"[..], b"{}", br#"{"username": "alice"}"#, br#"{"username": 1, "password": "x"}"#, b""] {
            assert_eq!(Registration::parse(bad).map_err(|e| e.status()), Err(400));
            assert_eq!(Credentials::parse(bad).map_err(|e| e.status()), Err(400));
        }
    }

    #[test]
    fn a_login_that_breaks_the_rules_is_just_a_wrong_login() {
        let c = Credentials::parse(&body("Bob-by", "short")).unwrap();
        assert_eq!((c.username, c.limit_key.as_str()), (None, "bobby"));
        let c = Credentials::parse(&body("Bob", "long enough password")).unwrap();
        assert_eq!(c.username.as_deref(), Some("bob"));
    }
}
