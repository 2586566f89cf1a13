//! Orders and the requests that change them.

use crate::error::OrderError;
use market_core::{ApiError, parse_count, parse_id, parse_non_negative};
use serde::{Deserialize, Serialize};

/// The largest batch `batch_init` accepts in one call.
pub const MAX_BATCH_ORDERS: i64 = 1_000_000;

/// Most lines an order holds: what the stock service reserves in one step
/// (`stock_domain::reservation::MAX_LINES`, checked by a unit test). An order with more could
/// never be reserved, so `addItem` refuses the line that would go beyond.
pub const MAX_LINES: usize = 1_000;

/// An order line: item id and quantity, serialized as `[item_id, quantity]` like WDM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line(pub String, pub i64);

/// What `GET /orders/find/{order_id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub paid: bool,
    pub items: Vec<Line>,
    pub user_id: String,
    pub total_cost: i64,
}

/// `POST /orders/addItem/{order_id}/{item_id}/{quantity}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddItem<'a> {
    pub order_id: &'a str,
    pub item_id: &'a str,
    pub quantity: i64,
}

impl<'a> AddItem<'a> {
    pub fn parse(order_id: &'a str, item_id: &'a str, quantity: &str) -> Result<Self, ApiError> {
        let quantity = parse_non_negative("quantity", quantity)?;
        if quantity == 0 {
            return Err(ApiError::BadRequest("quantity must be at least 1".into()));
        }
        Ok(Self { order_id: parse_id("order_id", order_id)?, item_id: parse_id("item_id", item_id)?, quantity })
    }

    /// The cost this line adds, or an error when it overflows.
    pub fn cost(&self, price: i64) -> Result<i64, ApiError> {
        self.quantity
            .checked_mul(price)
            .ok_or_else(|| ApiError::BadRequest(format!("{} × {price} overflows the order's cost", self.quantity)))
    }

    /// Why the line was not added, from the order as it is: `None` for an unknown order, else
    /// `paid`, its line count and the sum of its quantities (`SUM` over the lines, as text: it
    /// may exceed 64 bits in an order written before these checks). An order that would become
    /// one that can never be paid — more than [`MAX_LINES`] lines, or quantities whose sum does
    /// not fit in 64 bits (the stock service sums an item's lines) — is 400; a paid order 409.
    pub fn refusal(&self, order: Option<(bool, i64, &str)>) -> ApiError {
        let order_id = self.order_id.to_string();
        let Some((paid, lines, quantity)) = order else { return OrderError::UnknownOrder { order_id }.into() };
        if paid {
            return OrderError::AlreadyPaid { order_id }.into();
        }
        if lines >= MAX_LINES as i64 {
            return OrderError::TooManyLines { order_id, lines, max: MAX_LINES }.into();
        }
        let total = quantity.parse::<i128>().ok().and_then(|q| q.checked_add(i128::from(self.quantity)));
        if total.is_none_or(|t| t > i128::from(i64::MAX)) {
            return OrderError::QuantitiesOverflow { order_id }.into();
        }
        // Nothing says no now: the order changed between the two statements (re-created).
        OrderError::ChangedMeanwhile { order_id }.into()
    }
}

/// `POST /orders/batch_init/{n}/{n_items}/{n_users}/{item_price}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInit {
    pub n: i64,
    pub n_items: i64,
    pub n_users: i64,
    pub item_price: i64,
}

impl BatchInit {
    pub fn parse(n: &str, n_items: &str, n_users: &str, item_price: &str) -> Result<Self, ApiError> {
        let batch = Self {
            n: parse_count("n", n, MAX_BATCH_ORDERS)?,
            n_items: parse_count("n_items", n_items, i64::MAX)?,
            n_users: parse_count("n_users", n_users, i64::MAX)?,
            item_price: parse_non_negative("item_price", item_price)?,
        };
        if batch.n > 0 && (batch.n_items == 0 || batch.n_users == 0) {
            return Err(ApiError::BadRequest("n_items and n_users must be at least 1".into()));
        }
        if batch.item_price.checked_mul(2).is_none() {
            return Err(ApiError::BadRequest("item_price is too large".into()));
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_serialize_as_pairs() {
        let order = Order {
            order_id: "o".into(),
            paid: false,
            items: vec![Line("i".into(), 2)],
            user_id: "u".into(),
            total_cost: 4,
        };
        let v = serde_json::to_value(&order).unwrap();
        assert_eq!(v["items"], serde_json::json!([["i", 2]]));
    }

    #[test]
    fn add_item_refuses_zero_and_overflowing_costs() {
        assert_eq!(AddItem::parse("o", "i", "0").unwrap_err().status(), 400);
        let add = AddItem::parse("o", "i", "3").unwrap();
        assert_eq!(add.cost(5), Ok(15));
        assert_eq!(add.cost(i64::MAX).unwrap_err().status(), 400);
    }

    #[test]
    fn add_item_refusals_say_why_and_refuse_what_could_never_be_paid() {
        let add = AddItem::parse("o", "i", "2").unwrap();
        assert_eq!(add.refusal(None).status(), 404);
        assert_eq!(add.refusal(Some((true, 1, "1"))).status(), 409);
        let too_long = add.refusal(Some((false, MAX_LINES as i64, "1000")));
        assert_eq!(too_long.status(), 400);
        assert!(too_long.message().contains("at most 1000"), "{too_long}");
        let max = i64::MAX.to_string();
        let overflow = add.refusal(Some((false, 1, &max)));
        assert_eq!(overflow.status(), 400);
        assert!(overflow.message().contains("quantities"), "{overflow}");
        // Orders written before the checks may already sum past 64 bits.
        assert_eq!(add.refusal(Some((false, 2, "18446744073709551614"))).status(), 400);
        assert_eq!(add.refusal(Some((false, 1, &(i64::MAX - 2).to_string()))).status(), 409, "fits: not why");
    }

    #[test]
    fn an_order_holds_what_one_stock_reservation_takes() {
        assert_eq!(MAX_LINES, stock_domain::reservation::MAX_LINES);
    }

    #[test]
    fn batch_init_needs_items_and_users() {
        assert!(BatchInit::parse("10", "5", "5", "1").is_ok());
        assert!(BatchInit::parse("0", "0", "0", "1").is_ok());
        assert_eq!(BatchInit::parse("10", "0", "5", "1").unwrap_err().status(), 400);
        assert_eq!(BatchInit::parse("10", "5", "5", &i64::MAX.to_string()).unwrap_err().status(), 400);
    }
}
