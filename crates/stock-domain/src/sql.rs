//! Every statement the stock service runs. Each change is ONE statement, so it is atomic without
//! a transaction object (Spin's Postgres interface has none).
//!
//! Every write bumps `version` (a change counter, kept for operators).

/// `$1` price, `$2` owner id (`''`: nobody) → the new item's generated id.
pub const CREATE_ITEM: &str = "INSERT INTO stock.items (item_id, stock, price, owner_id) \
     VALUES (gen_random_uuid()::text, 0, $1, NULLIF($2, '')) RETURNING item_id";

/// The columns of an item's page ([`crate::listing::ItemDetail`]), and its listing position.
macro_rules! detail_columns {
    () => {
        "item_id, owner_id, title, description, category, daily_price, price, stock, \
         to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at, \
         to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS updated_at, listed_seq"
    };
}

/// `$1` item id → its page's columns.
pub const ITEM_DETAIL: &str = concat!("SELECT ", detail_columns!(), " FROM stock.items WHERE item_id = $1");

/// The list's statement for the filters given: `$1` the listing position to start below, `$2`
/// how many, then the owner, the category and the search text, each if given, in that order →
/// listed items (an owner and a title: the WDM items are not listed), newest first, with
/// [`ITEM_DETAIL`]'s columns.
pub fn list_items(owner: bool, category: bool, text: bool) -> String {
    let mut conditions = vec!["owner_id IS NOT NULL".to_string(), "title <> ''".into(), "listed_seq < $1".into()];
    let mut next = 3;
    for (given, before, after) in [
        (owner, "owner_id = $", ""),
        (category, "category = $", ""),
        (text, "search @@ websearch_to_tsquery('english', $", ")"),
    ] {
        if given {
            conditions.push(format!("{before}{next}{after}"));
            next += 1;
        }
    }
    format!(
        "SELECT {} FROM stock.items WHERE {} ORDER BY listed_seq DESC LIMIT $2",
        detail_columns!(),
        conditions.join(" AND ")
    )
}

/// `$1` owner, `$2` title, `$3` description, `$4` category, `$5` daily price, `$6` price, `$7`
/// stock → the new item's page.
pub const LIST_NEW_ITEM: &str = concat!(
    "INSERT INTO stock.items (item_id, owner_id, title, description, category, daily_price, price, stock) \
     VALUES (gen_random_uuid()::text, $1, $2, $3, $4, $5, $6, $7) RETURNING ",
    detail_columns!()
);

/// The statement of a listing change: `$1` item id, then one parameter per column set, in
/// `columns`' order → the item's page; no row if the item is gone. The column names come from
/// [`crate::listing::ItemPatch::columns`], never from the client.
pub fn patch_item(columns: &[&str]) -> String {
    let sets: Vec<String> = columns.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 2)).collect();
    format!(
        "UPDATE stock.items SET {}, updated_at = now(), version = version + 1 WHERE item_id = $1 RETURNING {}",
        sets.join(", "),
        detail_columns!()
    )
}

/// `$1` item id → `owner_id` (null: nobody's); no row if the item does not exist.
pub const ITEM_OWNER: &str = "SELECT owner_id FROM stock.items WHERE item_id = $1";

/// `$1` item id → `outcome`: `deleted`, `unknown_item`, or `rental_hold` (a rental holds the
/// item: nothing changed). The check and the delete are one call of `stock.delete_item`
/// (infra/functions/stock.sql), so no rental can take the item between them.
pub const DELETE_ITEM: &str = "SELECT stock.delete_item($1) AS outcome";

/// `$1` item id → stock, price.
pub const FIND_ITEM: &str = "SELECT stock, price FROM stock.items WHERE item_id = $1";

/// `$1` item id, `$2` amount → stock, price; no row when the item does not exist.
/// Overflow raises SQLSTATE 22003 (numeric_value_out_of_range).
pub const ADD_STOCK: &str = "UPDATE stock.items SET stock = stock + $2, version = version + 1 \
     WHERE item_id = $1 RETURNING stock, price";

/// `$1` item id, `$2` amount → stock, price; no row when the item does not exist or
/// has fewer than `$2` units (the check and the change are one atomic statement).
pub const SUBTRACT_STOCK: &str = "UPDATE stock.items SET stock = stock - $2, version = version + 1 \
     WHERE item_id = $1 AND stock >= $2 RETURNING stock, price";

/// `$1` item id → one row when the item exists (tells "unknown" from "not enough" after a refusal).
pub const ITEM_EXISTS: &str = "SELECT 1 FROM stock.items WHERE item_id = $1";

/// Run after BATCH_INIT (see `spin_kit::pg_store::vacuum_after_bulk_write`).
pub const VACUUM_ITEMS: &str = "VACUUM (ANALYZE) stock.items";

/// `$1` n, `$2` starting stock, `$3` price: (re)creates items "0".."n-1" in one statement.
pub const BATCH_INIT: &str = "INSERT INTO stock.items (item_id, stock, price) \
     SELECT g::text, $2, $3 FROM generate_series(0::bigint, $1::bigint - 1) AS g \
     ON CONFLICT (item_id) DO UPDATE SET stock = EXCLUDED.stock, price = EXCLUDED.price, \
     version = stock.items.version + 1";

/// SQLSTATE of an integer overflow.
pub const NUMERIC_OUT_OF_RANGE: &str = "22003";

/// `$1` saga id, `$2` item ids (distinct, ascending), `$3` quantities → outcome (see
/// infra/functions/stock.sql; [`crate::reservation::ReserveRequest::columns`] builds the arrays).
pub const RESERVE: &str = "SELECT stock.reserve($1, $2, $3) AS outcome";

/// `$1` saga ids, `$2` line counts, `$3` items, `$4` quantities (see infra/functions/stock.sql;
/// [`crate::reservation::ReserveManyRequest::columns`] builds them) → one row per saga, in order:
/// `o_saga`, `o_outcome` (as [`RESERVE`]'s).
pub const RESERVE_MANY: &str = "SELECT o_saga, o_outcome FROM stock.reserve_many($1, $2, $3, $4)";

/// `$1` saga id → the items its reservation holds (`item`), none unless it is `reserved`.
pub const RESERVED_ITEMS: &str =
    "SELECT unnest(items) AS item FROM stock.reservations WHERE saga_id = $1 AND state = 'reserved'";

/// `$1` saga id → outcome: `released`, `nothing reserved`, or `refused: stock overflow: <item>`
/// (nothing changed, the reservation stays; see infra/functions/stock.sql).
pub const RELEASE: &str = "SELECT stock.release($1) AS outcome";
