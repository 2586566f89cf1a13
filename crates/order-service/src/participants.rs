//! The sagas' participants as the order service reaches them: stock and payment through their
//! saga-step endpoints (service chaining), and its own tables for "mark paid" (orders) and the
//! rental's steps (rentals).

use market_core::service_call::ServiceCall;
use order_domain::rental::{RENTAL_CANCELLED, RENTAL_NOT_ACTIVE, RentalPlan};
use order_domain::saga::{ORDER_CHANGED, Outcome, Participants, Plan, Step};
use order_domain::sql;
use payment_domain::client as payment;
use payment_domain::saga::{SagaCharge, SagaCredit};
use spin_kit::chain;
use spin_kit::pg_store::query_unmapped;
use spin_sdk::pg::{ParameterValue, Row};
use stock_domain::client as stock;
use stock_domain::reservation::{ReserveRequest, SagaReservation};

pub struct Services;

impl Participants for Services {
    async fn perform(&self, step: Step, plan: &Plan) -> Outcome {
        let saga = &plan.saga_id;
        match step {
            Step::ReserveStock => step_call(stock::reserve(saga, &reserve_lines(plan))).await,
            Step::ChargePayment => step_call(payment::charge(&saga_charge(plan))).await,
            Step::MarkPaid => mark_paid(plan).await,
            Step::RefundPayment => step_call(payment::refund(saga)).await,
            Step::ReleaseStock => step_call(stock::release(saga)).await,
            other => Outcome::Invalid(format!("{} is not a step of a checkout", other.name())),
        }
    }
}

/// A rental's and a return's participants: the stock unit and the money are keyed by the
/// rental's saga id in both (the return releases the unit the rental reserved); the rental's
/// row is the order service's own.
impl Participants<RentalPlan> for Services {
    async fn perform(&self, step: Step, plan: &RentalPlan) -> Outcome {
        self.perform_because(step, plan, None).await
    }

    async fn perform_because(&self, step: Step, plan: &RentalPlan, reason: Option<String>) -> Outcome {
        let saga = &plan.rental_saga_id();
        match step {
            Step::RecordRental => {
                own_step(sql::RECORD_RENTAL, rental_params(plan, None), |row| match row {
                    Some(row) if row.get::<String>("state").as_deref() == Some("failed") => {
                        Outcome::Refused(row.get("reason").unwrap_or_else(|| RENTAL_CANCELLED.into()))
                    }
                    Some(_) => Outcome::Done,
                    None => Outcome::Transient("record rental answered no row".into()),
                })
                .await
            }
            Step::CancelRental => {
                let why = reason.unwrap_or_else(|| RENTAL_CANCELLED.into());
                own_step(sql::CANCEL_RENTAL, rental_params(plan, Some(why)), |_| Outcome::Done).await
            }
            Step::ReserveStock => {
                let unit = ReserveRequest { items: vec![(plan.item_id.clone(), 1)] };
                step_call(stock::reserve(saga, &unit)).await
            }
            Step::ReleaseStock => step_call(stock::release(saga)).await,
            Step::ChargePayment => {
                let charge =
                    SagaCharge { saga_id: saga.clone(), user_id: plan.borrower_id.clone(), amount: plan.amount };
                step_call(payment::charge(&charge)).await
            }
            Step::RefundPayment => step_call(payment::refund(saga)).await,
            Step::CreditOwner => {
                let credit = SagaCredit { saga_id: saga.clone(), user_id: plan.owner_id.clone(), amount: plan.amount };
                step_call(payment::credit(&credit)).await
            }
            Step::ReverseCredit => step_call(payment::reverse_credit(saga)).await,
            Step::MarkActive => update_rental(sql::MARK_ACTIVE, plan, RENTAL_CANCELLED).await,
            Step::MarkReturned => update_rental(sql::MARK_RETURNED, plan, RENTAL_NOT_ACTIVE).await,
            other => Outcome::Invalid(format!("{} is not a step of a rental", other.name())),
        }
    }
}

/// The rental's columns as RECORD_RENTAL and CANCEL_RENTAL take them (`$1`..`$7`), and the
/// reason (`$8`) of a cancellation.
fn rental_params(plan: &RentalPlan, reason: Option<String>) -> Vec<ParameterValue> {
    let mut params = vec![
        ParameterValue::Str(plan.rental_id.clone()),
        ParameterValue::Str(plan.item_id.clone()),
        ParameterValue::Str(plan.borrower_id.clone()),
        ParameterValue::Str(plan.owner_id.clone()),
        ParameterValue::Int64(plan.days),
        ParameterValue::Int64(plan.daily_price),
        ParameterValue::Int64(plan.amount),
    ];
    params.extend(reason.map(ParameterValue::Str));
    params
}

/// One statement on the order service's own tables as a saga step: `outcome` makes the step's
/// outcome from the first row the statement returned, if any; a Postgres failure is transient.
async fn own_step(
    statement: &str,
    params: Vec<ParameterValue>,
    outcome: impl FnOnce(Option<&Row>) -> Outcome,
) -> Outcome {
    match query_unmapped(statement, params).await {
        Ok(Ok(rows)) => outcome(rows.first()),
        Ok(Err(e)) => Outcome::Transient(format!("Postgres: {e}")),
        Err(e) => Outcome::Transient(e.message()),
    }
}

/// A step that updates one rental (`$1` its id): done if the statement returned its row, else
/// refused for `refusal`.
async fn update_rental(statement: &str, plan: &RentalPlan, refusal: &str) -> Outcome {
    own_step(statement, vec![ParameterValue::Str(plan.rental_id.clone())], |row| match row {
        Some(_) => Outcome::Done,
        None => Outcome::Refused(refusal.into()),
    })
    .await
}

/// The saga's lines as the stock service reserves them.
pub(crate) fn reserve_lines(plan: &Plan) -> ReserveRequest {
    ReserveRequest { items: plan.items.iter().map(|line| (line.0.clone(), line.1)).collect() }
}

/// The saga's reservation in a batch of reserves.
pub(crate) fn saga_reservation(plan: &Plan) -> SagaReservation {
    SagaReservation { saga_id: plan.saga_id.clone(), lines: reserve_lines(plan) }
}

/// The saga's charge as the payment service takes it.
pub(crate) fn saga_charge(plan: &Plan) -> SagaCharge {
    SagaCharge { saga_id: plan.saga_id.clone(), user_id: plan.user_id.clone(), amount: plan.total }
}

/// One saga step's call to a participant, its answer as the step's outcome.
async fn step_call(call: ServiceCall) -> Outcome {
    match chain::call(call).await {
        Ok(answer) => classify_status(answer.status, answer.message()),
        Err(e) => Outcome::Transient(e),
    }
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
    own_step(sql::MARK_PAID, params.into(), |row| match row {
        Some(_) => Outcome::Done,
        None => Outcome::Refused(ORDER_CHANGED.into()),
    })
    .await
}
