//! The stock service's endpoints (one component each): `create`, `find`, `add`, `subtract`,
//! `batch_init`, the inventory's list, item pages and owner writes ([`inventory`]), and the checkout saga's participant steps `reserve` (also batched:
//! `reserve_many`) and `release`. Each handler
//! parses its route parameters with `stock-domain` and reads or changes Postgres (schema `stock`,
//! the truth) in one statement. `find` answers from a view in Redis when it can; every change
//! follows the view's writer protocol ([`find_view`]).

mod find_view;
mod inventory;

pub use inventory::{
    change as change_item, create as list_item, list as list_items, page as item_page, remove as remove_item,
};

use market_core::ApiError;
use spin_kit::pg_store::{
    create_returning, execute, pg_failure, query, query_text, query_texts, query_unmapped, sqlstate,
    vacuum_after_bulk_write,
};
use spin_kit::{Reply, Request, respond, route};
use spin_sdk::pg::{ParameterValue, Row};
use stock_domain::error::StockError;
use stock_domain::find_view::{Lookup, distinct_ids};
use stock_domain::reservation::{ReserveManyRequest, ReserveRequest, StepOutcome};
use stock_domain::{BatchInit, Item, StockChange, sql};

/// `POST /stock/item/create/:price` → `{"item_id": "<uuid>"}`. Where tokens are required, the
/// token's user owns the item.
pub async fn create(req: Request) -> Result<Reply, ApiError> {
    let price = market_core::parse_non_negative("price", route::param(&req, "price")?)?;
    let owner = spin_kit::auth::caller(&req).await?.map(|claims| claims.sub).unwrap_or_default();
    create_returning(sql::CREATE_ITEM, [ParameterValue::Int64(price), ParameterValue::Str(owner)], "item_id").await
}

/// `GET /stock/find/:item_id` → `{"stock": n, "price": n}`, from the Redis view when it has the
/// item, else from Postgres (and the row is offered to the view).
pub async fn find(req: Request) -> Result<Reply, ApiError> {
    let item_id = market_core::parse_id("item_id", route::param(&req, "item_id")?)?;
    let looked_up = std::time::Instant::now();
    let seen = find_view::lookup(item_id).await;
    if let Lookup::Hit { stock, price } = seen {
        return Ok(respond::ok(&Item { stock, price }));
    }
    let rows = query(sql::FIND_ITEM, [ParameterValue::Str(item_id.to_string())]).await?;
    let found = item(rows.first().ok_or_else(|| unknown_item(item_id))?)?;
    if let Lookup::Miss { epoch, stamp } = seen {
        find_view::offer(looked_up, item_id, &epoch, &stamp, found.stock, found.price).await;
    }
    Ok(respond::ok(&found))
}

/// `POST /stock/add/:item_id/:amount`.
pub async fn add(req: Request) -> Result<Reply, ApiError> {
    let change = StockChange::parse(route::param(&req, "item_id")?, route::param(&req, "amount")?)?;
    inventory::require_stock_writer(&req, change.item_id).await?;
    let result = change_stock(sql::ADD_STOCK, &change).await?;
    let item = match result {
        Err(e) if sqlstate(&e) == Some(sql::NUMERIC_OUT_OF_RANGE) => {
            return Err(StockError::StockOverflow { item_id: change.item_id.into() }.into());
        }
        other => other.map_err(pg_failure)?.ok_or_else(|| unknown_item(change.item_id))?,
    };
    Ok(respond::ok(&item))
}

/// `POST /stock/subtract/:item_id/:amount`: refused with 409 when the stock would go below zero.
pub async fn subtract(req: Request) -> Result<Reply, ApiError> {
    let change = StockChange::parse(route::param(&req, "item_id")?, route::param(&req, "amount")?)?;
    inventory::require_stock_writer(&req, change.item_id).await?;
    match change_stock(sql::SUBTRACT_STOCK, &change).await?.map_err(pg_failure)? {
        Some(item) => Ok(respond::ok(&item)),
        None => Err(refusal_reason(change.item_id, change.amount).await?),
    }
}

/// `POST /stock/batch_init/:n/:starting_stock/:item_price`: items "0".."n-1", in one statement.
/// An admin route: 404 where `admin_routes` is off.
pub async fn batch_init(req: Request) -> Result<Reply, ApiError> {
    spin_kit::admin::require_admin_routes().await?;
    spin_kit::auth::require_admin(&req).await?;
    let batch = BatchInit::parse(
        route::param(&req, "n")?,
        route::param(&req, "starting_stock")?,
        route::param(&req, "item_price")?,
    )?;
    let params = [
        ParameterValue::Int64(batch.n),
        ParameterValue::Int64(batch.starting_stock),
        ParameterValue::Int64(batch.item_price),
    ];
    find_view::batch(batch.n, batch.starting_stock, batch.item_price, execute(sql::BATCH_INIT, params)).await?;
    vacuum_after_bulk_write(sql::VACUUM_ITEMS).await;
    Ok(respond::ok(&serde_json::json!({ "msg": "Batch init for stock successful", "n": batch.n })))
}

/// `POST /stock/reserve/:saga_id` with `{"items": [[item_id, quantity], ...]}` (saga step,
/// idempotent per saga): 200 `{"outcome": "reserved"}`, or 409 when refused (out of stock,
/// unknown item, or the saga's reservation was already released).
pub async fn reserve(req: Request) -> Result<Reply, ApiError> {
    let saga_id = market_core::parse_id("saga_id", route::param(&req, "saga_id")?)?.to_string();
    let (items, quantities) = ReserveRequest::parse(&spin_kit::body::bytes(req).await?)?.columns()?;
    let ids = distinct_ids(items.iter().flatten().map(String::as_str));
    let params =
        vec![ParameterValue::Str(saga_id), ParameterValue::ArrayStr(items), ParameterValue::ArrayInt64(quantities)];
    match StepOutcome::parse(&find_view::writing(&ids, query_text(sql::RESERVE, params, "outcome")).await?) {
        StepOutcome::Refused(reason) => Err(StockError::ReservationRefused { reason }.into()),
        _ => Ok(respond::ok(&serde_json::json!({ "outcome": "reserved" }))),
    }
}

/// `POST /stock/reserve_many` with `{"sagas": [{"saga_id": "...", "items": [[item_id, quantity],
/// ...]}, ...]}`: the `reserve` step of several sagas in one statement, each on its own. 200
/// `{"outcomes": [...]}`, one per saga in order, each as `reserve` would have answered it
/// (`{"status": 200}`, 409 with the reason, or 400 for a saga that is invalid: that one is left
/// out of the statement, the others are reserved as if it were not there).
pub async fn reserve_many(req: Request) -> Result<Reply, ApiError> {
    let batch = ReserveManyRequest::parse(&spin_kit::body::bytes(req).await?)?;
    let cols = batch.columns();
    let outcomes = if cols.sagas.is_empty() {
        Vec::new()
    } else {
        let ids = distinct_ids(cols.items.iter().flatten().map(String::as_str));
        let params = vec![
            ParameterValue::ArrayStr(cols.sagas),
            ParameterValue::ArrayInt64(cols.line_counts),
            ParameterValue::ArrayStr(cols.items),
            ParameterValue::ArrayInt64(cols.quantities),
        ];
        find_view::writing(&ids, query_texts(sql::RESERVE_MANY, params, "o_outcome")).await?
    };
    Ok(respond::outcomes(batch.answers(&outcomes)?))
}

/// `POST /stock/release/:saga_id` (saga compensation, idempotent): gives the saga's reserved
/// stock back, as its ledger row says; 200 `{"outcome": "released" | "nothing reserved"}`; 409
/// (for good: nothing changed, the units stay reserved by the saga, on record) when an item's
/// stock cannot take its units back without overflowing. A body (the reserve's) is accepted and
/// ignored.
pub async fn release(req: Request) -> Result<Reply, ApiError> {
    let saga_id = market_core::parse_id("saga_id", route::param(&req, "saga_id")?)?.to_string();
    let reserved = || query_texts(sql::RESERVED_ITEMS, [ParameterValue::Str(saga_id.clone())], "item");
    let ids = distinct_ids(reserved().await?.iter().map(String::as_str));
    let release = query_text(sql::RELEASE, [ParameterValue::Str(saga_id.clone())], "outcome");
    let outcome = StepOutcome::parse(&find_view::writing(&ids, release).await?);
    if let StepOutcome::Refused(why) = outcome {
        return Err(StockError::ReleaseRefused { reason: why }.into());
    }
    if outcome == StepOutcome::Released && ids.is_empty() {
        // Reserved after we looked (a late forward step): its items were changed unannounced;
        // announce the change now, before answering.
        let late = distinct_ids(reserved().await?.iter().map(String::as_str));
        find_view::writing(&late, async { Ok(()) }).await?;
    }
    let outcome = if outcome == StepOutcome::Released { "released" } else { "nothing reserved" };
    Ok(respond::ok(&serde_json::json!({ "outcome": outcome })))
}

/// Applies one of the single-statement changes; `Ok(None)` when no row matched.
async fn change_stock(
    statement: &str,
    change: &StockChange<'_>,
) -> Result<Result<Option<Item>, spin_sdk::pg::Error>, ApiError> {
    let params = [ParameterValue::Str(change.item_id.to_string()), ParameterValue::Int64(change.amount)];
    let result = find_view::writing(&[change.item_id.to_string()], query_unmapped(statement, params)).await?;
    Ok(match result {
        Ok(rows) => rows.first().map(item).transpose().map_err(|e| spin_sdk::pg::Error::Decode(e.message())),
        Err(e) => Err(e),
    })
}

/// After a refused subtract: was the item unknown, or short of stock?
async fn refusal_reason(item_id: &str, amount: i64) -> Result<ApiError, ApiError> {
    let rows = query(sql::ITEM_EXISTS, [ParameterValue::Str(item_id.to_string())]).await?;
    Ok(if rows.is_empty() {
        unknown_item(item_id)
    } else {
        StockError::InsufficientStock { item_id: item_id.into(), amount }.into()
    })
}

fn item(row: &Row) -> Result<Item, ApiError> {
    let int = |name: &str| match row.get::<i64>(name) {
        Some(v) => Ok(v),
        None => Err(ApiError::Internal(format!("column {name} is not a bigint"))),
    };
    Ok(Item { stock: int("stock")?, price: int("price")? })
}

pub(crate) fn unknown_item(item_id: &str) -> ApiError {
    StockError::UnknownItem { item_id: item_id.into() }.into()
}
