//! The inventory's endpoints: the public list and item pages, and the owners' writes (list an
//! item, change its listing, take it down). Both are served through the view
//! ([`crate::find_view`]: never stale after a write, every write going through its writer
//! protocols) and read from Postgres when the view does not have them (full-text search, keyset
//! pages).

use crate::find_view;
use crate::unknown_item;
use market_core::{ApiError, parse_id};
use spin_kit::auth::{self, Claims};
use spin_kit::pg_store::{query, query_text};
use spin_kit::{Reply, Request, body, respond, route};
use spin_sdk::pg::{ParameterValue, Row};
use stock_domain::error::StockError;
use stock_domain::find_view::{DetailLookup, ListLookup};
use stock_domain::listing::{ItemDetail, ItemPatch, ListEntry, ListQuery, NewItem, PatchValue, encode_cursor};
use stock_domain::sql;

/// `GET /stock/items?owner=&category=&q=&limit=&cursor=` → `{"items": [...], "next_cursor"}`:
/// listed items (listing fields, no stock), newest first; `next_cursor` (`null` on the last
/// page) gives the next page, which items listed meanwhile do not shift.
pub async fn list(req: Request) -> Result<Reply, ApiError> {
    let list = ListQuery::parse(req.uri().query())?;
    let key = list.view_key();
    let looked_up = std::time::Instant::now();
    let seen = find_view::lookup_list(&key).await;
    if let ListLookup::Hit(json) = seen {
        return Ok(respond::raw_json(200, json));
    }
    let mut params = vec![ParameterValue::Int64(list.after.unwrap_or(i64::MAX)), ParameterValue::Int64(list.limit + 1)];
    params.extend([&list.owner, &list.category, &list.text].into_iter().flatten().cloned().map(ParameterValue::Str));
    let statement = sql::list_items(list.owner.is_some(), list.category.is_some(), list.text.is_some());
    let rows = query(&statement, params).await?;
    let mut page = rows.iter().map(detail).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if page.len() as i64 > list.limit {
        page.truncate(list.limit as usize);
        page.last().map(|(_, seq)| encode_cursor(*seq))
    } else {
        None
    };
    let items: Vec<ListEntry> = page.into_iter().map(|(item, _)| item.listing).collect();
    let json = serde_json::to_string(&serde_json::json!({ "items": items, "next_cursor": next_cursor }))
        .map_err(|e| ApiError::Internal(format!("cannot encode a page: {e}")))?;
    if let ListLookup::Miss { generation } = seen {
        find_view::offer_list(looked_up, &key, &generation, json.clone()).await;
    }
    Ok(respond::raw_json(200, json))
}

/// `POST /stock/items` (token; the owner is the token's user) → `201` with the item's page.
pub async fn create(req: Request) -> Result<Reply, ApiError> {
    let claims = auth::authenticate(&req).await?;
    let new = NewItem::parse(&body::bytes(req).await?)?;
    let params = [
        ParameterValue::Str(claims.sub),
        ParameterValue::Str(new.title),
        ParameterValue::Str(new.description),
        ParameterValue::Str(new.category),
        ParameterValue::Int64(new.daily_price),
        ParameterValue::Int64(new.price),
        ParameterValue::Int64(new.stock),
    ];
    let rows = find_view::listing_change(query(sql::LIST_NEW_ITEM, params)).await?;
    let (item, _) = detail(rows.first().ok_or_else(|| ApiError::Internal("INSERT returned no row".into()))?)?;
    Ok(respond::json(201, &item))
}

/// `GET /stock/items/:item_id` → the item's page, from the view when it has it.
pub async fn page(req: Request) -> Result<Reply, ApiError> {
    let item_id = parse_id("item_id", route::param(&req, "item_id")?)?;
    let looked_up = std::time::Instant::now();
    let seen = find_view::lookup_detail(item_id).await;
    if let DetailLookup::Hit(json) = seen {
        return Ok(respond::raw_json(200, json));
    }
    let rows = query(sql::ITEM_DETAIL, [ParameterValue::Str(item_id.to_string())]).await?;
    let (item, _) = detail(rows.first().ok_or_else(|| unknown_item(item_id))?)?;
    let json = serde_json::to_string(&item).map_err(|e| ApiError::Internal(format!("cannot encode an item: {e}")))?;
    if let DetailLookup::Miss { epoch, stamp } = seen {
        find_view::offer_detail(looked_up, item_id, &epoch, &stamp, json.clone()).await;
    }
    Ok(respond::raw_json(200, json))
}

/// `PATCH /stock/items/:item_id` (the owner's token) → the changed page.
pub async fn change(req: Request) -> Result<Reply, ApiError> {
    let item_id = parse_id("item_id", route::param(&req, "item_id")?)?.to_string();
    let claims = auth::authenticate(&req).await?;
    let patch = ItemPatch::parse(&body::bytes(req).await?)?;
    require_owner(&claims, &item_id).await?;
    let set = patch.columns();
    let columns: Vec<&str> = set.iter().map(|(c, _)| *c).collect();
    let mut params = vec![ParameterValue::Str(item_id.clone())];
    params.extend(set.into_iter().map(|(_, v)| match v {
        PatchValue::Text(t) => ParameterValue::Str(t),
        PatchValue::Number(n) => ParameterValue::Int64(n),
    }));
    let statement = sql::patch_item(&columns);
    let write = find_view::writing(std::slice::from_ref(&item_id), query(&statement, params));
    let rows = find_view::listing_change(write).await?;
    let (item, _) = detail(rows.first().ok_or_else(|| unknown_item(&item_id))?)?;
    Ok(respond::ok(&item))
}

/// `DELETE /stock/items/:item_id` (the owner's token) → `{"deleted": "<id>"}`; 409 (nothing
/// changed) while a rental holds the item: a reservation of a rental saga (`rental:...`) still
/// `reserved`. The check and the delete are one statement ([`sql::DELETE_ITEM`]).
pub async fn remove(req: Request) -> Result<Reply, ApiError> {
    let item_id = parse_id("item_id", route::param(&req, "item_id")?)?.to_string();
    let claims = auth::authenticate(&req).await?;
    require_owner(&claims, &item_id).await?;
    let params = [ParameterValue::Str(item_id.clone())];
    let write = find_view::writing(std::slice::from_ref(&item_id), query_text(sql::DELETE_ITEM, params, "outcome"));
    match find_view::listing_change(write).await?.as_str() {
        "deleted" => Ok(respond::ok(&serde_json::json!({ "deleted": item_id }))),
        "unknown_item" => Err(unknown_item(&item_id)),
        "rental_hold" => Err(StockError::ActiveRental { item_id }.into()),
        other => Err(ApiError::Internal(format!("stock.delete_item answered an unknown outcome {other:?}"))),
    }
}

/// Where tokens are required, only the item's owner (an admin, for an item nobody owns) may
/// change its stock; nothing is read where they are not.
pub async fn require_stock_writer(req: &Request, item_id: &str) -> Result<(), ApiError> {
    match auth::caller(req).await? {
        Some(claims) => require_owner(&claims, item_id).await,
        None => Ok(()),
    }
}

/// 403 unless `claims` are the owner's (or an admin's, for an item nobody owns); 404 for no item.
async fn require_owner(claims: &Claims, item_id: &str) -> Result<(), ApiError> {
    let rows = query(sql::ITEM_OWNER, [ParameterValue::Str(item_id.to_string())]).await?;
    let row = rows.first().ok_or_else(|| unknown_item(item_id))?;
    match row.get::<Option<String>>("owner_id").flatten() {
        Some(owner) if owner == claims.sub => Ok(()),
        None if claims.admin => Ok(()),
        Some(_) => Err(ApiError::Forbidden("only the item's owner may change it".into())),
        None => Err(ApiError::Forbidden("an item nobody owns is changed by an admin only".into())),
    }
}

/// A page and its listing position from a row of [`sql::ITEM_DETAIL`]'s columns.
fn detail(row: &Row) -> Result<(ItemDetail, i64), ApiError> {
    let bad = |what: &str| ApiError::Internal(format!("item row has no {what}"));
    let text = |c: &str| row.get::<String>(c).ok_or_else(|| bad(c));
    let number = |c: &str| row.get::<i64>(c).ok_or_else(|| bad(c));
    Ok((
        ItemDetail {
            listing: ListEntry {
                item_id: text("item_id")?,
                owner_id: row.get::<Option<String>>("owner_id").flatten(),
                title: text("title")?,
                description: text("description")?,
                category: text("category")?,
                daily_price: number("daily_price")?,
                price: number("price")?,
                created_at: text("created_at")?,
                updated_at: text("updated_at")?,
            },
            stock: number("stock")?,
        },
        number("listed_seq")?,
    ))
}
