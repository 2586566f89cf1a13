//! The forward steps of a batch of sagas: their reserves go to the stock service together
//! (`/stock/reserve_many`: one chained call, one statement), then the charges of those reserved
//! go to the payment service together (`/payment/charge_many`), then the orders of those charged
//! are marked paid in one statement (one synchronous commit): three calls and statements per
//! batch instead of per saga. [`crate::batch_queue`] decides which sagas form a batch.
//!
//! Nothing here is truth: each saga still has its own record and lease in Redis and its own
//! ledger rows (keyed by saga id), and the saga's driver ([`order_domain::saga::drive`]) takes
//! the batch's answers as the outcomes of its first three steps ([`AnsweredSteps`]). A step that
//! failed transiently in the batch is retried by the driver on its own, through the single-saga
//! endpoints; compensations are never batched.

use crate::participants::{Services, classify_status, saga_charge, saga_reservation};
use market_core::service_call::ServiceCall;
use order_domain::saga::{ORDER_CHANGED, Outcome, Participants, Plan, Step, StepAnswers};
use order_domain::sql;
use payment_domain::client as payment;
use spin_kit::chain;
use spin_kit::pg_store::query_texts;
use spin_sdk::pg::ParameterValue;
use std::cell::RefCell;
use stock_domain::client as stock;
use stock_domain::reservation::SagaReservation;

/// Most bytes of sagas' lines in one `/stock/reserve_many` body: half of what an endpoint reads
/// ([`spin_kit::body::MAX_BODY_BYTES`]). A batch of large orders (up to 1 000 lines each) is
/// sent in several calls rather than refused whole for its size.
const MAX_RESERVE_BODY_BYTES: usize = spin_kit::body::MAX_BODY_BYTES / 2;

/// Reserves for the whole batch, charges those reserved, marks paid the orders of those charged:
/// each saga's answers, in the batch's order.
pub(crate) async fn send_batch(batch: Vec<Plan>) -> Vec<StepAnswers> {
    let mut reserves = Vec::with_capacity(batch.len());
    for sagas in by_body_size(&batch) {
        reserves.extend(call_batch_endpoint(stock::reserve_many(&sagas), sagas.len()).await);
    }
    let reserved: Vec<usize> = (0..batch.len()).filter(|&i| matches!(reserves[i], Outcome::Done)).collect();
    let mut charges: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
    if !reserved.is_empty() {
        let list: Vec<_> = reserved.iter().map(|&i| saga_charge(&batch[i])).collect();
        let answers = call_batch_endpoint(payment::charge_many(&list), list.len()).await;
        for (&i, answer) in reserved.iter().zip(answers) {
            charges[i] = Some(answer);
        }
    }
    let charged: Vec<usize> = (0..batch.len()).filter(|&i| matches!(charges[i], Some(Outcome::Done))).collect();
    let mut marks: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
    if !charged.is_empty() {
        let plans: Vec<&Plan> = charged.iter().map(|&i| &batch[i]).collect();
        for (&i, outcome) in charged.iter().zip(mark_paid_many(&plans).await) {
            marks[i] = Some(outcome);
        }
    }
    reserves
        .into_iter()
        .zip(charges)
        .zip(marks)
        .map(|((reserve, charge), mark_paid)| StepAnswers { reserve, charge, mark_paid })
        .collect()
}

/// The batch's reservations, in order, in groups of at most [`MAX_RESERVE_BODY_BYTES`] (a saga
/// larger than that alone is a group of its own).
fn by_body_size(batch: &[Plan]) -> Vec<Vec<SagaReservation>> {
    let mut groups: Vec<Vec<SagaReservation>> = Vec::new();
    let mut size = 0;
    for plan in batch {
        let entry = saga_reservation(plan);
        let bytes = serde_json::to_string(&entry).map(|json| json.len()).unwrap_or(0) + 1;
        match groups.last_mut() {
            Some(group) if size + bytes <= MAX_RESERVE_BODY_BYTES => group.push(entry),
            _ => {
                groups.push(vec![entry]);
                size = 0;
            }
        }
        size += bytes;
    }
    groups
}

/// "Mark paid" for several sagas in one statement: each as [`crate::participants`] would.
async fn mark_paid_many(plans: &[&Plan]) -> Vec<Outcome> {
    let params = vec![
        ParameterValue::ArrayStr(plans.iter().map(|p| Some(p.order_id.clone())).collect()),
        ParameterValue::ArrayInt64(plans.iter().map(|p| Some(p.generation)).collect()),
        ParameterValue::ArrayStr(plans.iter().map(|p| Some(p.saga_id.clone())).collect()),
        ParameterValue::ArrayInt64(plans.iter().map(|p| Some(p.items.len() as i64)).collect()),
    ];
    let paid: Vec<String> = match query_texts(sql::MARK_PAID_MANY, params, "saga").await {
        Ok(paid) => paid,
        Err(e) => return plans.iter().map(|_| Outcome::Transient(e.message())).collect(),
    };
    plans
        .iter()
        .map(|p| if paid.contains(&p.saga_id) { Outcome::Done } else { Outcome::Refused(ORDER_CHANGED.into()) })
        .collect()
}

/// One call to a batch endpoint of `n` sagas: each saga's outcome, or the same transient error
/// for all.
async fn call_batch_endpoint(call: ServiceCall, n: usize) -> Vec<Outcome> {
    let all = |e: String| (0..n).map(|_| Outcome::Transient(e.clone())).collect();
    let url = call.url.clone();
    let answer = match chain::call(call).await {
        Ok(answer) => answer,
        Err(e) => return all(e),
    };
    match answer.outcomes() {
        Some(list) if list.len() == n => list.into_iter().map(|a| classify_status(a.status, a.message)).collect(),
        Some(list) => all(format!("{url}: {} answers for {n} sagas", list.len())),
        None => all(format!("HTTP {}: {}", answer.status, answer.message())),
    }
}

/// The saga's participants, with the batch's answers standing in for its first reserve, charge
/// and mark paid; every other call (retries, compensations) goes to [`Services`].
pub struct AnsweredSteps {
    reserve: RefCell<Option<Outcome>>,
    charge: RefCell<Option<Outcome>>,
    mark_paid: RefCell<Option<Outcome>>,
}

impl AnsweredSteps {
    pub fn new(answers: StepAnswers) -> Self {
        AnsweredSteps {
            reserve: RefCell::new(Some(answers.reserve)),
            charge: RefCell::new(answers.charge),
            mark_paid: RefCell::new(answers.mark_paid),
        }
    }
}

impl Participants for AnsweredSteps {
    async fn perform(&self, step: Step, plan: &Plan) -> Outcome {
        let ready = match step {
            Step::ReserveStock => self.reserve.borrow_mut().take(),
            Step::ChargePayment => self.charge.borrow_mut().take(),
            Step::MarkPaid => self.mark_paid.borrow_mut().take(),
            _ => None,
        };
        match ready {
            Some(outcome) => outcome,
            None => Services.perform(step, plan).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use order_domain::order::Line;

    fn plan(i: usize, lines: usize) -> Plan {
        let items = (0..lines).map(|k| Line(format!("{k:036}"), 1)).collect();
        Plan {
            saga_id: format!("o{i}.0.0"),
            order_id: format!("o{i}"),
            generation: 0,
            attempt: 0,
            user_id: "u".into(),
            items,
            total: 1,
        }
    }

    #[test]
    fn large_batches_of_reserves_are_split_by_body_size_in_order() {
        let small: Vec<Plan> = (0..64).map(|i| plan(i, 2)).collect();
        assert_eq!(by_body_size(&small).len(), 1, "a usual batch is one call");
        let large: Vec<Plan> = (0..64).map(|i| plan(i, 1000)).collect();
        let groups = by_body_size(&large);
        assert!(groups.len() > 1);
        for group in &groups {
            let body = stock::reserve_many(group).body;
            assert!(body.len() <= MAX_RESERVE_BODY_BYTES + 20, "{}", body.len());
        }
        let ids: Vec<String> = groups.iter().flatten().map(|e| e.saga_id.clone()).collect();
        assert_eq!(ids, large.iter().map(|p| p.saga_id.clone()).collect::<Vec<_>>());
        assert_eq!(by_body_size(&[plan(0, 20_000), plan(1, 1)]).len(), 2, "a huge saga goes alone");
    }
}
