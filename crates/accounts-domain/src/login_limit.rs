//! Failed logins are limited per username and per client address, in Redis: after
//! `max_failures_per_user` failures for one username (or `max_failures_per_address` from one
//! address) within `window_seconds` of the first, logins for it are answered 429 with
//! `Retry-After` until the window ends, without checking the password. A successful login clears
//! its username's counter.
//!
//! The client address is the one the host reports (Spin's `spin-client-addr`); behind a proxy
//! every client shares the proxy's, so the per-address limit is set high (the per-username one
//! is what protects an account).

use crate::AccountsError;
use market_core::Script;

/// The limits, from the variables `login_max_failures_per_user`, `login_max_failures_per_address`
/// and `login_failure_window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub max_failures_per_user: u32,
    pub max_failures_per_address: u32,
    pub window_seconds: u32,
}

impl LoginLimits {
    pub fn parse(per_user: &str, per_address: &str, window: &str) -> Result<LoginLimits, String> {
        let number = |name: &str, raw: &str| {
            raw.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| format!("the variable {name} must be a whole number from 1 to 1000000, not {raw:?}"))
        };
        Ok(LoginLimits {
            max_failures_per_user: number("login_max_failures_per_user", per_user)?,
            max_failures_per_address: number("login_max_failures_per_address", per_address)?,
            window_seconds: number("login_failure_window_seconds", window)?,
        })
    }

    /// The arguments of [`LOGIN_CHECK`].
    pub fn check_args(&self, username_key: &str, address: &str) -> Vec<String> {
        vec![
            username_key.to_string(),
            address.to_string(),
            self.max_failures_per_user.to_string(),
            self.max_failures_per_address.to_string(),
        ]
    }

    /// The arguments of [`LOGIN_FAILED`].
    pub fn failed_args(&self, username_key: &str, address: &str) -> Vec<String> {
        vec![username_key.to_string(), address.to_string(), self.window_seconds.to_string()]
    }
}

/// [`LOGIN_CHECK`]'s reply as a refusal, if it is one.
pub fn check_outcome(wait_seconds: i64) -> Result<(), AccountsError> {
    if wait_seconds > 0 {
        Err(AccountsError::TooManyFailures { retry_after_seconds: wait_seconds as u64 })
    } else {
        Ok(())
    }
}

/// The key of a username's failure counter (cleared on a successful login).
pub fn user_counter_key(username_key: &str) -> String {
    format!("accounts:login-failures:user:{username_key}")
}

/// The client's address from the host's `spin-client-addr` values (`ip:port`): the last one,
/// since the host appends its own after whatever the client sent; the port left out.
pub fn client_address<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let last = values.into_iter().last().unwrap_or("unknown");
    let ip = match last.rsplit_once(':') {
        Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => last,
    };
    ip.trim_start_matches('[').trim_end_matches(']').chars().take(64).collect()
}

pub const LOGIN_CHECK: Script = Script::new(include_str!("redis_scripts/login_check.lua"));
pub const LOGIN_FAILED: Script = Script::new(include_str!("redis_scripts/login_failed.lua"));

#[cfg(test)]
mod tests {
    use super::*;
    use redis_test_support::TestRedis;

    fn int(reply: Result<Vec<Option<String>>, String>) -> i64 {
        reply.expect("script runs")[0].as_deref().expect("a reply").parse().expect("an integer")
    }

    #[test]
    fn the_address_is_the_hosts_last_value_without_the_port() {
        assert_eq!(client_address(["10.0.0.1:5555", "127.0.0.1:40000"]), "127.0.0.1");
        assert_eq!(client_address(["[::1]:8080"]), "::1");
        assert_eq!(client_address([]), "unknown");
    }

    #[test]
    fn limits_are_checked_numbers() {
        assert_eq!(
            LoginLimits::parse("5", "100", "300"),
            Ok(LoginLimits { max_failures_per_user: 5, max_failures_per_address: 100, window_seconds: 300 })
        );
        assert!(LoginLimits::parse("0", "1", "1").is_err() && LoginLimits::parse("1", "x", "1").is_err());
    }

    #[test]
    fn failures_fill_the_username_and_the_address_and_the_window_ends_it() {
        let Some(mut redis) = TestRedis::claim() else { return };
        let limits = LoginLimits { max_failures_per_user: 3, max_failures_per_address: 5, window_seconds: 60 };
        let check = |redis: &mut TestRedis, user: &str, addr: &str| {
            int(redis.run_script(LOGIN_CHECK.source(), LOGIN_CHECK.sha1(), &limits.check_args(user, addr)))
        };
        let fail = |redis: &mut TestRedis, user: &str, addr: &str| {
            int(redis.run_script(LOGIN_FAILED.source(), LOGIN_FAILED.sha1(), &limits.failed_args(user, addr)))
        };
        for n in 1..=3 {
            assert_eq!(check(&mut redis, "alice", "a1"), 0);
            assert_eq!(fail(&mut redis, "alice", "a1"), n);
        }
        let wait = check(&mut redis, "alice", "a1");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(check(&mut redis, "alice", "a2"), wait, "per username, from any address");
        assert_eq!(check(&mut redis, "bob", "a2"), 0, "another username is not limited");
        // The address: 3 failures on alice and 2 more on others fill it.
        fail(&mut redis, "bob", "a1");
        fail(&mut redis, "carol", "a1");
        assert!(check(&mut redis, "dave", "a1") > 0, "per address, for any username");
        assert_eq!(check(&mut redis, "dave", "a3"), 0);
        // The window ends (the counter's TTL), and with it the refusal.
        redis.cmd(&["DEL", "accounts:login-failures:addr:a1", &user_counter_key("alice")]);
        assert_eq!(check(&mut redis, "alice", "a1"), 0);
        assert!(redis.pttl("accounts:login-failures:user:bob") > 59_000 - 5_000);
        assert_eq!(check_outcome(0), Ok(()));
        assert_eq!(check_outcome(7), Err(AccountsError::TooManyFailures { retry_after_seconds: 7 }));
    }
}
