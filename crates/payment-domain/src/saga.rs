//! The payment service's steps in the checkout saga: `charge` (forward) and `refund`
//! (compensation), both idempotent per saga id. The rules live in the server-side functions
//! `payment.charge` and `payment.refund` (migration 0002); this module parses the requests and
//! what those functions answer.
//!
//! The two steps are private routes, reached only through Spin's service chaining. Spin matches no
//! route pattern for such a request, so it passes no `spin-path-match-*` headers: the parameters
//! are read from the request path itself (`…/charge/{saga_id}/{user_id}/{amount}`,
//! `…/refund/{saga_id}`).

use crate::PaymentError;
use market_core::{ApiError, parse_id, parse_non_negative};
use std::fmt;

/// `POST /payment/charge/{saga_id}/{user_id}/{amount}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeStep<'a> {
    pub saga_id: &'a str,
    pub user_id: &'a str,
    pub amount: i64,
}

impl<'a> ChargeStep<'a> {
    pub fn parse(saga_id: &'a str, user_id: &'a str, amount: &str) -> Result<Self, ApiError> {
        Ok(Self {
            saga_id: parse_id("saga_id", saga_id)?,
            user_id: parse_id("user_id", user_id)?,
            amount: parse_non_negative("amount", amount)?,
        })
    }

    /// Reads the parameters from a path ending in `/charge/{saga_id}/{user_id}/{amount}`.
    pub fn from_path(path: &'a str) -> Result<Self, ApiError> {
        let [saga_id, user_id, amount] = segments_after(path, "charge")?;
        Self::parse(saga_id, user_id, amount)
    }
}

/// `POST /payment/refund/{saga_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundStep<'a> {
    pub saga_id: &'a str,
}

impl<'a> RefundStep<'a> {
    pub fn parse(saga_id: &'a str) -> Result<Self, ApiError> {
        Ok(Self { saga_id: parse_id("saga_id", saga_id)? })
    }

    /// Reads the parameter from a path ending in `/refund/{saga_id}`.
    pub fn from_path(path: &'a str) -> Result<Self, ApiError> {
        let [saga_id] = segments_after(path, "refund")?;
        Self::parse(saga_id)
    }
}

/// The last `N` segments of `path`, which must follow a segment named `step`.
fn segments_after<'a, const N: usize>(path: &'a str, step: &str) -> Result<[&'a str; N], ApiError> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let shape_error = || {
        ApiError::BadRequest(format!("the path must end in /{step}/ and {N} parameter(s), got {path:?}"))
    };
    let start = segments.len().checked_sub(N).filter(|s| *s >= 1).ok_or_else(shape_error)?;
    if segments[start - 1] != step {
        return Err(shape_error());
    }
    <[&str; N]>::try_from(&segments[start..]).map_err(|_| shape_error())
}

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
            ChargeOutcome::Refused => Err(PaymentError::InsufficientCredit {
                user_id: step.user_id.to_string(),
                amount: step.amount,
            }),
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
}

impl RefundOutcome {
    pub fn parse(raw: &str) -> Result<Self, UnknownOutcome> {
        match raw {
            "refunded" => Ok(RefundOutcome::Refunded),
            "nothing_charged" | "refused" => Ok(RefundOutcome::NothingCharged),
            other => Err(UnknownOutcome(other.to_string())),
        }
    }

    /// The `outcome` field of the response.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundOutcome::Refunded => "refunded",
            RefundOutcome::NothingCharged => "nothing_charged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_parameters_are_read_from_the_path() {
        let step = ChargeStep::from_path("/payment/charge/o-1.0.1/u-7/25").unwrap();
        assert_eq!(step, ChargeStep { saga_id: "o-1.0.1", user_id: "u-7", amount: 25 });
        assert_eq!(ChargeStep::from_path("/payment/charge/s/u/3?x=1").unwrap().amount, 3);
    }

    #[test]
    fn charge_paths_of_the_wrong_shape_or_values_are_400() {
        for path in [
            "/payment/charge/s/u",
            "/payment/charge/s/u/3/extra",
            "/payment/refund/s/u/3",
            "/payment/charge//u/3",
            "/payment/charge/s/u/-3",
            "/payment/charge/s/u/abc",
            "/payment/charge/s/u/99999999999999999999",
            "charge",
            "",
        ] {
            assert_eq!(ChargeStep::from_path(path).unwrap_err().status(), 400, "{path:?}");
        }
    }

    #[test]
    fn refund_parameters_are_read_from_the_path() {
        assert_eq!(RefundStep::from_path("/payment/refund/o-1.0.1").unwrap().saga_id, "o-1.0.1");
        for path in ["/payment/refund", "/payment/refund/", "/payment/refund/a/b", "/payment/charge/a", "/x"] {
            assert_eq!(RefundStep::from_path(path).unwrap_err().status(), 400, "{path:?}");
        }
    }

    #[test]
    fn charge_outcomes_map_to_done_or_refusals() {
        let step = ChargeStep { saga_id: "s", user_id: "u", amount: 5 };
        let status = |raw: &str| {
            ChargeOutcome::parse(raw).unwrap().into_result(&step).map_err(|e| ApiError::from(e).status())
        };
        assert_eq!(status("charged"), Ok(()));
        assert_eq!(status("refused"), Err(409));
        assert_eq!(status("unknown_user"), Err(404));
        assert_eq!(status("refunded"), Err(409), "a charge after its refund charges nothing and says no");
        assert_eq!(ChargeOutcome::parse("maybe"), Err(UnknownOutcome("maybe".into())));
        assert_eq!(ApiError::from(UnknownOutcome("maybe".into())).status(), 500);
    }

    #[test]
    fn refund_outcomes_say_whether_credit_came_back() {
        assert_eq!(RefundOutcome::parse("refunded").map(RefundOutcome::as_str), Ok("refunded"));
        assert_eq!(RefundOutcome::parse("nothing_charged").map(RefundOutcome::as_str), Ok("nothing_charged"));
        assert_eq!(RefundOutcome::parse("refused"), Ok(RefundOutcome::NothingCharged));
        assert!(RefundOutcome::parse("charged").is_err());
    }
}
