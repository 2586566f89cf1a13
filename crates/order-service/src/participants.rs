//! The saga's participants as the order service reaches them: stock and payment through their
//! saga-step endpoints (service chaining), and its own orders table for "mark paid".

use order_domain::saga::{ORDER_CHANGED, Outcome, Participants, Plan, Step};
use order_domain::sql;
use spin_kit::chain::{self, Answer};
use spin_kit::pg_store::run;
use spin_sdk::pg::ParameterValue;

pub struct Services;

impl Participants for Services {
    async fn perform(&self, step: Step, plan: &Plan) -> Outcome {
        let saga = &plan.saga_id;
        match step {
            Step::ReserveStock => {
                let body = serde_json::json!({ "items": plan.items }).to_string();
                post(&format!("http://stock-reserve.spin.internal/stock/reserve/{saga}"), body).await
            }
            Step::ChargePayment => {
                let url = format!(
                    "http://payment-charge.spin.internal/payment/charge/{saga}/{}/{}",
                    plan.user_id, plan.total
                );
                post(&url, String::new()).await
            }
            Step::MarkPaid => mark_paid(plan).await,
            Step::RefundPayment => {
                post(&format!("http://payment-refund.spin.internal/payment/refund/{saga}"), String::new()).await
            }
            Step::ReleaseStock => {
                post(&format!("http://stock-release.spin.internal/stock/release/{saga}"), String::new()).await
            }
        }
    }
}

/// 2xx: done; 404 or 409: refused (the participant said no, for good); 400 or 422: invalid (the
/// request can never be done); anything else: transient.
async fn post(url: &str, body: String) -> Outcome {
    match chain::call(http::Method::POST, url, body).await {
        Ok(answer) => classify(&answer),
        Err(e) => Outcome::Transient(e),
    }
}

fn classify(answer: &Answer) -> Outcome {
    classify_status(answer.status, answer.message())
}

/// A participant's answer (status and message) as a step's outcome: 2xx done; 404 or 409
/// refused, for good; 400 or 422 invalid, for good (the participant will never take this
/// request: e.g. more lines than a reservation holds, quantities that overflow); anything else
/// transient (it may work when retried).
pub fn classify_status(status: u16, message: String) -> Outcome {
    match status {
        200..=299 => Outcome::Done,
        404 | 409 => Outcome::Refused(message),
        400 | 422 => Outcome::Invalid(message),
        s => Outcome::Transient(format!("HTTP {s}: {message}")),
    }
}

async fn mark_paid(plan: &Plan) -> Outcome {
    let params = [
        ParameterValue::Str(plan.order_id.clone()),
        ParameterValue::Int64(plan.generation),
        ParameterValue::Str(plan.saga_id.clone()),
        ParameterValue::Int64(plan.items.len() as i64),
    ];
    match run(sql::MARK_PAID, params).await {
        Ok(Ok(rows)) if rows.is_empty() => Outcome::Refused(ORDER_CHANGED.into()),
        Ok(Ok(_)) => Outcome::Done,
        Ok(Err(e)) => Outcome::Transient(format!("Postgres: {e}")),
        Err(e) => Outcome::Transient(e.message()),
    }
}
