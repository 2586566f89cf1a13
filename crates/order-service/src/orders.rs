//! Creating, reading and filling orders.

use crate::plan_copy;
use market_core::{ApiError, parse_id};
use order_domain::error::OrderError;
use order_domain::order::{AddItem, BatchInit, Line, MAX_LINES, Order};
use order_domain::sql;
use spin_kit::chain;
use spin_kit::pg_store::{pg_failure, query, query_text, query_unmapped, sqlstate, vacuum_after_bulk_write};
use spin_kit::{Reply, Request, auth, respond, route};
use spin_sdk::pg::{ParameterValue, Row};

/// An order as stored, with its generation.
pub(crate) struct StoredOrder {
    pub order: Order,
    pub generation: i64,
}

/// `POST /orders/create/:user_id` → `{"order_id": "<uuid>"}`; the user must exist.
pub async fn create(req: Request) -> Result<Reply, ApiError> {
    let user_id = parse_id("user_id", route::param(&req, "user_id")?)?;
    auth::require_user(&req, user_id).await?;
    let answer = chain::call(payment_domain::client::find_user(user_id)).await.map_err(ApiError::Unavailable)?;
    match answer.status {
        200 => {}
        404 => return Err(OrderError::UnknownUser { user_id: user_id.into() }.into()),
        s => return Err(ApiError::Unavailable(format!("payment service answered {s}: {}", answer.message()))),
    }
    let order_id = query_text(sql::CREATE_ORDER, [ParameterValue::Str(user_id.into())], "order_id").await?;
    let created = StoredOrder {
        order: Order {
            order_id: order_id.clone(),
            paid: false,
            items: Vec::new(),
            user_id: user_id.into(),
            total_cost: 0,
        },
        generation: 0,
    };
    plan_copy::put_after_commit(std::slice::from_ref(&created)).await;
    Ok(respond::ok(&serde_json::json!({ "order_id": order_id })))
}

/// `GET /orders/find/:order_id`.
pub async fn find(req: Request) -> Result<Reply, ApiError> {
    let order_id = parse_id("order_id", route::param(&req, "order_id")?)?;
    let caller = auth::caller(&req).await?;
    let stored = load(order_id).await?;
    if let Some(claims) = caller {
        auth::require_same_user(&claims, &stored.order.user_id)?;
    }
    Ok(respond::ok(&stored.order))
}

/// Where tokens are required, `order_id` must be the caller's order (403; 404 if there is no
/// such order). Nothing is read where they are not.
pub(crate) async fn require_own_order(req: &Request, order_id: &str) -> Result<(), ApiError> {
    let Some(claims) = auth::caller(req).await? else { return Ok(()) };
    let rows = query(sql::ORDER_OWNER, [ParameterValue::Str(order_id.into())]).await?;
    let owner: String = rows
        .first()
        .and_then(|row| row.get("user_id"))
        .ok_or_else(|| OrderError::UnknownOrder { order_id: order_id.into() })?;
    auth::require_same_user(&claims, &owner)
}

/// `POST /orders/addItem/:order_id/:item_id/:quantity`: the price comes from the stock service.
/// Refuses (400, nothing changed) a line that would make the order one that can never be paid:
/// a cost or total that overflows, quantities whose sum overflows, more than [`MAX_LINES`] lines.
pub async fn add_item(req: Request) -> Result<Reply, ApiError> {
    let add = AddItem::parse(
        route::param(&req, "order_id")?,
        route::param(&req, "item_id")?,
        route::param(&req, "quantity")?,
    )?;
    require_own_order(&req, add.order_id).await?;
    let answer = chain::call(stock_domain::client::find(add.item_id)).await.map_err(ApiError::Unavailable)?;
    let price = match answer.status {
        200 => {
            stock_domain::client::read_item(&answer.body)
                .ok_or_else(|| ApiError::Internal("stock service answered without an item".into()))?
                .price
        }
        404 => return Err(OrderError::UnknownItem { item_id: add.item_id.into() }.into()),
        s => return Err(ApiError::Unavailable(format!("stock service answered {s}: {}", answer.message()))),
    };
    let cost = add.cost(price)?;
    let params = [
        ParameterValue::Str(add.order_id.into()),
        ParameterValue::Str(add.item_id.into()),
        ParameterValue::Int64(add.quantity),
        ParameterValue::Int64(cost),
        ParameterValue::Int64(MAX_LINES as i64),
    ];
    match query_unmapped(sql::ADD_ITEM, params).await? {
        Err(e) if sqlstate(&e) == Some(sql::NUMERIC_OUT_OF_RANGE) => {
            Err(ApiError::BadRequest("the order's total cost would overflow".into()))
        }
        Err(e) => Err(pg_failure(e)),
        Ok(rows) if rows.is_empty() => Err(refusal(&add).await?),
        Ok(rows) => {
            if let Some(Ok(changed)) = rows.first().map(decode) {
                plan_copy::put_after_commit(&[changed]).await;
            }
            Ok(respond::ok(
                &serde_json::json!({ "order_id": add.order_id, "item_id": add.item_id, "quantity": add.quantity }),
            ))
        }
    }
}

/// Why ADD_ITEM changed nothing: unknown, paid, or the line would make it unpayable.
async fn refusal(add: &AddItem<'_>) -> Result<ApiError, ApiError> {
    let rows = query(sql::ADD_ITEM_REFUSAL, [ParameterValue::Str(add.order_id.into())]).await?;
    let Some(row) = rows.first() else { return Ok(add.refusal(None)) };
    let bad = |what: &str| ApiError::Internal(format!("order row has no {what}"));
    let paid: bool = row.get("paid").ok_or_else(|| bad("paid"))?;
    let lines: i64 = row.get("lines").ok_or_else(|| bad("lines"))?;
    let quantity: String = row.get("quantity").ok_or_else(|| bad("quantity"))?;
    Ok(add.refusal(Some((paid, lines, &quantity))))
}

/// `POST /orders/batch_init/:n/:n_items/:n_users/:item_price`. An admin route: 404 where
/// `admin_routes` is off.
pub async fn batch_init(req: Request) -> Result<Reply, ApiError> {
    spin_kit::admin::require_admin_routes().await?;
    spin_kit::auth::require_admin(&req).await?;
    let batch = BatchInit::parse(
        route::param(&req, "n")?,
        route::param(&req, "n_items")?,
        route::param(&req, "n_users")?,
        route::param(&req, "item_price")?,
    )?;
    let params = [
        ParameterValue::Int64(batch.n),
        ParameterValue::Int64(batch.n_items),
        ParameterValue::Int64(batch.n_users),
        ParameterValue::Int64(batch.item_price),
    ];
    let rows = query(sql::BATCH_INIT, params).await?;
    let orders = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    vacuum_after_bulk_write(sql::VACUUM_ORDERS).await;
    plan_copy::put_after_commit(&orders).await;
    Ok(respond::ok(&serde_json::json!({ "msg": "Batch init for orders successful", "n": batch.n })))
}

/// Reads an order; 404 when unknown.
pub(crate) async fn load(order_id: &str) -> Result<StoredOrder, ApiError> {
    let rows = query(sql::FIND_ORDER, [ParameterValue::Str(order_id.into())]).await?;
    let row = rows.first().ok_or_else(|| OrderError::UnknownOrder { order_id: order_id.into() })?;
    decode(row)
}

fn decode(row: &Row) -> Result<StoredOrder, ApiError> {
    let bad = |what: &str| ApiError::Internal(format!("order row has no {what}"));
    let items: String = row.get("items").ok_or_else(|| bad("items"))?;
    let items: Vec<Line> = serde_json::from_str(&items).map_err(|e| ApiError::Internal(format!("order items: {e}")))?;
    Ok(StoredOrder {
        order: Order {
            order_id: row.get("order_id").ok_or_else(|| bad("order_id"))?,
            paid: row.get("paid").ok_or_else(|| bad("paid"))?,
            items,
            user_id: row.get("user_id").ok_or_else(|| bad("user_id"))?,
            total_cost: row.get("total_cost").ok_or_else(|| bad("total_cost"))?,
        },
        generation: row.get("generation").ok_or_else(|| bad("generation"))?,
    })
}
