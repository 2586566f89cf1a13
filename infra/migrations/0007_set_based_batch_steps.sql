-- stock.reserve_many and payment.charge_many (0006), rewritten to touch each row once per batch.
--
-- 0006 called the single-saga function for each saga in turn: per saga, one function call, one
-- ledger INSERT and one UPDATE per item (or user), on rows the batch had already locked. Here a
-- batch locks its rows and reads them once, claims every saga's ledger row in one INSERT, works
-- out each saga's outcome in order in memory (a saga sees the stock or credit the sagas before it
-- in the batch left), then writes each changed row once and marks the refused ledger rows in one
-- UPDATE. Same answers as 0006, saga by saga (the per-saga rules are those of 0005):
--
-- * a saga whose ledger row exists (before the batch, or earlier in it) answers from that row,
--   and changes nothing;
-- * otherwise all its items (or its charge) are taken, or none: refused with the first item, in
--   its ascending order, that is unknown or short ('refused: unknown item: <id>' /
--   'refused: out of stock: <id>'), or 'refused' / 'unknown_user' for a charge;
-- * the ledger row is claimed (INSERT ... ON CONFLICT DO NOTHING) after the batch's rows are
--   locked, as in 0006, so a concurrent call for the same saga waits on the unique index and
--   then answers from the row.
--
-- Two differences, neither an answer: `stock.items.version` (a change counter for operators)
-- grows by one for each saga that took stock from the item, where 0005 also counted the
-- decrement and re-increment of a saga refused at a later item; and the rows are written in one
-- statement at the end instead of one by one. Locking order (byte order of the id, all rows
-- before any ledger row) and the commit rule (asynchronous only if every saga succeeded) are
-- those of 0006.
SET ROLE stock_service;

CREATE OR REPLACE FUNCTION stock.reserve_many(p_sagas text[], p_line_counts bigint[], p_items text[], p_quantities bigint[])
RETURNS TABLE (o_saga text, o_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    sagas int := coalesce(array_length(p_sagas, 1), 0);
    lines int := coalesce(array_length(p_items, 1), 0);
    -- The batch's items that exist, in locking order, and their stock as the batch goes.
    ids text[] := '{}';
    left_ bigint[] := '{}';
    -- How many sagas took stock from each item.
    takers int[] := '{}';
    -- The sagas whose ledger row this batch inserted, and each one's outcome once worked out.
    claimed text[];
    decided text[] := '{}';
    outcomes text[] := '{}';
    refused_sagas text[] := '{}';
    refused_reasons text[] := '{}';
    first int := 1;
    n int;
    pos int;
    short text;
    prior stock.reservations;
    item record;
    all_reserved boolean := true;
BEGIN
    IF sagas <> coalesce(array_length(p_line_counts, 1), 0) THEN
        RAISE EXCEPTION 'stock.reserve_many: % sagas but % line counts', sagas, array_length(p_line_counts, 1);
    END IF;
    IF lines <> coalesce(array_length(p_quantities, 1), 0)
       OR lines <> (SELECT coalesce(sum(c), 0) FROM unnest(p_line_counts) AS c) THEN
        RAISE EXCEPTION 'stock.reserve_many: line counts, items and quantities do not match';
    END IF;
    FOR item IN SELECT item_id, stock FROM stock.items WHERE item_id = ANY (p_items)
                ORDER BY item_id COLLATE "C" FOR UPDATE LOOP
        ids := ids || item.item_id;
        left_ := left_ || item.stock;
        takers := takers || 0;
    END LOOP;

    WITH spans AS (
        SELECT s.saga, s.ord, sum(s.n) OVER (ORDER BY s.ord) - s.n + 1 AS lo, sum(s.n) OVER (ORDER BY s.ord) AS hi
        FROM unnest(p_sagas, p_line_counts) WITH ORDINALITY AS s(saga, n, ord)
    ), inserted AS (
        INSERT INTO stock.reservations (saga_id, items, quantities, state)
        SELECT l.saga, p_items[l.lo : l.hi], p_quantities[l.lo : l.hi], 'reserved' FROM spans AS l ORDER BY l.ord
        ON CONFLICT (saga_id) DO NOTHING
        RETURNING saga_id
    )
    SELECT coalesce(array_agg(saga_id), '{}') INTO claimed FROM inserted;

    FOR i IN 1 .. sagas LOOP
        n := p_line_counts[i];
        o_saga := p_sagas[i];
        pos := array_position(decided, o_saga);
        IF pos IS NOT NULL THEN
            -- Earlier in this batch: its row answers.
            o_outcome := outcomes[pos];
        ELSIF o_saga = ANY (claimed) THEN
            short := NULL;
            FOR k IN first .. first + n - 1 LOOP
                IF k > first AND p_items[k] COLLATE "C" <= p_items[k - 1] COLLATE "C" THEN
                    RAISE EXCEPTION 'stock.reserve: items must be distinct and ascending (% after %)', p_items[k], p_items[k - 1];
                END IF;
                pos := array_position(ids, p_items[k]);
                IF pos IS NULL THEN
                    short := 'unknown item: ' || p_items[k];
                ELSIF left_[pos] < p_quantities[k] THEN
                    short := 'out of stock: ' || p_items[k];
                END IF;
                EXIT WHEN short IS NOT NULL;
            END LOOP;
            IF short IS NULL THEN
                FOR k IN first .. first + n - 1 LOOP
                    pos := array_position(ids, p_items[k]);
                    left_[pos] := left_[pos] - p_quantities[k];
                    takers[pos] := takers[pos] + 1;
                END LOOP;
                o_outcome := 'reserved';
            ELSE
                refused_sagas := refused_sagas || o_saga;
                refused_reasons := refused_reasons || short;
                o_outcome := 'refused: ' || short;
            END IF;
            decided := decided || o_saga;
            outcomes := outcomes || o_outcome;
        ELSE
            -- In the ledger before this batch.
            SELECT * INTO prior FROM stock.reservations WHERE saga_id = o_saga;
            o_outcome := CASE WHEN prior.state = 'reserved' THEN 'reserved'
                              ELSE 'refused: ' || coalesce(prior.reason, prior.state) END;
        END IF;
        all_reserved := all_reserved AND o_outcome = 'reserved';
        first := first + n;
        RETURN NEXT;
    END LOOP;

    UPDATE stock.items AS i SET stock = c.stock, version = i.version + c.takers
    FROM unnest(ids, left_, takers) AS c(item_id, stock, takers)
    WHERE c.takers > 0 AND i.item_id = c.item_id;
    IF cardinality(refused_sagas) > 0 THEN
        UPDATE stock.reservations AS r SET state = 'refused', reason = x.reason
        FROM unnest(refused_sagas, refused_reasons) AS x(saga, reason)
        WHERE r.saga_id = x.saga;
    END IF;
    PERFORM set_config('synchronous_commit', CASE WHEN all_reserved THEN 'off' ELSE 'on' END, true);
END
$$;

RESET ROLE;

SET ROLE payment_service;

CREATE OR REPLACE FUNCTION payment.charge_many(p_sagas text[], p_users text[], p_amounts bigint[])
RETURNS TABLE (o_saga text, o_outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    sagas int := coalesce(array_length(p_sagas, 1), 0);
    -- The batch's users that exist, in locking order, and their credit as the batch goes.
    ids text[] := '{}';
    credit_left bigint[] := '{}';
    charged int[] := '{}';
    claimed text[];
    decided text[] := '{}';
    outcomes text[] := '{}';
    refused_sagas text[] := '{}';
    pos int;
    payer record;
    all_charged boolean := true;
BEGIN
    IF sagas <> coalesce(array_length(p_users, 1), 0) OR sagas <> coalesce(array_length(p_amounts, 1), 0) THEN
        RAISE EXCEPTION 'payment.charge_many: sagas, users and amounts do not match';
    END IF;

    FOR payer IN SELECT user_id, credit FROM payment.users WHERE user_id = ANY (p_users)
               ORDER BY user_id COLLATE "C" FOR UPDATE LOOP
        ids := ids || payer.user_id;
        credit_left := credit_left || payer.credit;
        charged := charged || 0;
    END LOOP;

    WITH inserted AS (
        INSERT INTO payment.charges (saga_id, user_id, amount, state)
        SELECT c.saga, c.user_id, c.amount, 'charged'
        FROM unnest(p_sagas, p_users, p_amounts) WITH ORDINALITY AS c(saga, user_id, amount, ord) ORDER BY c.ord
        ON CONFLICT (saga_id) DO NOTHING
        RETURNING saga_id
    )
    SELECT coalesce(array_agg(saga_id), '{}') INTO claimed FROM inserted;

    FOR i IN 1 .. sagas LOOP
        o_saga := p_sagas[i];
        pos := array_position(decided, o_saga);
        IF pos IS NOT NULL THEN
            o_outcome := outcomes[pos];
        ELSIF o_saga = ANY (claimed) THEN
            pos := array_position(ids, p_users[i]);
            IF pos IS NULL THEN
                o_outcome := 'unknown_user';
            ELSIF credit_left[pos] >= p_amounts[i] THEN
                credit_left[pos] := credit_left[pos] - p_amounts[i];
                charged[pos] := charged[pos] + 1;
                o_outcome := 'charged';
            ELSE
                o_outcome := 'refused';
            END IF;
            IF o_outcome <> 'charged' THEN
                refused_sagas := refused_sagas || o_saga;
            END IF;
            decided := decided || o_saga;
            -- A later entry of the same saga answers from its row's state.
            outcomes := outcomes || CASE WHEN o_outcome = 'charged' THEN 'charged' ELSE 'refused' END;
        ELSE
            SELECT state INTO o_outcome FROM payment.charges WHERE saga_id = o_saga;
        END IF;
        all_charged := all_charged AND o_outcome = 'charged';
        RETURN NEXT;
    END LOOP;

    UPDATE payment.users AS u SET credit = c.credit
    FROM unnest(ids, credit_left, charged) AS c(user_id, credit, charged)
    WHERE c.charged > 0 AND u.user_id = c.user_id;
    IF cardinality(refused_sagas) > 0 THEN
        UPDATE payment.charges SET state = 'refused' WHERE saga_id = ANY (refused_sagas);
    END IF;
    PERFORM set_config('synchronous_commit', CASE WHEN all_charged THEN 'off' ELSE 'on' END, true);
END
$$;

RESET ROLE;
