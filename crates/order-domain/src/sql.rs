//! Every statement the order service runs; each is one statement (atomic without a transaction
//! object, which Spin's Postgres interface does not have).

/// `$1` user id → the new order's generated id.
pub const CREATE_ORDER: &str =
    "INSERT INTO orders.orders (order_id, user_id) VALUES (gen_random_uuid()::text, $1) RETURNING order_id";

/// `$1` order id → the order, with `items` as JSON text and its generation.
pub const FIND_ORDER: &str = "SELECT order_id, user_id, paid, items::text AS items, total_cost, generation \
     FROM orders.orders WHERE order_id = $1";

/// `$1` order id → `user_id`, the order's owner.
pub const ORDER_OWNER: &str = "SELECT user_id FROM orders.orders WHERE order_id = $1";

/// `$1` order id, `$2` item id, `$3` quantity, `$4` cost of the line, `$5` most lines → the
/// order as FIND_ORDER reads it, if the line was added; no row when the order is unknown, paid,
/// has `$5` lines already, or the sum of its quantities with `$3` would not fit in a bigint (an
/// order that could never be reserved). The total cost's overflow raises SQLSTATE 22003.
pub const ADD_ITEM: &str = "UPDATE orders.orders \
     SET items = items || jsonb_build_array(jsonb_build_array($2::text, $3::bigint)), total_cost = total_cost + $4 \
     WHERE order_id = $1 AND NOT paid AND jsonb_array_length(items) < $5::bigint \
       AND (SELECT coalesce(sum((l ->> 1)::numeric), 0) FROM jsonb_array_elements(items) AS l) + $3::bigint \
           <= 9223372036854775807 \
     RETURNING order_id, user_id, paid, items::text AS items, total_cost, generation";

/// `$1` order id → `paid`, `lines` (count), `quantity` (sum of the quantities, as text) — why
/// ADD_ITEM matched nothing (no row: unknown order).
pub const ADD_ITEM_REFUSAL: &str = "SELECT paid, jsonb_array_length(items)::bigint AS lines, \
     (SELECT coalesce(sum((l ->> 1)::numeric), 0) FROM jsonb_array_elements(items) AS l)::text AS quantity \
     FROM orders.orders WHERE order_id = $1";

/// `$1` order id, `$2` generation, `$3` saga id, `$4` the plan's line count → one row when the
/// order is (now or already) paid by this saga; none when it is not the order the saga charged
/// for (re-created, or a line added since the plan was read) or another saga paid it.
pub const MARK_PAID: &str = "UPDATE orders.orders SET paid = true, paid_by_saga = $3 \
     WHERE order_id = $1 AND generation = $2 AND jsonb_array_length(items) = $4::bigint \
       AND (NOT paid OR paid_by_saga = $3) RETURNING paid";

/// MARK_PAID for several sagas at once (a batch of checkouts, see the order service's
/// `forward_batch`): `$1` order ids, `$2` generations, `$3` saga ids, `$4` line counts → the saga
/// id of every order that is (now or already) paid by its saga, as MARK_PAID would answer it for
/// each. The sagas of one batch are of distinct orders (one running saga per order).
pub const MARK_PAID_MANY: &str = "UPDATE orders.orders AS o SET paid = true, paid_by_saga = b.saga      FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) AS b(order_id, generation, saga, lines)      WHERE o.order_id = b.order_id AND o.generation = b.generation AND jsonb_array_length(o.items) = b.lines        AND (NOT o.paid OR o.paid_by_saga = b.saga) RETURNING b.saga AS saga";

/// Run after BATCH_INIT (see `spin_kit::pg_store::vacuum_after_bulk_write`).
pub const VACUUM_ORDERS: &str = "VACUUM (ANALYZE) orders.orders";

/// `$1` n, `$2` n_items, `$3` n_users, `$4` item price: orders "0".."n-1", each with two random
/// items of quantity 1 and a random user (as the WDM template), in one statement. Re-creating an
/// order bumps its generation, which starts a new saga history for it. Returns the orders as
/// FIND_ORDER reads them (for their plan copies).
pub const BATCH_INIT: &str = "INSERT INTO orders.orders (order_id, user_id, paid, items, total_cost, generation) \
     SELECT g::text, floor(random() * $3::bigint)::bigint::text, false, \
            jsonb_build_array(jsonb_build_array(floor(random() * $2::bigint)::bigint::text, 1), \
                              jsonb_build_array(floor(random() * $2::bigint)::bigint::text, 1)), \
            2 * $4::bigint, 0 \
     FROM generate_series(0::bigint, $1::bigint - 1) AS g \
     ON CONFLICT (order_id) DO UPDATE SET user_id = EXCLUDED.user_id, paid = false, items = EXCLUDED.items, \
         total_cost = EXCLUDED.total_cost, paid_by_saga = NULL, generation = orders.orders.generation + 1 \
     RETURNING order_id, user_id, paid, items::text AS items, total_cost, generation";

pub const NUMERIC_OUT_OF_RANGE: &str = "22003";

/// Step "record rental": `$1` rental id, `$2` item, `$3` borrower, `$4` owner, `$5` days, `$6`
/// daily price, `$7` amount → the rental's `state` and `reason`: a new row is `pending`; a
/// repeated step answers from the row (a `failed` one is refused: the rental was cancelled).
///
/// It commits asynchronously (`synchronous_commit` off for its transaction, set by the subquery
/// the row is selected from), as the checkout's forward steps do: every answer of a rental comes
/// after a synchronous commit that follows it in the WAL — "mark active" before a 2xx, "cancel
/// rental" before a 4xx — and a crash that loses it loses a running saga's step, which the
/// worker's re-drive writes again (docs/rentals.md).
pub const RECORD_RENTAL: &str = "INSERT INTO orders.rentals \
     (rental_id, item_id, borrower_id, owner_id, days, daily_price, amount, state) \
     SELECT $1, $2, $3, $4, $5, $6, $7, 'pending' \
     FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit \
     ON CONFLICT (rental_id) DO UPDATE SET rental_id = EXCLUDED.rental_id \
     RETURNING state, reason";

/// Compensation "cancel rental": `$1`..`$7` as [`RECORD_RENTAL`], `$8` why → a pending rental
/// is `failed` with the reason; a rental never recorded is recorded `failed` (a tombstone: the
/// step "record rental", arriving late, is refused); any other state is left alone.
pub const CANCEL_RENTAL: &str = "INSERT INTO orders.rentals \
     (rental_id, item_id, borrower_id, owner_id, days, daily_price, amount, state, reason, ended_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'failed', $8, now()) \
     ON CONFLICT (rental_id) DO UPDATE SET state = 'failed', reason = EXCLUDED.reason, ended_at = now() \
     WHERE orders.rentals.state = 'pending'";

/// Step "mark active": `$1` rental id → one row unless the rental was cancelled (or is unknown).
pub const MARK_ACTIVE: &str = "UPDATE orders.rentals \
     SET state = CASE WHEN state = 'pending' THEN 'active' ELSE state END, \
         activated_at = coalesce(activated_at, now()) \
     WHERE rental_id = $1 AND state IN ('pending', 'active', 'returned') RETURNING state";

/// Step "mark returned": `$1` rental id → one row if the rental is (now or already) returned;
/// none if it is not active (pending, failed, unknown).
pub const MARK_RETURNED: &str = "UPDATE orders.rentals \
     SET state = 'returned', ended_at = coalesce(ended_at, now()) \
     WHERE rental_id = $1 AND state IN ('active', 'returned') RETURNING state";

/// `$1` rental id → the rental, as [`crate::rental::Rental`] shows it.
pub const FIND_RENTAL: &str = "SELECT rental_id, item_id, borrower_id, owner_id, days, daily_price, amount, state, reason \
     FROM orders.rentals WHERE rental_id = $1";
