//! Every statement the stock service runs. Each change is ONE statement, so it is atomic without
//! a transaction object (Spin's Postgres interface has none).
//!
//! Every write bumps `version` (a change counter, kept for operators).

/// `$1` price → the new item's generated id.
pub const CREATE_ITEM: &str =
    "INSERT INTO stock.items (item_id, stock, price) VALUES (gen_random_uuid()::text, 0, $1) RETURNING item_id";

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
