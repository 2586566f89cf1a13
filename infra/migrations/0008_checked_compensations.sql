-- The checkout saga's compensations, stock.release and payment.refund, with checked additions.
--
-- Both give back what a saga took by adding it to a bigint (an item's stock, a user's credit).
-- Until now an addition past the largest bigint raised numeric_value_out_of_range: the endpoint
-- answered 500, which the saga takes for a transient failure and retries, for ever (the stock or
-- credit does not shrink by itself). Now such a compensation is refused, for good, and changes
-- nothing: the saga reads the refusal (409) as the compensation's answer and ends as failed.
--
-- Nothing is lost: what could not be given back stays with the saga, on record in its ledger
-- row — the reservation stays 'reserved' (with the reason), the charge stays 'charged' — so stock
-- + units held by reservations, and credit + amounts charged, are unchanged. Calling the function
-- again once there is room gives it back (an operator's `SELECT stock.release('<saga>')`).
-- Giving back only what fits would lose the rest; clamping at the maximum would too.
--
-- Locking order is that of 0005 / 0002: the ledger row first, then the item rows in byte order
-- of the id (the user row for a refund); the rows are locked before they are checked, so an
-- addition that passed the check cannot overflow at the update.
SET ROLE stock_service;

-- Gives a saga's reserved stock back, all of it or none. Returns 'released', 'nothing reserved',
-- or 'refused: stock overflow: <item>' (the first item, in id order, whose stock cannot take its
-- units back; the reservation stays 'reserved', its reason says why). A release of a saga that
-- never reserved leaves a tombstone, so a reserve arriving later is refused. Synchronous commit.
CREATE OR REPLACE FUNCTION stock.release(p_saga text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    held stock.reservations;
    line record;
    over text;
BEGIN
    INSERT INTO stock.reservations (saga_id, state, reason) VALUES (p_saga, 'released', 'released before reserving')
    ON CONFLICT (saga_id) DO NOTHING;
    IF FOUND THEN RETURN 'nothing reserved'; END IF;
    SELECT * INTO held FROM stock.reservations WHERE saga_id = p_saga AND state = 'reserved' FOR UPDATE;
    IF NOT FOUND THEN RETURN 'nothing reserved'; END IF;
    PERFORM 1 FROM stock.items WHERE item_id = ANY (held.items) ORDER BY item_id COLLATE "C" FOR UPDATE;
    -- sum() of bigints is numeric: neither the sum nor the comparison can overflow.
    SELECT l.item INTO over
    FROM (SELECT item, sum(quantity) AS quantity FROM unnest(held.items, held.quantities) AS l(item, quantity) GROUP BY item) AS l
    JOIN stock.items AS i ON i.item_id = l.item
    WHERE i.stock + l.quantity > 9223372036854775807
    ORDER BY l.item COLLATE "C"
    LIMIT 1;
    IF over IS NOT NULL THEN
        UPDATE stock.reservations SET reason = 'release refused: the stock of ' || over || ' cannot take its units back'
        WHERE saga_id = p_saga;
        RETURN 'refused: stock overflow: ' || over;
    END IF;
    UPDATE stock.reservations SET state = 'released', reason = 'released' WHERE saga_id = p_saga;
    FOR line IN
        SELECT item, sum(quantity) AS quantity
        FROM unnest(held.items, held.quantities) AS l(item, quantity)
        GROUP BY item ORDER BY item COLLATE "C"
    LOOP
        UPDATE stock.items SET stock = stock + line.quantity, version = version + 1 WHERE item_id = line.item;
    END LOOP;
    RETURN 'released';
END
$$;

RESET ROLE;

SET ROLE payment_service;

-- Gives back what saga `p_saga` charged. Returns:
--   'refunded'         the credit was given back (now, or by an earlier call of this saga)
--   'nothing_charged'  the saga never charged; a tombstone now makes any later charge a no-op
--   'refused'          the saga's charge was refused: nothing to give back
--   'credit_overflow'  the user's credit cannot take the amount back: nothing changed, the
--                      charge stays 'charged' (a later call gives it back once there is room)
CREATE OR REPLACE FUNCTION payment.refund(p_saga text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    charged payment.charges;
    current_credit bigint;
    prior_state text;
BEGIN
    INSERT INTO payment.charges (saga_id, state) VALUES (p_saga, 'refunded')
    ON CONFLICT (saga_id) DO NOTHING;
    IF FOUND THEN
        RETURN 'nothing_charged';
    END IF;
    SELECT * INTO charged FROM payment.charges WHERE saga_id = p_saga AND state = 'charged' FOR UPDATE;
    IF FOUND THEN
        SELECT credit INTO current_credit FROM payment.users WHERE user_id = charged.user_id FOR UPDATE;
        IF FOUND AND current_credit > 9223372036854775807 - charged.amount THEN
            RETURN 'credit_overflow';
        END IF;
        UPDATE payment.charges SET state = 'refunded' WHERE saga_id = p_saga;
        UPDATE payment.users SET credit = credit + charged.amount WHERE user_id = charged.user_id;
        RETURN 'refunded';
    END IF;
    SELECT state INTO prior_state FROM payment.charges WHERE saga_id = p_saga;
    RETURN prior_state;
END
$$;

RESET ROLE;
