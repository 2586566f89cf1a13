-- The server-side functions of schema `stock`: the live definition of each, the one to read and
-- to edit. (The functions of schema `payment` are in payment.sql; schema `orders` has none.)
--
-- How this file is applied: `infra/migrate` (run by `infra/stores up`) applies every
-- infra/functions/*.sql, in name order, on EVERY run, after the numbered migrations, each file
-- in one transaction with ON_ERROR_STOP. So everything here must be idempotent: CREATE OR
-- REPLACE, never a bare CREATE. A fresh database first gets these functions from the numbered
-- migrations (0004 created reserve and release, 0005 dropped and re-created both, 0006 added
-- reserve_many, 0007 replaced it, 0008 replaced release; delete_item is in none) and then this
-- file over them; an existing database gets this file alone. Both end with the definitions below. The numbered
-- migrations stay as they are, as history (their checksums are recorded in existing databases:
-- editing one makes `infra/migrate` refuse to run there); they no longer say what runs.
--
-- Rules:
-- * To change a function's body, edit it here; the next `infra/migrate` replaces it.
-- * To add a function, add it here (no numbered migration is needed).
-- * CREATE OR REPLACE cannot change a function's argument types or its result (the OUT / RETURNS
--   TABLE columns), nor remove a function: an edited argument list here would add a second
--   function beside the old one, an edited result fails. For such a change, or a removal, write a
--   numbered migration that DROPs the old signature (DROP FUNCTION IF EXISTS stock.f(<types>)),
--   and change (or delete) the function here in the same commit.
-- * A numbered migration must not rely on the definitions here: on a fresh database the
--   migrations run before this file, and see the functions as the migrations before them left
--   them.
-- * Owner, grants, SECURITY, settings, as the migrations gave them: each function is created as
--   the schema's role (SET ROLE stock_service below), which owns it; CREATE OR REPLACE keeps an
--   existing function's owner and grants. No GRANT or REVOKE: EXECUTE is PUBLIC's by default,
--   but only stock_service may use schema `stock` (0001 revoked it from PUBLIC). SECURITY
--   INVOKER (the default) and no SET clause: every name in the bodies is schema-qualified.
--   CREATE OR REPLACE resets SECURITY and SET to what the statement says, so any wanted later go
--   into the statement itself, not into a separate ALTER FUNCTION.
--
-- Why functions at all: Spin's Postgres interface has no transaction object, so each saga step
-- that touches several rows is ONE statement, `SELECT stock.reserve(...)`, and the function body
-- runs in that statement's transaction, all or nothing. Every step is idempotent by its saga id:
-- the saga's ledger row in stock.reservations is claimed first (INSERT ... ON CONFLICT DO NOTHING;
-- a concurrent duplicate waits on the unique index, then sees the row), and a repeated call
-- answers from it. See docs/checkout-saga.md.
--
-- In saga order: the forward step (reserve, then its batched form reserve_many), then its
-- compensation (release); last, delete_item (DELETE /stock/items/{id}), which an item's rental
-- holds refuse.
SET ROLE stock_service;

-- stock.reserve: the checkout saga's forward step "reserve stock", for one saga
-- (POST /stock/reserve/{saga_id}). Reserves all the lines or none. p_items must be distinct and
-- ascending (byte order), p_quantities >= 1: the stock service sends them merged per item and
-- sorted, and the function raises an error on items out of order, so rows are always locked in
-- one order and reservations cannot deadlock. Returns 'reserved', or 'refused: <why>'
-- ('unknown item: <id>' or 'out of stock: <id>', the first such item in order; also when the
-- saga's reservation was already released: a compensated saga never reserves again). When an
-- item is short it undoes the items it already took itself (no subtransaction). A successful
-- reserve commits asynchronously (synchronous_commit off for its transaction: nothing a client
-- was told can be lost, see migration 0005 and docs/checkout-saga.md); a refusal commits
-- synchronously.
CREATE OR REPLACE FUNCTION stock.reserve(p_saga text, p_items text[], p_quantities bigint[])
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

-- stock.reserve_many: the same step for many sagas in one statement (POST /stock/reserve_many:
-- the order service's batched forward steps, docs/checkout-saga.md "Batched forward steps").
-- p_sagas[i] reserves the next p_line_counts[i] lines of p_items / p_quantities (merged per item
-- and ascending, as stock.reserve wants). Returns one row per saga, in order: the saga id and
-- the outcome stock.reserve would have answered, called for each saga in turn (a saga whose
-- ledger row exists, from before the batch or earlier in it, answers from that row and changes
-- nothing; one saga refused does not affect the others). It first locks and reads every item row
-- of the batch in byte order of the id (so batches and single calls cannot deadlock on them),
-- then claims every saga's ledger row in one INSERT, works out each saga's outcome in memory (a
-- saga sees the stock the sagas before it left), and writes each changed item once and the
-- refused ledger rows in one UPDATE. An item's `version` grows by one for each saga that took
-- stock from it. Commits asynchronously only if every saga was reserved.
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

-- stock.release: the compensation "release stock" (POST /stock/release/{saga_id}). Gives a
-- saga's reserved stock back, all of it or none; what to give back comes from its ledger row.
-- Returns 'released', 'nothing reserved', or 'refused: stock overflow: <item>' (the first item,
-- in id order, whose stock cannot take its units back below 2^63 - 1: nothing changes, the
-- reservation stays 'reserved' and its reason says why; calling it again once there is room, an
-- operator's `SELECT stock.release('<saga>')`, gives it back). A release of a saga that never
-- reserved leaves a tombstone, so a reserve arriving later is refused. Locks the ledger row
-- first, then the item rows in byte order of the id, before it checks. Synchronous commit.
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

-- stock.delete_item: takes an item down (DELETE /stock/items/{id}; the stock service has
-- checked that the caller owns it) unless a rental holds it. A rental hold is a reservation of a
-- rental saga (saga id 'rental:...') in state 'reserved' whose items include the item
-- (migration 0013 indexes them). Returns:
--   'deleted'       the item is gone
--   'unknown_item'  there is no such item (any more)
--   'rental_hold'   a rental holds the item: nothing changed (409)
-- Locks the item row first, then checks the holds in a statement of its own, then deletes.
-- Why a function and not one DELETE ... WHERE NOT EXISTS (...): a reservation locks (updates)
-- the rows of its items in the transaction that inserts it. The lock here waits for such a
-- reservation to commit, and the check, a later statement, sees it (in READ COMMITTED, each
-- statement of a function takes a fresh snapshot); a single DELETE would check with the
-- snapshot it started with, and could delete an item a reservation committed meanwhile holds.
-- A reservation that comes after the lock waits for it and finds the item gone (refused).
CREATE OR REPLACE FUNCTION stock.delete_item(p_item text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM stock.items WHERE item_id = p_item FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'unknown_item';
    END IF;
    IF EXISTS (SELECT 1 FROM stock.reservations
               WHERE state = 'reserved' AND saga_id LIKE 'rental:%' AND items @> ARRAY[p_item]) THEN
        RETURN 'rental_hold';
    END IF;
    DELETE FROM stock.items WHERE item_id = p_item;
    RETURN 'deleted';
END
$$;

RESET ROLE;
