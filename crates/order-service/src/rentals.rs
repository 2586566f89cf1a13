//! `POST /rentals`, `GET /rentals/:rental_id` and `POST /rentals/:rental_id/return`: renting an
//! item for some days, and giving it back, as sagas of the order service's saga table
//! ([`order_domain::rental`]). The request drives its saga inline, as a checkout does; a saga
//! whose step keeps failing is left to the worker, and the request waits for its outcome (at
//! most [`WAIT_LIMIT_MS`], then 503: the saga goes on, `GET` shows it).

use crate::checkout::{WAIT_LIMIT_MS, drive_limit};
use crate::saga_runner::{self, drive_and_save};
use crate::saga_store::{self, LEASE_MS, WallClock, unique_token};
use market_core::metrics::Tally;
use market_core::{ApiError, parse_id};
use order_domain::redis_scripts::Started;
use order_domain::rental::{
    RentableItem, Rental, RentalPlan, RentalRefusal, RentalRequest, plan_rental, rental_saga_id, return_saga_id,
};
use order_domain::saga::{Clock, DriveResult, Participants, Record, RetryPolicy, SagaPlan, State};
use order_domain::sql;
use spin_kit::pg_store::query;
use spin_kit::{Reply, Request, auth, body, chain, respond, route};
use spin_sdk::pg::ParameterValue;
use std::hash::{BuildHasher, Hasher};
use stock_domain::client as stock;

/// The request's retries of a failing step before it leaves the saga to the worker.
fn inline_policy() -> RetryPolicy {
    RetryPolicy { backoff_ms: vec![20, 100, 300], renew_every_ms: LEASE_MS / 3 }
}

/// `POST /rentals` `{"item_id", "days"}` (token: the borrower) → `201` with the active rental;
/// `400` for a bad body, the borrower's own item or an item not listed for rent; `404` for an
/// unknown item; `409` when a participant refused (no unit free, not enough credit): everything
/// the saga did is undone; `503` while it still runs after the wait.
pub async fn rent(req: Request) -> Result<Reply, ApiError> {
    let claims = auth::authenticate(&req).await?;
    let request = RentalRequest::parse(&body::bytes(req).await?).map_err(refusal)?;
    parse_id("item_id", &request.item_id)?;
    request.days().map_err(refusal)?;
    let item = rentable_item(&request.item_id).await?;
    let rental_id = new_rental_id();
    spin_kit::request_context::add_field("rental_id", rental_id.as_str());
    let plan = plan_rental(&rental_id, &request, item, &claims.sub).map_err(refusal)?;
    let record = Record::new(plan, WallClock.now_ms()).with_drive_limit(drive_limit().await?);
    let (ended, counted) = run(record, "rental").await?;
    let rental = Rental { state: "active".into(), reason: None, plan: ended.plan.clone() };
    let mut reply = match ended.state {
        State::Paid => respond::json(201, &rental_json(&rental, None)),
        _ => respond::error(&ended_badly(&ended, "rental")),
    };
    spin_kit::metrics::add(&mut reply, counted);
    Ok(reply)
}

/// `GET /rentals/:rental_id` (token: the borrower or the item's owner) → the rental, its state
/// (`pending`, `active`, `returned`, `failed`) and the history of its sagas.
pub async fn rental(req: Request) -> Result<Reply, ApiError> {
    let claims = auth::authenticate(&req).await?;
    let rental_id = parse_id("rental_id", route::param(&req, "rental_id")?)?;
    let rented = saga_store::load::<RentalPlan>(&rental_saga_id(rental_id)).await?;
    let rental = match find_rental(rental_id).await? {
        Some(rental) => rental,
        // Asked for, its saga not yet at its first step.
        None => match &rented {
            Some(record) => Rental { plan: record.plan.clone(), state: "pending".into(), reason: None },
            None => return Err(unknown(rental_id)),
        },
    };
    if claims.sub != rental.plan.borrower_id && claims.sub != rental.plan.owner_id {
        return Err(ApiError::Forbidden("only the borrower and the item's owner may see a rental".into()));
    }
    let returned = saga_store::load::<RentalPlan>(&return_saga_id(rental_id)).await?;
    let history: Vec<_> = rented.iter().chain(returned.iter()).flat_map(|r| r.history.iter()).collect();
    Ok(respond::ok(&rental_json(&rental, Some(serde_json::to_value(history).unwrap_or_default()))))
}

/// `POST /rentals/:rental_id/return` (token: the borrower) → `200` with the rental, returned
/// (again: nothing changes); `409` for a rental that is not active (failed, or still pending).
pub async fn return_rental(req: Request) -> Result<Reply, ApiError> {
    let claims = auth::authenticate(&req).await?;
    let rental_id = parse_id("rental_id", route::param(&req, "rental_id")?)?;
    spin_kit::request_context::add_field("rental_id", rental_id);
    let mut rental = find_rental(rental_id).await?.ok_or_else(|| unknown(rental_id))?;
    if claims.sub != rental.plan.borrower_id {
        return Err(ApiError::Forbidden("only the borrower may return a rental".into()));
    }
    match rental.state.as_str() {
        "returned" => return Ok(respond::ok(&rental_json(&rental, None))),
        "active" => {}
        state => return Err(ApiError::Conflict(format!("rental {rental_id} is {state}, not active"))),
    }
    let record = Record::new(rental.plan.returning(), WallClock.now_ms()).with_drive_limit(drive_limit().await?);
    let (ended, counted) = run(record, "return").await?;
    let mut reply = match ended.state {
        State::Paid => {
            rental.state = "returned".into();
            respond::ok(&rental_json(&rental, None))
        }
        _ => respond::error(&ended_badly(&ended, "return")),
    };
    spin_kit::metrics::add(&mut reply, counted);
    Ok(reply)
}

/// Starts the saga of `record` (or joins the one with its id), drives it inline, and answers
/// its record once it has ended (succeeded, failed or stuck); 503 if it still runs after
/// [`WAIT_LIMIT_MS`].
async fn run<P: SagaPlan>(mut record: Record<P>, what: &str) -> Result<(Record<P>, Tally), ApiError>
where
    crate::participants::Services: Participants<P>,
{
    let started = WallClock.now_ms();
    let saga_id = record.plan.id().to_string();
    spin_kit::request_context::add_field("saga_id", saga_id.as_str());
    let owner = unique_token(what);
    let mut counted = Tally::new();
    match saga_store::start(&record, &owner, started).await? {
        Started::Join(Some(joined)) if joined.state != State::Running => return Ok((joined, counted)),
        Started::Join(_) => return Ok((wait_for(&saga_id, started, what).await?, counted)),
        Started::Drive => {}
    }
    let driven = drive_and_save(&mut record, &owner, &inline_policy(), what).await;
    counted.saga_drives(1, driven.compensations);
    let written = driven.written?;
    match driven.result {
        DriveResult::Final { .. } if written => return Ok((record, counted)),
        DriveResult::Retry { .. } if written && record.state == State::Stuck => return Ok((record, counted)),
        DriveResult::Retry { .. } if written => saga_store::ring_doorbell().await,
        _ => {}
    }
    // Someone else (the worker) owns the saga now: wait for its outcome.
    Ok((wait_for(&saga_id, started, what).await?, counted))
}

async fn wait_for<P: SagaPlan>(saga_id: &str, started: u64, what: &str) -> Result<Record<P>, ApiError> {
    saga_runner::wait_for_end(saga_id, started, WAIT_LIMIT_MS).await?.ok_or_else(|| {
        ApiError::InProgress(format!("the {what} saga {saga_id} is still in progress; see GET /rentals/<rental_id>"))
    })
}

/// The answer for a saga that did not succeed: `409` with its reason, `400` when a participant
/// called it invalid, `503` when it is stuck (it waits for an operator).
fn ended_badly<P: SagaPlan>(record: &Record<P>, what: &str) -> ApiError {
    let saga_id = record.plan.id();
    let reason = record.reason.as_deref().unwrap_or("unknown reason");
    match record.state {
        State::Failed if record.failed_as_invalid() => ApiError::BadRequest(reason.to_string()),
        State::Stuck => ApiError::InProgress(format!(
            "the {what} saga {saga_id} is stuck ({reason}); it waits for an operator: POST /orders/saga/{saga_id}/redrive"
        )),
        _ => ApiError::Conflict(format!("{what} refused (saga {saga_id}): {reason}")),
    }
}

fn refusal(why: RentalRefusal) -> ApiError {
    ApiError::BadRequest(why.to_string())
}

fn unknown(rental_id: &str) -> ApiError {
    ApiError::NotFound(format!("rental {rental_id} not found"))
}

/// The rental as the API shows it, with its saga's id and, for `GET`, its history.
fn rental_json(rental: &Rental, history: Option<serde_json::Value>) -> serde_json::Value {
    let mut json = serde_json::to_value(rental).unwrap_or_default();
    json["saga_id"] = serde_json::Value::String(rental.plan.rental_saga_id());
    if let Some(history) = history {
        json["history"] = history;
    }
    json
}

/// The item as a rental needs it, from its page in the stock service: `None` when it is not
/// listed for rent (no owner, or no title); 404 when it is unknown.
async fn rentable_item(item_id: &str) -> Result<Option<RentableItem>, ApiError> {
    let answer = chain::call(stock::item_page(item_id)).await.map_err(ApiError::Unavailable)?;
    match answer.status {
        200 => {}
        404 => return Err(ApiError::NotFound(format!("item {item_id} not found"))),
        status => {
            return Err(ApiError::Unavailable(format!("the stock service answered {status}: {}", answer.message())));
        }
    }
    let page = stock::read_item_page(&answer.body)
        .ok_or_else(|| ApiError::Internal(format!("item {item_id}'s page does not decode")))?;
    // Listed, as the inventory lists items: an owner and a title (a WDM item has neither, or,
    // made with a token, only its creator as owner).
    let listed = page.listing.owner_id.filter(|_| !page.listing.title.is_empty());
    Ok(listed.map(|owner_id| RentableItem {
        item_id: page.listing.item_id,
        owner_id,
        daily_price: page.listing.daily_price,
    }))
}

/// The rental's row, if it is recorded.
async fn find_rental(rental_id: &str) -> Result<Option<Rental>, ApiError> {
    let rows = query(sql::FIND_RENTAL, [ParameterValue::Str(rental_id.into())]).await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let bad = |what: &str| ApiError::Internal(format!("rental row has no {what}"));
    let text = |name: &str| row.get::<String>(name).ok_or_else(|| bad(name));
    let number = |name: &str| row.get::<i64>(name).ok_or_else(|| bad(name));
    let plan = RentalPlan {
        saga_id: rental_saga_id(rental_id),
        rental_id: text("rental_id")?,
        item_id: text("item_id")?,
        borrower_id: text("borrower_id")?,
        owner_id: text("owner_id")?,
        days: number("days")?,
        daily_price: number("daily_price")?,
        amount: number("amount")?,
    };
    Ok(Some(Rental { plan, state: text("state")?, reason: row.get::<String>("reason") }))
}

/// A new rental's id: 128 random bits (the host's randomness, through `RandomState`'s keys),
/// in hex.
fn new_rental_id() -> String {
    let half = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(WallClock.now_ms());
        h.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}
