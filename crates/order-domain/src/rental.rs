//! Renting an item: the second and third workflows of the saga engine, next to the checkout.
//!
//! * [`RENTAL`] (`POST /rentals`): record the rental (pending) → reserve one unit of the item →
//!   charge the borrower `daily_price × days` → credit the item's owner that amount → mark the
//!   rental active. A refusal compensates what was done, latest first: reverse the credit,
//!   refund the charge, release the unit, mark the rental failed (with the reason).
//! * [`RETURN`] (`POST /rentals/{id}/return`): mark the rental returned → release its unit.
//!
//! Both run in the order service's saga table with the checkout's record, lease, worker claim
//! and recovery ([`crate::saga`]): a saga is told apart by its id, `rental:<rental_id>` or
//! `return:<rental_id>` (a checkout's is `<order>.<generation>.<attempt>`). The stock
//! reservation and the payment ledgers are keyed by the rental's saga id for both workflows, so
//! the return releases exactly the unit the rental reserved, and a unit reserved under a
//! `rental:` id is a hold the stock service knows is given back (an item with one cannot be
//! deleted).

use crate::saga::{Plan, Record, SagaPlan, State, Step};
use saga_engine::Workflow;
use serde::{Deserialize, Serialize};

/// How a rental saga's id begins.
pub const RENTAL_PREFIX: &str = "rental:";
/// How a return saga's id begins.
pub const RETURN_PREFIX: &str = "return:";
/// Longest rental, in days.
pub const MAX_DAYS: i64 = 365;

/// How the reason of a rental failed on an invalid answer begins.
pub const INVALID_RENTAL: &str = "the rental cannot be made as it is: ";
/// How the reason of a return failed on an invalid answer begins.
pub const INVALID_RETURN: &str = "the rental cannot be returned as it is: ";

/// Why "record rental" or "mark active" refuses: the rental was cancelled (failed) meanwhile.
pub const RENTAL_CANCELLED: &str = "the rental was cancelled";
/// Why "mark returned" refuses.
pub const RENTAL_NOT_ACTIVE: &str = "the rental is not active";

/// A rental as a workflow of the saga engine.
pub const RENTAL: Workflow<Step> = Workflow {
    steps: &[
        (Step::RecordRental, Some(Step::CancelRental)),
        (Step::ReserveStock, Some(Step::ReleaseStock)),
        (Step::ChargePayment, Some(Step::RefundPayment)),
        (Step::CreditOwner, Some(Step::ReverseCredit)),
        (Step::MarkActive, None),
    ],
    invalid_reason: INVALID_RENTAL,
};

/// A return as a workflow of the saga engine: nothing to undo (the rental stays returned; a
/// release that keeps failing leaves the saga for the worker, then an operator).
pub const RETURN: Workflow<Step> =
    Workflow { steps: &[(Step::MarkReturned, None), (Step::ReleaseStock, None)], invalid_reason: INVALID_RETURN };

/// What a rental saga (or its return) is about: fixed when the rental is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RentalPlan {
    /// The record's key, not in its JSON: `rental:<id>` or `return:<id>`.
    #[serde(skip)]
    pub saga_id: String,
    pub rental_id: String,
    pub item_id: String,
    pub borrower_id: String,
    pub owner_id: String,
    pub days: i64,
    pub daily_price: i64,
    /// `daily_price × days`: what the borrower pays and the owner gets.
    pub amount: i64,
}

impl RentalPlan {
    /// The plan of a new rental's saga.
    pub fn rental(rental_id: &str, item: &RentableItem, borrower_id: &str, days: i64) -> Result<RentalPlan, String> {
        let amount = item
            .daily_price
            .checked_mul(days)
            .ok_or_else(|| format!("{days} days at {} a day do not fit in a price", item.daily_price))?;
        Ok(RentalPlan {
            saga_id: rental_saga_id(rental_id),
            rental_id: rental_id.into(),
            item_id: item.item_id.clone(),
            borrower_id: borrower_id.into(),
            owner_id: item.owner_id.clone(),
            days,
            daily_price: item.daily_price,
            amount,
        })
    }

    /// The same rental's return saga.
    pub fn returning(&self) -> RentalPlan {
        RentalPlan { saga_id: return_saga_id(&self.rental_id), ..self.clone() }
    }

    /// The rental's own saga id: its stock reservation and payment ledger rows are keyed by it.
    pub fn rental_saga_id(&self) -> String {
        rental_saga_id(&self.rental_id)
    }
}

impl SagaPlan for RentalPlan {
    fn id(&self) -> &str {
        &self.saga_id
    }
    fn identify(&mut self, saga_id: &str) -> Option<()> {
        let rental_id = saga_id.strip_prefix(RENTAL_PREFIX).or_else(|| saga_id.strip_prefix(RETURN_PREFIX))?;
        (rental_id == self.rental_id).then_some(())?;
        self.saga_id = saga_id.to_string();
        Some(())
    }
    fn workflow(&self) -> &'static Workflow<Step> {
        if self.saga_id.starts_with(RETURN_PREFIX) { &RETURN } else { &RENTAL }
    }
}

/// The id of a rental's saga.
pub fn rental_saga_id(rental_id: &str) -> String {
    format!("{RENTAL_PREFIX}{rental_id}")
}

/// The id of a rental's return saga.
pub fn return_saga_id(rental_id: &str) -> String {
    format!("{RETURN_PREFIX}{rental_id}")
}

/// Whether a saga id is a rental's or a return's (else a checkout's).
pub fn is_rental_saga(saga_id: &str) -> bool {
    saga_id.starts_with(RENTAL_PREFIX) || saga_id.starts_with(RETURN_PREFIX)
}

/// What a rental needs to know of the item (from the stock service's item page).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RentableItem {
    pub item_id: String,
    pub owner_id: String,
    pub daily_price: i64,
}

/// Why a rental cannot be asked for (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RentalRefusal {
    Body(String),
    Days(String),
    OwnItem,
    NotForRent(String),
    Price(String),
}

impl std::fmt::Display for RentalRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RentalRefusal::Body(why) => {
                write!(f, "the body must be {{\"item_id\": <id>, \"days\": <1 to {MAX_DAYS}>}}: {why}")
            }
            RentalRefusal::Days(given) => write!(f, "days must be a whole number from 1 to {MAX_DAYS}, not {given}"),
            RentalRefusal::OwnItem => write!(f, "you cannot borrow your own item"),
            RentalRefusal::NotForRent(item) => {
                write!(f, "item {item} is not listed for rent (it has no owner or no title)")
            }
            RentalRefusal::Price(why) => write!(f, "{why}"),
        }
    }
}

/// The body of `POST /rentals`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RentalRequest {
    pub item_id: String,
    pub days: serde_json::Value,
}

impl RentalRequest {
    /// The request from `POST /rentals`'s body.
    pub fn parse(body: &[u8]) -> Result<RentalRequest, RentalRefusal> {
        serde_json::from_slice(body).map_err(|e| RentalRefusal::Body(e.to_string()))
    }

    /// The number of days, checked.
    pub fn days(&self) -> Result<i64, RentalRefusal> {
        match self.days.as_i64() {
            Some(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
            _ => Err(RentalRefusal::Days(self.days.to_string())),
        }
    }
}

/// The plan of a rental asked for by `borrower_id`, if it may be: not their own item, an item
/// listed for rent, a price that fits.
pub fn plan_rental(
    rental_id: &str,
    request: &RentalRequest,
    item: Option<RentableItem>,
    borrower_id: &str,
) -> Result<RentalPlan, RentalRefusal> {
    let days = request.days()?;
    let item = item.ok_or_else(|| RentalRefusal::NotForRent(request.item_id.clone()))?;
    if item.owner_id == borrower_id {
        return Err(RentalRefusal::OwnItem);
    }
    RentalPlan::rental(rental_id, &item, borrower_id, days).map_err(RentalRefusal::Price)
}

/// A record of the saga table, whichever workflow it runs (told apart by the saga id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyRecord {
    Checkout(Record<Plan>),
    Rental(Record<RentalPlan>),
}

impl AnyRecord {
    /// Decodes the record stored under `saga_id`'s key.
    pub fn decode_for(saga_id: &str, raw: &str) -> Option<AnyRecord> {
        if is_rental_saga(saga_id) {
            Record::<RentalPlan>::decode_for(saga_id, raw).map(AnyRecord::Rental)
        } else {
            Record::<Plan>::decode_for(saga_id, raw).map(AnyRecord::Checkout)
        }
    }

    pub fn saga_id(&self) -> &str {
        match self {
            AnyRecord::Checkout(r) => &r.plan.saga_id,
            AnyRecord::Rental(r) => &r.plan.saga_id,
        }
    }

    pub fn state(&self) -> State {
        match self {
            AnyRecord::Checkout(r) => r.state,
            AnyRecord::Rental(r) => r.state,
        }
    }

    pub fn encode(&self) -> String {
        match self {
            AnyRecord::Checkout(r) => r.encode(),
            AnyRecord::Rental(r) => r.encode(),
        }
    }

    /// [`Record::redriven`], whatever the workflow.
    pub fn redriven(&self, budget: u32, now_ms: u64) -> Option<AnyRecord> {
        match self {
            AnyRecord::Checkout(r) => r.redriven(budget, now_ms).map(AnyRecord::Checkout),
            AnyRecord::Rental(r) => r.redriven(budget, now_ms).map(AnyRecord::Rental),
        }
    }
}

/// The rental's row in `orders.rentals`, as `GET /rentals/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rental {
    #[serde(flatten)]
    pub plan: RentalPlan,
    /// `pending`, `active`, `returned` or `failed`.
    pub state: String,
    /// Why a failed rental failed.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saga::Record;

    fn item(owner: &str, price: i64) -> Option<RentableItem> {
        Some(RentableItem { item_id: "i1".into(), owner_id: owner.into(), daily_price: price })
    }

    fn request(days: serde_json::Value) -> RentalRequest {
        RentalRequest { item_id: "i1".into(), days }
    }

    #[test]
    fn a_body_that_is_not_a_rental_request_is_refused() {
        for body in [&b"{"[..], b"[]", br#"{"item_id": "i"}"#, br#"{"item_id": "i", "days": 1, "x": 1}"#] {
            assert!(matches!(RentalRequest::parse(body), Err(RentalRefusal::Body(_))), "{body:?}");
        }
        assert_eq!(RentalRequest::parse(br#"{"item_id": "i", "days": 2}"#).map(|r| r.days()), Ok(Ok(2)));
    }

    #[test]
    fn a_rental_is_planned_with_its_amount_and_refused_for_bad_days_own_items_and_overflow() {
        let plan = plan_rental("r1", &request(4.into()), item("o", 3), "b").expect("plan");
        assert_eq!((plan.saga_id.as_str(), plan.amount, plan.owner_id.as_str()), ("rental:r1", 12, "o"));
        for days in [serde_json::json!(0), serde_json::json!(366), serde_json::json!("3"), serde_json::json!(1.5)] {
            assert!(matches!(plan_rental("r", &request(days), item("o", 3), "b"), Err(RentalRefusal::Days(_))));
        }
        assert_eq!(plan_rental("r", &request(1.into()), item("b", 3), "b"), Err(RentalRefusal::OwnItem));
        assert!(matches!(plan_rental("r", &request(1.into()), None, "b"), Err(RentalRefusal::NotForRent(_))));
        assert!(matches!(plan_rental("r", &request(2.into()), item("o", i64::MAX), "b"), Err(RentalRefusal::Price(_))));
    }

    #[test]
    fn rental_and_return_records_decode_by_their_id_and_run_their_own_workflow() {
        let plan = plan_rental("r1", &request(2.into()), item("o", 5), "b").expect("plan");
        let record = Record::new(plan.clone(), 7);
        let decoded = AnyRecord::decode_for("rental:r1", &record.encode()).expect("decodes");
        assert_eq!(decoded, AnyRecord::Rental(record.clone()));
        let AnyRecord::Rental(r) = decoded else { unreachable!() };
        assert_eq!(r.plan.workflow().first(), Step::RecordRental);
        let back = Record::new(plan.returning(), 7);
        let AnyRecord::Rental(r) = AnyRecord::decode_for("return:r1", &back.encode()).expect("decodes") else {
            panic!("a return is a rental's record")
        };
        assert_eq!((r.plan.workflow().first(), r.plan.rental_saga_id()), (Step::MarkReturned, "rental:r1".into()));
        // Another rental's key, or a checkout's, does not decode as this record.
        assert_eq!(AnyRecord::decode_for("rental:r2", &record.encode()), None);
        assert!(AnyRecord::decode_for("o.0.1", &record.encode()).is_none(), "a checkout id");
        assert_eq!(r.state, State::Running);
    }

    #[test]
    fn a_refused_charge_gives_back_the_unit_and_cancels_the_rental_with_the_reason() {
        use saga_engine::{Next, Outcome};
        let refused = Outcome::Refused("insufficient credit".into());
        let why = Some("insufficient credit".to_string());
        assert_eq!(
            RENTAL.next(Step::ChargePayment, &refused, None),
            Next::Do { step: Step::ReleaseStock, reason: why.clone() }
        );
        assert_eq!(
            RENTAL.next(Step::ReleaseStock, &Outcome::Done, why.clone()),
            Next::Do { step: Step::CancelRental, reason: why.clone() }
        );
        assert_eq!(
            RENTAL.next(Step::CancelRental, &Outcome::Done, why.clone()),
            Next::Finish { succeeded: false, reason: why }
        );
        assert_eq!(
            RETURN.next(Step::ReleaseStock, &Outcome::Done, None),
            Next::Finish { succeeded: true, reason: None }
        );
    }
}
