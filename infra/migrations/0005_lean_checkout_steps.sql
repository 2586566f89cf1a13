-- Leaner forward steps of the checkout saga (stock.reserve, payment.charge).
--
-- 1. stock.reserve no longer runs a subtransaction (an EXCEPTION block) to roll back a partly
--    applied reservation: it undoes its own updates when an item is short. It takes its lines
--    already merged per item and sorted (the stock service sends them so; the function refuses
--    anything else), so rows are always locked in one order and reservations cannot deadlock.
--    Neither function returns the changed rows any more: the stock service has no cache to feed.
--
-- 2. Asynchronous commit for the SUCCESSFUL forward steps only (reserve, charge). Their commit
--    returns without waiting for the WAL flush. Why nothing a client was told can be lost:
--    - Postgres writes WAL in order and a flush covers everything before it. The checkout answers
--      2xx only after "mark paid" (orders schema, synchronous commit), which starts after the
--      reserve and charge of its saga committed: its flush makes them durable too. A 4xx after a
--      successful forward step comes after a compensation (release, refund: synchronous), with
--      the same effect. Any other synchronous commit that saw their rows (a subtract of the same
--      item, a payment of the same user) comes later in the WAL, so it flushes them too.
--    - What a hard crash of Postgres (not a restart: a shutdown flushes) can lose is therefore
--      only the tail of sagas that have answered nobody. Their records are still running in
--      Redis, so a worker re-drives them from the first step once their lease expires: the lost
--      rows are simply written again.
--    Refusals and compensations keep synchronous commit.
SET ROLE stock_service;

DROP FUNCTION IF EXISTS stock.reserve(text, text[], bigint[]);
DROP FUNCTION IF EXISTS stock.release(text);

-- Reserves all the lines or none. p_items must be distinct and ascending (byte order);
-- p_quantities >= 1. Returns 'reserved', or 'refused: <why>' (also when the saga's reservation
-- was already released: a compensated saga never reserves again).
CREATE FUNCTION stock.reserve(p_saga text, p_items text[], p_quantities bigint[])
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    prior stock.reservations;
    lines int := coalesce(array_length(p_items, 1), 0);
    short text;
BEGIN
    IF lines <> coalesce(array_length(p_quantities, 1), 0) THEN
        RAISE EXCEPTION 'stock.reserve: % items but % quantities', lines, array_length(p_quantities, 1);
    END IF;
    INSERT INTO stock.reservations (saga_id, items, quantities, state)
    VALUES (p_saga, p_items, p_quantities, 'reserved')
    ON CONFLICT (saga_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO prior FROM stock.reservations WHERE saga_id = p_saga;
        IF prior.state = 'reserved' THEN RETURN 'reserved'; END IF;
        RETURN 'refused: ' || coalesce(prior.reason, prior.state);
    END IF;
    FOR k IN 1 .. lines LOOP
        IF k > 1 AND p_items[k] COLLATE "C" <= p_items[k - 1] COLLATE "C" THEN
            RAISE EXCEPTION 'stock.reserve: items must be distinct and ascending (% after %)', p_items[k], p_items[k - 1];
        END IF;
        UPDATE stock.items SET stock = stock - p_quantities[k], version = version + 1
        WHERE item_id = p_items[k] AND stock >= p_quantities[k];
        IF NOT FOUND THEN
            short := CASE WHEN EXISTS (SELECT 1 FROM stock.items WHERE item_id = p_items[k])
                          THEN 'out of stock: ' ELSE 'unknown item: ' END || p_items[k];
            FOR j IN 1 .. k - 1 LOOP
                UPDATE stock.items SET stock = stock + p_quantities[j], version = version + 1
                WHERE item_id = p_items[j];
            END LOOP;
            UPDATE stock.reservations SET state = 'refused', reason = short WHERE saga_id = p_saga;
            RETURN 'refused: ' || short;
        END IF;
    END LOOP;
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN 'reserved';
END
$$;

-- Gives a saga's reserved stock back. Returns 'released' or 'nothing reserved'. A release of a
-- saga that never reserved leaves a tombstone, so a reserve arriving later is refused.
-- Synchronous commit (a compensation: see above).
CREATE FUNCTION stock.release(p_saga text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    released stock.reservations;
    line record;
BEGIN
    INSERT INTO stock.reservations (saga_id, state, reason) VALUES (p_saga, 'released', 'released before reserving')
    ON CONFLICT (saga_id) DO NOTHING;
    IF FOUND THEN RETURN 'nothing reserved'; END IF;
    UPDATE stock.reservations SET state = 'released', reason = 'released'
    WHERE saga_id = p_saga AND state = 'reserved'
    RETURNING * INTO released;
    IF NOT FOUND THEN RETURN 'nothing reserved'; END IF;
    FOR line IN
        SELECT item, sum(quantity) AS quantity
        FROM unnest(released.items, released.quantities) AS l(item, quantity)
        GROUP BY item ORDER BY item COLLATE "C"
    LOOP
        UPDATE stock.items SET stock = stock + line.quantity, version = version + 1 WHERE item_id = line.item;
    END LOOP;
    RETURN 'released';
END
$$;

RESET ROLE;

SET ROLE payment_service;

-- As in 0002, with asynchronous commit when the charge is taken (see above).
CREATE OR REPLACE FUNCTION payment.charge(p_saga text, p_user text, p_amount bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    prior_state text;
BEGIN
    INSERT INTO payment.charges (saga_id, user_id, amount, state)
    VALUES (p_saga, p_user, p_amount, 'charged')
    ON CONFLICT (saga_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT state INTO prior_state FROM payment.charges WHERE saga_id = p_saga;
        RETURN prior_state;
    END IF;
    UPDATE payment.users SET credit = credit - p_amount
    WHERE user_id = p_user AND credit >= p_amount;
    IF FOUND THEN
        PERFORM set_config('synchronous_commit', 'off', true);
        RETURN 'charged';
    END IF;
    UPDATE payment.charges SET state = 'refused' WHERE saga_id = p_saga;
    IF EXISTS (SELECT 1 FROM payment.users WHERE user_id = p_user) THEN
        RETURN 'refused';
    END IF;
    RETURN 'unknown_user';
END
$$;

RESET ROLE;
