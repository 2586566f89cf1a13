//! Items and the requests that change them, parsed from path parameters.

use market_core::{ApiError, parse_count, parse_id, parse_non_negative};
use serde::{Deserialize, Serialize};

/// The largest batch `batch_init` accepts in one call.
pub const MAX_BATCH_ITEMS: i64 = 1_000_000;

/// What `GET /stock/find/{item_id}` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub stock: i64,
    pub price: i64,
}

/// A request to add or subtract `amount` units of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChange<'a> {
    pub item_id: &'a str,
    pub amount: i64,
}

impl<'a> StockChange<'a> {
    pub fn parse(item_id: &'a str, amount: &str) -> Result<Self, ApiError> {
        Ok(Self { item_id: parse_id("item_id", item_id)?, amount: parse_non_negative("amount", amount)? })
    }
}

/// `POST /stock/batch_init/{n}/{starting_stock}/{item_price}`: items "0".."n-1".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInit {
    pub n: i64,
    pub starting_stock: i64,
    pub item_price: i64,
}

impl BatchInit {
    pub fn parse(n: &str, starting_stock: &str, item_price: &str) -> Result<Self, ApiError> {
        Ok(Self {
            n: parse_count("n", n, MAX_BATCH_ITEMS)?,
            starting_stock: parse_non_negative("starting_stock", starting_stock)?,
            item_price: parse_non_negative("item_price", item_price)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_changes_and_refuses_bad_amounts() {
        assert_eq!(StockChange::parse("a", "3"), Ok(StockChange { item_id: "a", amount: 3 }));
        assert_eq!(StockChange::parse("a", "-3").unwrap_err().status(), 400);
        assert_eq!(StockChange::parse("", "3").unwrap_err().status(), 400);
    }

    #[test]
    fn batch_init_is_bounded() {
        assert!(BatchInit::parse("100000", "10", "1").is_ok());
        assert_eq!(BatchInit::parse("1000001", "10", "1").unwrap_err().status(), 400);
        assert_eq!(BatchInit::parse("10", "x", "1").unwrap_err().status(), 400);
    }
}
