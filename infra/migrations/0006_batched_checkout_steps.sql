-- The forward steps of several checkout sagas in one statement: stock.reserve_many and
-- payment.charge_many. An order-service instance driving many checkouts at once sends their
-- reserves together and then their charges together, instead of one call and one statement per
-- saga each (see docs/checkout-saga.md, "Batched forward steps").
--
-- Each saga is still all-or-nothing on its own and idempotent by its saga id: the batch calls the
-- single-saga function (0005) for each saga in turn, so a saga's outcome in a batch is exactly
-- what the single call would have answered. One saga refused does not affect the others.
--
-- Locking: a batch first locks every row it will touch, in one order (byte order of the id),
-- before any saga's ledger row is claimed. Two batches, or a batch and a single-saga call, lock
-- in the same order, so they cannot deadlock on those rows. (The same saga driven at once by a
-- batch and by a single call — only a driver that lost its lease does that — can deadlock on the
-- saga's ledger row; Postgres then aborts one statement, which the driver sees as a transient
-- error and retries.)
--
-- Commit: asynchronous only when every saga of the batch succeeded (as 0005 does for one
-- saga); a batch with any refusal commits synchronously, so that no refusal a client is told of
-- can be lost.
SET ROLE stock_service;

-- p_sagas[i] reserves the next p_line_counts[i] lines of p_items / p_quantities (merged per item
-- and ascending, as stock.reserve wants). Returns one row per saga, in order: the saga id and
-- stock.reserve's outcome ('reserved' or 'refused: <why>').
CREATE FUNCTION stock.reserve_many(p_sagas text[], p_line_counts bigint[], p_items text[], p_quantities bigint[])
RETURNS TABLE (o_saga text, o_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    sagas int := coalesce(array_length(p_sagas, 1), 0);
    lines int := coalesce(array_length(p_items, 1), 0);
    first int := 1;
    n int;
    all_reserved boolean := true;
BEGIN
    IF sagas <> coalesce(array_length(p_line_counts, 1), 0) THEN
        RAISE EXCEPTION 'stock.reserve_many: % sagas but % line counts', sagas, array_length(p_line_counts, 1);
    END IF;
    IF lines <> coalesce(array_length(p_quantities, 1), 0)
       OR lines <> (SELECT coalesce(sum(c), 0) FROM unnest(p_line_counts) AS c) THEN
        RAISE EXCEPTION 'stock.reserve_many: line counts, items and quantities do not match';
    END IF;
    PERFORM 1 FROM stock.items WHERE item_id = ANY (p_items) ORDER BY item_id COLLATE "C" FOR UPDATE;
    FOR i IN 1 .. sagas LOOP
        n := p_line_counts[i];
        o_saga := p_sagas[i];
        o_outcome := stock.reserve(p_sagas[i], p_items[first : first + n - 1], p_quantities[first : first + n - 1]);
        all_reserved := all_reserved AND o_outcome = 'reserved';
        first := first + n;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('synchronous_commit', CASE WHEN all_reserved THEN 'off' ELSE 'on' END, true);
END
$$;

RESET ROLE;

SET ROLE payment_service;

-- Charges p_amounts[i] to p_users[i] for p_sagas[i]. Returns one row per saga, in order: the saga
-- id and payment.charge's outcome ('charged', 'refused', 'unknown_user', 'refunded').
CREATE FUNCTION payment.charge_many(p_sagas text[], p_users text[], p_amounts bigint[])
RETURNS TABLE (o_saga text, o_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    sagas int := coalesce(array_length(p_sagas, 1), 0);
    all_charged boolean := true;
BEGIN
    IF sagas <> coalesce(array_length(p_users, 1), 0) OR sagas <> coalesce(array_length(p_amounts, 1), 0) THEN
        RAISE EXCEPTION 'payment.charge_many: sagas, users and amounts do not match';
    END IF;
    PERFORM 1 FROM payment.users WHERE user_id = ANY (p_users) ORDER BY user_id COLLATE "C" FOR UPDATE;
    FOR i IN 1 .. sagas LOOP
        o_saga := p_sagas[i];
        o_outcome := payment.charge(p_sagas[i], p_users[i], p_amounts[i]);
        all_charged := all_charged AND o_outcome = 'charged';
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('synchronous_commit', CASE WHEN all_charged THEN 'off' ELSE 'on' END, true);
END
$$;

RESET ROLE;
