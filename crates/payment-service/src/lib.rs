//! The payment service's endpoints (one component each): `create_user`, `find_user`,
//! `add_funds`, `pay`, `batch_init`, `open_account` (private: the accounts service's register), and the checkout saga's participant steps `charge` (also
//! batched: `charge_many`) and `refund`, and the rental saga's `credit` and `reverse_credit` (private routes, reached
//! through service chaining). Each handler parses its parameters with `payment-domain` and reads or changes Postgres
//! (schema `payment`, the only truth; no cache) in one statement.

use market_core::{ApiError, parse_id};
use payment_domain::{
    BatchInit, ChargeManyRequest, ChargeOutcome, CreditChange, CreditOutcome, MoneyStep, PaymentError, RefundOutcome,
    ReverseCreditOutcome, UndoStep, User, sql,
};
use spin_kit::pg_store::{
    create_returning, execute, pg_failure, query, query_text, query_texts, query_unmapped, sqlstate,
    vacuum_after_bulk_write,
};
use spin_kit::{Reply, Request, auth, respond, route};
use spin_sdk::pg::{ParameterValue, Row};

/// `POST /payment/create_user` → `{"user_id": "<uuid>"}`, with credit 0. Where tokens are
/// required, only an admin may (a user's account is opened by its registration).
pub async fn create_user(req: Request) -> Result<Reply, ApiError> {
    auth::require_admin(&req).await?;
    create_returning(sql::CREATE_USER, vec![], "user_id").await
}

/// `POST /payment/open_account/:user_id` (private, reached by the accounts service's register):
/// opens the account with that id and credit 0 → `{"user_id", "opened"}` (`opened` false when it
/// was already open: a retried registration opens nothing twice).
pub async fn open_account(req: Request) -> Result<Reply, ApiError> {
    let user_id = parse_id("user_id", route::param(&req, "user_id")?)?;
    let opened = query(sql::OPEN_ACCOUNT, vec![ParameterValue::Str(user_id.to_string())]).await?;
    let opened: bool = opened.first().and_then(|row| row.get("opened")).unwrap_or(false);
    Ok(respond::ok(&serde_json::json!({ "user_id": user_id, "opened": opened })))
}

/// `GET /payment/find_user/:user_id` → `{"user_id": "...", "credit": n}`.
pub async fn find_user(req: Request) -> Result<Reply, ApiError> {
    let user_id = parse_id("user_id", route::param(&req, "user_id")?)?;
    auth::require_user(&req, user_id).await?;
    let rows = query(sql::FIND_USER, vec![ParameterValue::Str(user_id.to_string())]).await?;
    let row = rows.first().ok_or_else(|| PaymentError::UnknownUser { user_id: user_id.to_string() })?;
    Ok(respond::ok(&User { user_id: user_id.to_string(), credit: credit_column(row)? }))
}

/// `POST /payment/add_funds/:user_id/:amount` → the user with the new credit; 400 on overflow.
pub async fn add_funds(req: Request) -> Result<Reply, ApiError> {
    let change = CreditChange::parse(route::param(&req, "user_id")?, route::param(&req, "amount")?)?;
    auth::require_user(&req, change.user_id).await?;
    let rows = match query_unmapped(sql::ADD_FUNDS, change_params(&change)).await? {
        Err(e) if sqlstate(&e) == Some(sql::NUMERIC_OUT_OF_RANGE) => {
            return Err(PaymentError::CreditOverflow { user_id: change.user_id.to_string() }.into());
        }
        other => other.map_err(pg_failure)?,
    };
    let row = rows.first().ok_or_else(|| PaymentError::UnknownUser { user_id: change.user_id.to_string() })?;
    Ok(respond::ok(&User { user_id: change.user_id.to_string(), credit: credit_column(row)? }))
}

/// `POST /payment/pay/:user_id/:amount` → the user with the new credit; 409 (nothing changed)
/// when the credit would go below zero.
pub async fn pay(req: Request) -> Result<Reply, ApiError> {
    let change = CreditChange::parse(route::param(&req, "user_id")?, route::param(&req, "amount")?)?;
    auth::require_user(&req, change.user_id).await?;
    let rows = query(sql::PAY, change_params(&change)).await?;
    match rows.first() {
        Some(row) => Ok(respond::ok(&User { user_id: change.user_id.to_string(), credit: credit_column(row)? })),
        None => Err(refusal_reason(&change).await?.into()),
    }
}

/// `POST /payment/batch_init/:n/:starting_money`: users "0".."n-1", in one statement. An admin
/// route: 404 where `admin_routes` is off.
pub async fn batch_init(req: Request) -> Result<Reply, ApiError> {
    spin_kit::admin::require_admin_routes().await?;
    auth::require_admin(&req).await?;
    let batch = BatchInit::parse(route::param(&req, "n")?, route::param(&req, "starting_money")?)?;
    let params = vec![ParameterValue::Int64(batch.n), ParameterValue::Int64(batch.starting_money)];
    execute(sql::BATCH_INIT, params).await?;
    vacuum_after_bulk_write(sql::VACUUM_USERS).await;
    Ok(respond::ok(&serde_json::json!({ "msg": "Batch init for users successful", "n": batch.n })))
}

/// `POST /payment/charge/:saga_id/:user_id/:amount` (saga step, idempotent per saga):
/// 200 `{"outcome": "charged"}`; 409 when refused (not enough credit, or the saga was already
/// refunded); 404 for an unknown user (also a refusal).
pub async fn charge(req: Request) -> Result<Reply, ApiError> {
    let (step, raw) = money_step(&req, sql::CHARGE).await?;
    ChargeOutcome::parse(&raw)?.into_result(&step)?;
    Ok(respond::ok(&serde_json::json!({ "outcome": "charged" })))
}

/// A step that moves an amount (`:saga_id/:user_id/:amount`), run by its SQL function
/// `statement`: the step, and the function's outcome.
async fn money_step<'a>(req: &'a Request, statement: &str) -> Result<(MoneyStep<'a>, String), ApiError> {
    let step =
        MoneyStep::parse(route::param(req, "saga_id")?, route::param(req, "user_id")?, route::param(req, "amount")?)?;
    let params = vec![
        ParameterValue::Str(step.saga_id.to_string()),
        ParameterValue::Str(step.user_id.to_string()),
        ParameterValue::Int64(step.amount),
    ];
    let outcome = query_text(statement, params, "outcome").await?;
    Ok((step, outcome))
}

/// A compensation (`:saga_id`), run by its SQL function `statement`: the step, and the
/// function's outcome.
async fn undo_step<'a>(req: &'a Request, statement: &str) -> Result<(UndoStep<'a>, String), ApiError> {
    let step = UndoStep::parse(route::param(req, "saga_id")?)?;
    let outcome = query_text(statement, vec![ParameterValue::Str(step.saga_id.to_string())], "outcome").await?;
    Ok((step, outcome))
}

/// `POST /payment/charge_many` with `{"charges": [{"saga_id", "user_id", "amount"}, ...]}`: the
/// `charge` step of several sagas in one statement, each on its own. 200 `{"outcomes": [...]}`,
/// one per saga in order, each as `charge` would have answered it (`{"status": 200}`, 409 / 404
/// with the reason, or 400 for a charge that is invalid: that one is left out of the statement,
/// the others are charged as if it were not there).
pub async fn charge_many(req: Request) -> Result<Reply, ApiError> {
    let batch = ChargeManyRequest::parse(&spin_kit::body::bytes(req).await?)?;
    let valid = batch.valid();
    let outcomes = if valid.is_empty() {
        Vec::new()
    } else {
        let params = vec![
            ParameterValue::ArrayStr(valid.iter().map(|c| Some(c.saga_id.to_string())).collect()),
            ParameterValue::ArrayStr(valid.iter().map(|c| Some(c.user_id.to_string())).collect()),
            ParameterValue::ArrayInt64(valid.iter().map(|c| Some(c.amount)).collect()),
        ];
        query_texts(sql::CHARGE_MANY, params, "o_outcome").await?
    };
    Ok(respond::outcomes(batch.answers(&outcomes)?))
}

/// `POST /payment/refund/:saga_id` (saga compensation, idempotent per saga): gives back what the
/// saga charged; 200 `{"outcome": "refunded" | "nothing_charged"}`; 409 (for good: nothing
/// changed, the charge stays on record) when the credit cannot take the amount back without
/// overflowing.
pub async fn refund(req: Request) -> Result<Reply, ApiError> {
    let (step, raw) = undo_step(&req, sql::REFUND).await?;
    let outcome = RefundOutcome::parse(&raw)?.into_result(&step)?;
    Ok(respond::ok(&serde_json::json!({ "outcome": outcome.as_str() })))
}

/// `POST /payment/credit/:saga_id/:user_id/:amount` (the rental saga's step "credit owner",
/// idempotent per saga): adds the amount to the user's credit once; 200 `{"outcome":
/// "credited"}`; 409 when refused (the credit would pass 2^63 − 1, or the saga's credit was
/// already reversed, or was reversed before it was made); 404 for an unknown user (also a
/// refusal).
pub async fn credit(req: Request) -> Result<Reply, ApiError> {
    let (step, raw) = money_step(&req, sql::CREDIT).await?;
    CreditOutcome::parse(&raw)?.into_result(&step)?;
    Ok(respond::ok(&serde_json::json!({ "outcome": "credited" })))
}

/// `POST /payment/reverse_credit/:saga_id` (the compensation of "credit owner", idempotent per
/// saga): takes back what the saga credited; 200 `{"outcome": "reversed" | "nothing_credited"}`
/// (nothing credited: a late credit of the saga is then refused); 409 (for good: nothing
/// changed, the credit stays on record) when the owner no longer has the amount.
pub async fn reverse_credit(req: Request) -> Result<Reply, ApiError> {
    let (step, raw) = undo_step(&req, sql::REVERSE_CREDIT).await?;
    let outcome = ReverseCreditOutcome::parse(&raw)?.into_result(&step)?;
    Ok(respond::ok(&serde_json::json!({ "outcome": outcome.as_str() })))
}

/// After a refused `pay`: was the user unknown, or short of credit?
async fn refusal_reason(change: &CreditChange<'_>) -> Result<PaymentError, ApiError> {
    let rows = query(sql::USER_EXISTS, vec![ParameterValue::Str(change.user_id.to_string())]).await?;
    let user_id = change.user_id.to_string();
    Ok(if rows.is_empty() {
        PaymentError::UnknownUser { user_id }
    } else {
        PaymentError::InsufficientCredit { user_id, amount: change.amount }
    })
}

fn change_params(change: &CreditChange<'_>) -> Vec<ParameterValue> {
    vec![ParameterValue::Str(change.user_id.to_string()), ParameterValue::Int64(change.amount)]
}

fn credit_column(row: &Row) -> Result<i64, ApiError> {
    row.get::<i64>("credit").ok_or_else(|| ApiError::Internal("column credit is not a bigint".into()))
}
