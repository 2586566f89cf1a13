//! The payment service's saga steps, all idempotent per saga id: in the checkout saga, `charge`
//! (forward) and `refund` (compensation); in the rental saga, `credit` (forward: the item's
//! owner is credited) and `reverse_credit` (compensation). The rules live in the server-side
//! functions `payment.charge`, `payment.refund`, `payment.credit` and `payment.reverse_credit`
//! (infra/functions/payment.sql); this module parses the requests and what those functions
//! answer.
//!
//! The steps are private routes, reached only through Spin's service chaining.

use crate::PaymentError;
use market_core::{ApiError, parse_id, parse_non_negative};
use std::fmt;

/// A step that moves an amount for a user, keyed by its saga: `POST
/// /payment/{charge|credit}/{saga_id}/{user_id}/{amount}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyStep<'a> {
    pub saga_id: &'a str,
    pub user_id: &'a str,
    pub amount: i64,
}

impl<'a> MoneyStep<'a> {
    pub fn parse(saga_id: &'a str, user_id: &'a str, amount: &str) -> Result<Self, ApiError> {
        Ok(Self {
            saga_id: parse_id("saga_id", saga_id)?,
            user_id: parse_id("user_id", user_id)?,
            amount: parse_non_negative("amount", amount)?,
        })
    }
}

/// `POST /payment/charge/{saga_id}/{user_id}/{amount}`.
pub type ChargeStep<'a> = MoneyStep<'a>;
/// `POST /payment/credit/{saga_id}/{user_id}/{amount}`.
pub type CreditStep<'a> = MoneyStep<'a>;

/// Most charges one batched charge may hold.
pub const MAX_BATCH_CHARGES: usize = 256;

/// One saga's charge in a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SagaCharge {
    pub saga_id: String,
    pub user_id: String,
    pub amount: i64,
}

/// `POST /payment/charge_many` body: `{"charges": [{"saga_id", "user_id", "amount"}, ...]}`:
/// the charges of several sagas, applied in one statement, each on its own, as [`ChargeStep`]
/// would be.
///
/// Each charge is also checked on its own: one that `charge` would refuse as invalid (a bad id,
/// a negative amount, not a charge at all) gets that 400 as its own answer, and the others are
/// charged as if it were not there. Only a body that is not such a list at all, or longer than
/// [`MAX_BATCH_CHARGES`], is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeManyRequest {
    /// Each charge in order, or why it is invalid.
    pub charges: Vec<Result<SagaCharge, ApiError>>,
}

impl ChargeManyRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            charges: Vec<serde_json::Value>,
        }
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "body must be {{\"charges\": [{{\"saga_id\": id, \"user_id\": id, \"amount\": n}}, ...]}}: {e}"
            ))
        })?;
        if envelope.charges.len() > MAX_BATCH_CHARGES {
            return Err(ApiError::BadRequest(format!("at most {MAX_BATCH_CHARGES} charges per batch")));
        }
        let charge = |entry: serde_json::Value| -> Result<SagaCharge, ApiError> {
            let c: SagaCharge = serde_json::from_value(entry).map_err(|e| {
                ApiError::BadRequest(format!(
                    "a charge must be {{\"saga_id\": id, \"user_id\": id, \"amount\": n}}: {e}"
                ))
            })?;
            ChargeStep::parse(&c.saga_id, &c.user_id, &c.amount.to_string())?;
            Ok(c)
        };
        Ok(ChargeManyRequest { charges: envelope.charges.into_iter().map(charge).collect() })
    }

    /// The valid charges, in order, as the single steps they stand for: the arguments of
    /// `payment.charge_many`.
    pub fn valid(&self) -> Vec<ChargeStep<'_>> {
        self.charges
            .iter()
            .flatten()
            .map(|c| ChargeStep { saga_id: &c.saga_id, user_id: &c.user_id, amount: c.amount })
            .collect()
    }

    /// Every charge's answer, in order, from what `payment.charge_many` answered for the valid
    /// ones ([`ChargeManyRequest::valid`]): `Ok`, or the refusal `charge` would answer; an invalid
    /// charge answers its 400. `Err` if the count does not match or an outcome is unknown.
    pub fn answers(&self, outcomes: &[String]) -> Result<Vec<Result<(), ApiError>>, ApiError> {
        let valid = self.valid();
        if outcomes.len() != valid.len() {
            return Err(ApiError::Internal(format!("{} outcomes for {} charges", outcomes.len(), valid.len())));
        }
        let mut decided = valid.iter().zip(outcomes);
        let mut answers = Vec::with_capacity(self.charges.len());
        for charge in &self.charges {
            answers.push(match charge {
                Err(invalid) => Err(invalid.clone()),
                Ok(_) => {
                    let (step, raw) = decided.next().ok_or_else(|| ApiError::Internal("batch out of step".into()))?;
                    ChargeOutcome::parse(raw)?.into_result(step).map_err(ApiError::from)
                }
            });
        }
        Ok(answers)
    }
}

/// A compensation, keyed by the saga whose step it undoes: `POST
/// /payment/{refund|reverse_credit}/{saga_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoStep<'a> {
    pub saga_id: &'a str,
}

impl<'a> UndoStep<'a> {
    pub fn parse(saga_id: &'a str) -> Result<Self, ApiError> {
        Ok(Self { saga_id: parse_id("saga_id", saga_id)? })
    }
}

/// `POST /payment/refund/{saga_id}`.
pub type RefundStep<'a> = UndoStep<'a>;
/// `POST /payment/reverse_credit/{saga_id}`.
pub type ReverseCreditStep<'a> = UndoStep<'a>;

/// One saga's credit of an item's owner (the rental saga's step "credit owner"): a saga, a user
/// and an amount, as a charge.
pub type SagaCredit = SagaCharge;

/// An answer of `payment.charge` that this crate does not know: a bug, answered 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOutcome(pub String);

impl fmt::Display for UnknownOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the payment ledger answered an unknown outcome {:?}", self.0)
    }
}

impl std::error::Error for UnknownOutcome {}

impl From<UnknownOutcome> for ApiError {
    fn from(e: UnknownOutcome) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// What `payment.charge` did for a saga (now or on an earlier call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The credit was taken.
    Charged,
    /// Not enough credit (or the user was unknown on an earlier call): nothing taken.
    Refused,
    /// No such user: nothing taken (recorded as refused).
    UnknownUser,
    /// The saga was already refunded or compensated before charging: nothing taken.
    AlreadyRefunded,
}

impl ChargeOutcome {
    pub fn parse(raw: &str) -> Result<Self, UnknownOutcome> {
        match raw {
            "charged" => Ok(ChargeOutcome::Charged),
            "refused" => Ok(ChargeOutcome::Refused),
            "unknown_user" => Ok(ChargeOutcome::UnknownUser),
            "refunded" => Ok(ChargeOutcome::AlreadyRefunded),
            other => Err(UnknownOutcome(other.to_string())),
        }
    }

    /// `Ok` when the credit is (or was already) charged; otherwise the refusal the caller gets:
    /// 404 for an unknown user, 409 for the rest. The saga treats both as a final "no".
    pub fn into_result(self, step: &ChargeStep<'_>) -> Result<(), PaymentError> {
        match self {
            ChargeOutcome::Charged => Ok(()),
            ChargeOutcome::Refused => {
                Err(PaymentError::InsufficientCredit { user_id: step.user_id.to_string(), amount: step.amount })
            }
            ChargeOutcome::UnknownUser => Err(PaymentError::UnknownUser { user_id: step.user_id.to_string() }),
            ChargeOutcome::AlreadyRefunded => {
                Err(PaymentError::SagaAlreadyRefunded { saga_id: step.saga_id.to_string() })
            }
        }
    }
}

/// What `payment.refund` did for a saga, as the endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The charged credit was given back (now or on an earlier call).
    Refunded,
    /// Nothing was ever charged for the saga (never charged, or its charge was refused).
    NothingCharged,
    /// The user's credit cannot take the amount back without overflowing: nothing changed, the
    /// charge stays on record (see `payment.refund` in infra/functions/payment.sql).
    WouldOverflow,
}

impl RefundOutcome {
    pub fn parse(raw: &str) -> Result<Self, UnknownOutcome> {
        match raw {
            "refunded" => Ok(RefundOutcome::Refunded),
            "nothing_charged" | "refused" => Ok(RefundOutcome::NothingCharged),
            "credit_overflow" => Ok(RefundOutcome::WouldOverflow),
            other => Err(UnknownOutcome(other.to_string())),
        }
    }

    /// `Ok` when the refund is done (or there was nothing to give back); otherwise the refusal
    /// the caller gets (409, for good: the saga reads it as the compensation's answer).
    pub fn into_result(self, step: &RefundStep<'_>) -> Result<Self, PaymentError> {
        match self {
            RefundOutcome::WouldOverflow => {
                Err(PaymentError::RefundWouldOverflow { saga_id: step.saga_id.to_string() })
            }
            done => Ok(done),
        }
    }

    /// The `outcome` field of the response.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundOutcome::Refunded => "refunded",
            RefundOutcome::NothingCharged => "nothing_charged",
            RefundOutcome::WouldOverflow => "credit_overflow",
        }
    }
}

/// What `payment.credit` did for a saga (now or on an earlier call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    /// The amount was added to the user's credit.
    Credited,
    /// Refused by an earlier call (an unknown user, or a credit past 2^63 − 1): nothing added.
    Refused,
    /// No such user: nothing added (recorded as refused).
    UnknownUser,
    /// The user's credit cannot take the amount below 2^63 − 1: nothing added (recorded as
    /// refused).
    WouldOverflow,
    /// The saga's credit was reversed before it was made: nothing added.
    Blocked,
    /// The saga's credit was made and reversed already: nothing added again.
    AlreadyReversed,
}

impl CreditOutcome {
    pub fn parse(raw: &str) -> Result<Self, UnknownOutcome> {
        match raw {
            "credited" => Ok(CreditOutcome::Credited),
            "refused" => Ok(CreditOutcome::Refused),
            "unknown_user" => Ok(CreditOutcome::UnknownUser),
            "credit_overflow" => Ok(CreditOutcome::WouldOverflow),
            "blocked" => Ok(CreditOutcome::Blocked),
            "reversed" => Ok(CreditOutcome::AlreadyReversed),
            other => Err(UnknownOutcome(other.to_string())),
        }
    }

    /// `Ok` when the owner is (or was already) credited; otherwise the refusal the caller gets:
    /// 404 for an unknown user, 409 for the rest. The saga treats both as a final "no".
    pub fn into_result(self, step: &CreditStep<'_>) -> Result<(), PaymentError> {
        let saga_id = step.saga_id.to_string();
        match self {
            CreditOutcome::Credited => Ok(()),
            CreditOutcome::Refused => Err(PaymentError::CreditRefused { saga_id }),
            CreditOutcome::UnknownUser => Err(PaymentError::UnknownUser { user_id: step.user_id.to_string() }),
            CreditOutcome::WouldOverflow => {
                Err(PaymentError::CreditWouldOverflow { saga_id, user_id: step.user_id.to_string() })
            }
            CreditOutcome::Blocked => Err(PaymentError::CreditBlocked { saga_id }),
            CreditOutcome::AlreadyReversed => Err(PaymentError::CreditAlreadyReversed { saga_id }),
        }
    }
}

/// What `payment.reverse_credit` did for a saga, as the endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReverseCreditOutcome {
    /// The credited amount was taken back (now or on an earlier call).
    Reversed,
    /// Nothing was ever credited for the saga (its credit was refused, or never made: a late
    /// credit is refused).
    NothingCredited,
    /// The owner no longer has the amount: nothing changed, the credit stays on record (see
    /// `payment.reverse_credit` in infra/functions/payment.sql).
    InsufficientCredit,
}

impl ReverseCreditOutcome {
    pub fn parse(raw: &str) -> Result<Self, UnknownOutcome> {
        match raw {
            "reversed" => Ok(ReverseCreditOutcome::Reversed),
            "nothing_credited" => Ok(ReverseCreditOutcome::NothingCredited),
            "insufficient_credit" => Ok(ReverseCreditOutcome::InsufficientCredit),
            other => Err(UnknownOutcome(other.to_string())),
        }
    }

    /// `Ok` when the reverse is done (or there was nothing to take back); otherwise the refusal
    /// the caller gets (409, for good: the saga reads it as the compensation's answer).
    pub fn into_result(self, step: &ReverseCreditStep<'_>) -> Result<Self, PaymentError> {
        match self {
            ReverseCreditOutcome::InsufficientCredit => {
                Err(PaymentError::ReverseCreditRefused { saga_id: step.saga_id.to_string() })
            }
            done => Ok(done),
        }
    }

    /// The `outcome` field of the response.
    pub fn as_str(self) -> &'static str {
        match self {
            ReverseCreditOutcome::Reversed => "reversed",
            ReverseCreditOutcome::NothingCredited => "nothing_credited",
            ReverseCreditOutcome::InsufficientCredit => "insufficient_credit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_check_their_parameters() {
        assert_eq!(
            ChargeStep::parse("o-1.0.1", "u-7", "25"),
            Ok(ChargeStep { saga_id: "o-1.0.1", user_id: "u-7", amount: 25 })
        );
        for (saga, user, amount) in [
            ("", "u", "3"),
            ("s", "", "3"),
            ("s", "u", "-3"),
            ("s", "u", "abc"),
            ("s", "u", "99999999999999999999"),
            ("a b", "u", "1"),
        ] {
            assert_eq!(
                ChargeStep::parse(saga, user, amount).unwrap_err().status(),
                400,
                "{saga:?} {user:?} {amount:?}"
            );
        }
        assert_eq!(RefundStep::parse("o-1.0.1"), Ok(RefundStep { saga_id: "o-1.0.1" }));
        let batch =
            ChargeManyRequest::parse(br#"{"charges": [{"saga_id": "o-1.0.1", "user_id": "u-7", "amount": 25}]}"#)
                .unwrap();
        assert_eq!(batch.valid(), [ChargeStep { saga_id: "o-1.0.1", user_id: "u-7", amount: 25 }]);
        for bad in [&b"{}"[..], b"[]", br#"{"charges": {}}"#] {
            assert_eq!(ChargeManyRequest::parse(bad).unwrap_err().status(), 400, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(RefundStep::parse("").unwrap_err().status(), 400);
    }

    #[test]
    fn an_invalid_charge_gets_its_own_400_and_the_others_go_on() {
        let body = br#"{"charges": [
            {"saga_id": "a", "user_id": "u", "amount": 5},
            {"saga_id": "s", "user_id": "u", "amount": -1},
            {"saga_id": "", "user_id": "u", "amount": 1},
            {"saga_id": "s", "amount": 1},
            7,
            {"saga_id": "b", "user_id": "v", "amount": 9},
            {"saga_id": "c", "user_id": "w", "amount": 1}
        ]}"#;
        let batch = ChargeManyRequest::parse(body).unwrap();
        let valid: Vec<_> = batch.valid().iter().map(|c| c.saga_id).collect();
        assert_eq!(valid, ["a", "b", "c"], "only the valid ones reach SQL");
        let answers = batch.answers(&["charged".into(), "refused".into(), "unknown_user".into()]).unwrap();
        let statuses: Vec<u16> = answers.iter().map(|a| a.as_ref().map_or_else(|e| e.status(), |()| 200)).collect();
        assert_eq!(statuses, [200, 400, 400, 400, 400, 409, 404]);
        assert_eq!(batch.answers(&["charged".into()]).unwrap_err().status(), 500, "a count that does not match");
        assert_eq!(batch.answers(&["charged".into(), "maybe".into(), "refused".into()]).unwrap_err().status(), 500);
    }

    #[test]
    fn charge_outcomes_map_to_done_or_refusals() {
        let step = ChargeStep { saga_id: "s", user_id: "u", amount: 5 };
        let status =
            |raw: &str| ChargeOutcome::parse(raw).unwrap().into_result(&step).map_err(|e| ApiError::from(e).status());
        assert_eq!(status("charged"), Ok(()));
        assert_eq!(status("refused"), Err(409));
        assert_eq!(status("unknown_user"), Err(404));
        assert_eq!(status("refunded"), Err(409), "a charge after its refund charges nothing and says no");
        assert_eq!(ChargeOutcome::parse("maybe"), Err(UnknownOutcome("maybe".into())));
        assert_eq!(ApiError::from(UnknownOutcome("maybe".into())).status(), 500);
    }

    #[test]
    fn credit_steps_check_their_parameters() {
        assert_eq!(
            CreditStep::parse("rental:r-1", "u-7", "25"),
            Ok(CreditStep { saga_id: "rental:r-1", user_id: "u-7", amount: 25 })
        );
        assert_eq!(CreditStep::parse("s", "u", "0").map(|s| s.amount), Ok(0));
        for (saga, user, amount) in
            [("", "u", "3"), ("s", "", "3"), ("s", "u", "-3"), ("s", "u", "1.5"), ("s", "u", "99999999999999999999")]
        {
            assert_eq!(
                CreditStep::parse(saga, user, amount).unwrap_err().status(),
                400,
                "{saga:?} {user:?} {amount:?}"
            );
        }
        assert_eq!(ReverseCreditStep::parse("rental:r-1"), Ok(ReverseCreditStep { saga_id: "rental:r-1" }));
        assert_eq!(ReverseCreditStep::parse("").unwrap_err().status(), 400);
    }

    #[test]
    fn credit_outcomes_map_to_done_or_refusals() {
        let step = CreditStep { saga_id: "s", user_id: "u", amount: 5 };
        let status =
            |raw: &str| CreditOutcome::parse(raw).unwrap().into_result(&step).map_err(|e| ApiError::from(e).status());
        assert_eq!(status("credited"), Ok(()));
        assert_eq!(status("refused"), Err(409));
        assert_eq!(status("unknown_user"), Err(404));
        assert_eq!(status("credit_overflow"), Err(409));
        assert_eq!(status("blocked"), Err(409), "a credit after its reverse credits nothing and says no");
        assert_eq!(status("reversed"), Err(409));
        let blocked = CreditOutcome::Blocked.into_result(&step).unwrap_err();
        assert!(blocked.to_string().contains("reversed before it was made"), "{blocked}");
        assert_eq!(CreditOutcome::parse("maybe"), Err(UnknownOutcome("maybe".into())));
    }

    #[test]
    fn reverse_credit_outcomes_say_whether_credit_was_taken_back() {
        let step = ReverseCreditStep { saga_id: "s" };
        let answer = |raw: &str| ReverseCreditOutcome::parse(raw).unwrap().into_result(&step);
        assert_eq!(answer("reversed").map(ReverseCreditOutcome::as_str), Ok("reversed"));
        assert_eq!(answer("nothing_credited").map(ReverseCreditOutcome::as_str), Ok("nothing_credited"));
        let short = ApiError::from(answer("insufficient_credit").unwrap_err());
        assert_eq!(short.status(), 409, "a refusal for good, not a failure to retry");
        assert!(short.message().contains("no longer has"), "{short}");
        assert!(ReverseCreditOutcome::parse("credited").is_err());
    }

    #[test]
    fn refund_outcomes_say_whether_credit_came_back() {
        assert_eq!(RefundOutcome::parse("refunded").map(RefundOutcome::as_str), Ok("refunded"));
        assert_eq!(RefundOutcome::parse("nothing_charged").map(RefundOutcome::as_str), Ok("nothing_charged"));
        assert_eq!(RefundOutcome::parse("refused"), Ok(RefundOutcome::NothingCharged));
        assert!(RefundOutcome::parse("charged").is_err());
        let step = RefundStep { saga_id: "s" };
        assert_eq!(RefundOutcome::parse("refunded").unwrap().into_result(&step), Ok(RefundOutcome::Refunded));
        let overflow = RefundOutcome::parse("credit_overflow").unwrap().into_result(&step).unwrap_err();
        assert_eq!(ApiError::from(overflow).status(), 409, "a refusal for good, not a failure to retry");
    }
}
