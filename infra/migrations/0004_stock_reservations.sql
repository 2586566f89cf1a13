-- Stock reservations for the checkout saga, keyed by saga id.
--
-- Spin's Postgres interface has no transaction object, so each saga step is ONE statement: a
-- call of one of these functions, which runs in a single transaction. Both are idempotent:
-- the ledger row of a saga is claimed first (INSERT ... ON CONFLICT DO NOTHING; a concurrent
-- duplicate waits on the unique index, then sees the row), and a repeated call answers from it.
SET ROLE stock_service;

CREATE TABLE IF NOT EXISTS stock.reservations (
    saga_id    text PRIMARY KEY,
    items      text[],
    quantities bigint[],
    state      text NOT NULL CHECK (state IN ('reserved', 'refused', 'released')),
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Both return the outcome and the items they changed as [[item_id, stock, price, version], ...],
-- which the endpoint writes through to the `find` cache.

-- Reserves all the items or none. Returns 'reserved', or 'refused: <why>' (also when the saga's
-- reservation was already released: a compensated saga never reserves again).
-- Items are locked in id order, so concurrent reservations cannot deadlock.
CREATE OR REPLACE FUNCTION stock.reserve(p_saga text, p_items text[], p_quantities bigint[],
                                         OUT outcome text, OUT changed jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    prior stock.reservations;
    line record;
    row_after record;
BEGIN
    changed := '[]'::jsonb;
    INSERT INTO stock.reservations (saga_id, items, quantities, state)
    VALUES (p_saga, p_items, p_quantities, 'reserved')
    ON CONFLICT (saga_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO prior FROM stock.reservations WHERE saga_id = p_saga;
        IF prior.state = 'reserved' THEN outcome := 'reserved'; RETURN; END IF;
        outcome := 'refused: ' || coalesce(prior.reason, prior.state);
        RETURN;
    END IF;
    BEGIN
        FOR line IN
            SELECT item, sum(quantity) AS quantity
            FROM unnest(p_items, p_quantities) AS l(item, quantity)
            GROUP BY item ORDER BY item
        LOOP
            UPDATE stock.items SET stock = stock - line.quantity, version = version + 1
            WHERE item_id = line.item AND stock >= line.quantity
            RETURNING item_id, stock, price, version INTO row_after;
            IF FOUND THEN
                changed := changed || jsonb_build_array(jsonb_build_array(row_after.item_id, row_after.stock, row_after.price, row_after.version));
            ELSE
                RAISE EXCEPTION USING ERRCODE = 'P0001',
                    MESSAGE = CASE WHEN EXISTS (SELECT 1 FROM stock.items WHERE item_id = line.item)
                                   THEN 'out of stock: ' || line.item ELSE 'unknown item: ' || line.item END;
            END IF;
        END LOOP;
    EXCEPTION WHEN SQLSTATE 'P0001' THEN
        -- The block's changes are rolled back; the ledger row (outside the block) stays: record why.
        UPDATE stock.reservations SET state = 'refused', reason = SQLERRM WHERE saga_id = p_saga;
        outcome := 'refused: ' || SQLERRM;
        changed := '[]'::jsonb;
        RETURN;
    END;
    outcome := 'reserved';
END
$$;

-- Gives a saga's reserved stock back. Returns 'released' or 'nothing reserved'. A release of a
-- saga that never reserved leaves a tombstone, so a reserve arriving later is refused.
CREATE OR REPLACE FUNCTION stock.release(p_saga text, OUT outcome text, OUT changed jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    released stock.reservations;
    line record;
    row_after record;
BEGIN
    changed := '[]'::jsonb;
    outcome := 'nothing reserved';
    INSERT INTO stock.reservations (saga_id, state, reason) VALUES (p_saga, 'released', 'released before reserving')
    ON CONFLICT (saga_id) DO NOTHING;
    IF FOUND THEN RETURN; END IF;
    UPDATE stock.reservations SET state = 'released', reason = 'released'
    WHERE saga_id = p_saga AND state = 'reserved'
    RETURNING * INTO released;
    IF NOT FOUND THEN RETURN; END IF;
    FOR line IN
        SELECT item, sum(quantity) AS quantity
        FROM unnest(released.items, released.quantities) AS l(item, quantity)
        GROUP BY item ORDER BY item
    LOOP
        UPDATE stock.items SET stock = stock + line.quantity, version = version + 1 WHERE item_id = line.item
        RETURNING item_id, stock, price, version INTO row_after;
        changed := changed || jsonb_build_array(jsonb_build_array(row_after.item_id, row_after.stock, row_after.price, row_after.version));
    END LOOP;
    outcome := 'released';
END
$$;

RESET ROLE;
