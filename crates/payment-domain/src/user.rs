//! Users' accounts and the requests that change them, parsed from path parameters.

use market_core::{ApiError, parse_count, parse_id, parse_non_negative};
use serde::Serialize;

/// The largest batch `batch_init` accepts in one call.
pub const MAX_BATCH_USERS: i64 = 1_000_000;

/// What `find_user`, `add_funds` and `pay` answer: `{"user_id": "...", "credit": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub user_id: String,
    pub credit: i64,
}

/// A request to add `amount` to, or take it from, one user's credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditChange<'a> {
    pub user_id: &'a str,
    pub amount: i64,
}

impl<'a> CreditChange<'a> {
    pub fn parse(user_id: &'a str, amount: &str) -> Result<Self, ApiError> {
        Ok(Self { user_id: parse_id("user_id", user_id)?, amount: parse_non_negative("amount", amount)? })
    }
}

/// `POST /payment/batch_init/{n}/{starting_money}`: users "0".."n-1", each with `starting_money`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInit {
    pub n: i64,
    pub starting_money: i64,
}

impl BatchInit {
    pub fn parse(n: &str, starting_money: &str) -> Result<Self, ApiError> {
        Ok(Self {
            n: parse_count("n", n, MAX_BATCH_USERS)?,
            starting_money: parse_non_negative("starting_money", starting_money)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_changes_and_refuses_bad_ids_and_amounts() {
        assert_eq!(CreditChange::parse("u-1", "3"), Ok(CreditChange { user_id: "u-1", amount: 3 }));
        assert_eq!(CreditChange::parse("u", "0"), Ok(CreditChange { user_id: "u", amount: 0 }));
        for amount in ["-3", "x", "", "1.5", "9223372036854775808"] {
            assert_eq!(CreditChange::parse("u", amount).unwrap_err().status(), 400, "{amount:?}");
        }
        assert_eq!(CreditChange::parse("", "3").unwrap_err().status(), 400);
        assert_eq!(CreditChange::parse("a/b", "3").unwrap_err().status(), 400);
    }

    #[test]
    fn batch_init_is_bounded() {
        assert_eq!(BatchInit::parse("100000", "10"), Ok(BatchInit { n: 100_000, starting_money: 10 }));
        assert!(BatchInit::parse("1000000", "0").is_ok());
        assert_eq!(BatchInit::parse("1000001", "10").unwrap_err().status(), 400);
        assert_eq!(BatchInit::parse("ten", "10").unwrap_err().status(), 400);
        assert_eq!(BatchInit::parse("10", "-1").unwrap_err().status(), 400);
    }

    #[test]
    fn users_serialize_as_wdm_expects() {
        let json = serde_json::to_string(&User { user_id: "7".into(), credit: 12 }).unwrap();
        assert_eq!(json, r#"{"user_id":"7","credit":12}"#);
    }
}
