//! How other services call the payment service: the calls (component URL, request body) and
//! the answers they read. The request types are the ones the payment service's own endpoints
//! parse, so the two sides cannot drift apart.

use crate::saga::{SagaCharge, SagaCredit};
use market_core::service_call::ServiceCall;
use serde::Serialize;

/// `GET /payment/find_user/:user_id`: 200 with the user, 404 if unknown.
pub fn find_user(user_id: &str) -> ServiceCall {
    ServiceCall::get(format!("http://payment-find-user.spin.internal/payment/find_user/{user_id}"))
}

/// `POST /payment/open_account/:user_id` (private): opens the account of a user the accounts
/// service registered, with its id and credit 0; 200 whether it opens it or it was open.
pub fn open_account(user_id: &str) -> ServiceCall {
    ServiceCall::post(format!("http://payment-open-account.spin.internal/payment/open_account/{user_id}"))
}

/// The saga step "charge": `POST /payment/charge/:saga_id/:user_id/:amount`.
pub fn charge(charge: &SagaCharge) -> ServiceCall {
    let SagaCharge { saga_id, user_id, amount } = charge;
    ServiceCall::post(format!("http://payment-charge.spin.internal/payment/charge/{saga_id}/{user_id}/{amount}"))
}

/// The "charge" step of several sagas in one call: `POST /payment/charge_many`, answered with a
/// [`market_core::service_call::BatchAnswer`] in the charges' order.
pub fn charge_many(charges: &[SagaCharge]) -> ServiceCall {
    #[derive(Serialize)]
    struct Body<'a> {
        charges: &'a [SagaCharge],
    }
    ServiceCall::post_json("http://payment-charge-many.spin.internal/payment/charge_many".into(), &Body { charges })
}

/// The saga compensation "refund": `POST /payment/refund/:saga_id`.
pub fn refund(saga_id: &str) -> ServiceCall {
    ServiceCall::post(format!("http://payment-refund.spin.internal/payment/refund/{saga_id}"))
}

/// The rental saga's step "credit owner": `POST /payment/credit/:saga_id/:user_id/:amount`.
pub fn credit(credit: &SagaCredit) -> ServiceCall {
    let SagaCredit { saga_id, user_id, amount } = credit;
    ServiceCall::post(format!("http://payment-credit.spin.internal/payment/credit/{saga_id}/{user_id}/{amount}"))
}

/// The rental saga's compensation "reverse credit": `POST /payment/reverse_credit/:saga_id`.
pub fn reverse_credit(saga_id: &str) -> ServiceCall {
    ServiceCall::post(format!("http://payment-reverse-credit.spin.internal/payment/reverse_credit/{saga_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saga::ChargeManyRequest;

    #[test]
    fn the_payment_service_parses_what_its_client_sends() {
        let charges = vec![
            SagaCharge { saga_id: "a.0.0".into(), user_id: "u".into(), amount: 5 },
            SagaCharge { saga_id: "b.0.0".into(), user_id: "v".into(), amount: 0 },
        ];
        let parsed = ChargeManyRequest::parse(charge_many(&charges).body.as_bytes());
        assert_eq!(parsed.map(|r| r.charges), Ok(charges.iter().cloned().map(Ok).collect()));
        assert_eq!(charge(&charges[0]).url, "http://payment-charge.spin.internal/payment/charge/a.0.0/u/5");
    }

    #[test]
    fn the_credit_steps_reach_their_components() {
        let owed = SagaCredit { saga_id: "rental:r-1".into(), user_id: "u".into(), amount: 7 };
        assert_eq!(credit(&owed).url, "http://payment-credit.spin.internal/payment/credit/rental:r-1/u/7");
        assert_eq!(
            reverse_credit("rental:r-1").url,
            "http://payment-reverse-credit.spin.internal/payment/reverse_credit/rental:r-1"
        );
    }
}
