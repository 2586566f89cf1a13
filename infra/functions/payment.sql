-- The server-side functions of schema `payment`: the live definition of each, the one to read
-- and to edit. (The functions of schema `stock` are in stock.sql; schema `orders` has none.)
--
-- How this file is applied: `infra/migrate` (run by `infra/stores up`) applies every
-- infra/functions/*.sql, in name order, on EVERY run, after the numbered migrations, each file
-- in one transaction with ON_ERROR_STOP. So everything here must be idempotent: CREATE OR
-- REPLACE, never a bare CREATE. A fresh database first gets these functions from the numbered
-- migrations (0002 created charge and refund, 0005 replaced charge, 0006 added charge_many, 0007
-- replaced it, 0008 replaced refund; credit and reverse_credit are in none, only their table:
-- 0012) and then this file over them; an existing database gets this file alone. Both end with
-- the definitions below. The numbered migrations stay as they are, as history (their checksums
-- are recorded in existing databases: editing one makes `infra/migrate` refuse to run there);
-- they no longer say what runs.
--
-- Rules:
-- * To change a function's body, edit it here; the next `infra/migrate` replaces it.
-- * To add a function, add it here (no numbered migration is needed).
-- * CREATE OR REPLACE cannot change a function's argument types or its result (the OUT / RETURNS
--   TABLE columns), nor remove a function: an edited argument list here would add a second
--   function beside the old one, an edited result fails. For such a change, or a removal, write a
--   numbered migration that DROPs the old signature (DROP FUNCTION IF EXISTS payment.f(<types>)),
--   and change (or delete) the function here in the same commit.
-- * A numbered migration must not rely on the definitions here: on a fresh database the
--   migrations run before this file, and see the functions as the migrations before them left
--   them.
-- * Owner, grants, SECURITY, settings, as the migrations gave them: each function is created as
--   the schema's role (SET ROLE payment_service below), which owns it; CREATE OR REPLACE keeps an
--   existing function's owner and grants. No GRANT or REVOKE: EXECUTE is PUBLIC's by default,
--   but only payment_service may use schema `payment` (0002 revoked it from PUBLIC). SECURITY
--   INVOKER (the default) and no SET clause: every name in the bodies is schema-qualified.
--   CREATE OR REPLACE resets SECURITY and SET to what the statement says, so any wanted later go
--   into the statement itself, not into a separate ALTER FUNCTION.
--
-- Why functions at all: Spin's Postgres interface has no transaction object, and a step touches
-- two rows (the ledger row and the user's credit) that must change together. The endpoint runs
-- `SELECT payment.charge(...)` / `SELECT payment.refund(...)`: a single statement, so the whole
-- function body runs in one transaction, all or nothing. How they are idempotent: each claims
-- the saga's ledger row in payment.charges FIRST with INSERT ... ON CONFLICT DO NOTHING. Only the
-- caller whose insert lands does the work; any later (or concurrent: it waits on the primary key
-- until the first commits) call of the same saga finds the row and answers from its state
-- without touching credit again. So a retried charge never charges twice, a retried refund never
-- refunds twice, a refund that arrives before its charge leaves a tombstone that makes the late
-- charge a no-op, and a refused charge stays refused (the saga re-driven from its first step
-- reaches the same decision). See docs/checkout-saga.md.
--
-- In saga order: the forward step (charge, then its batched form charge_many), then its
-- compensation (refund); then the rental saga's step "credit owner" (credit) and its
-- compensation (reverse_credit), kept the same way in their own ledger, payment.credits
-- (migration 0012).
SET ROLE payment_service;

-- payment.charge: the checkout saga's forward step "charge payment", for one saga
-- (POST /payment/charge/{saga_id}/{user_id}/{amount}). Charges p_amount to p_user for saga
-- p_saga. Returns:
--   'charged'       credit taken (now, or by an earlier call of this saga)
--   'refused'       not enough credit (now or earlier); recorded, nothing taken
--   'unknown_user'  no such user; recorded as 'refused', nothing taken
--   'refunded'      the saga was refunded (or compensated before charging): nothing taken
-- A charge taken commits asynchronously (synchronous_commit off for its transaction: nothing a
-- client was told can be lost, see migration 0005 and docs/checkout-saga.md); a refusal commits
-- synchronously.
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

-- payment.charge_many: the same step for many sagas in one statement (POST /payment/charge_many:
-- the order service's batched forward steps, docs/checkout-saga.md "Batched forward steps").
-- Charges p_amounts[i] to p_users[i] for p_sagas[i]. Returns one row per saga, in order: the
-- saga id and the outcome payment.charge would have answered, called for each saga in turn (a
-- saga whose ledger row exists, from before the batch or earlier in it, answers from that row and
-- changes nothing; one saga refused does not affect the others). It first locks and reads every
-- user row of the batch in byte order of the id (so batches and single calls cannot deadlock on
-- them), then claims every saga's ledger row in one INSERT, works out each saga's outcome in
-- memory (a saga sees the credit the sagas before it left), and writes each changed user once
-- and the refused ledger rows in one UPDATE. Commits asynchronously only if every saga was
-- charged.
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

-- payment.refund: the compensation "refund payment" (POST /payment/refund/{saga_id}). Gives back
-- what saga `p_saga` charged. Returns:
--   'refunded'         the credit was given back (now, or by an earlier call of this saga)
--   'nothing_charged'  the saga never charged; a tombstone now makes any later charge a no-op
--   'refused'          the saga's charge was refused: nothing to give back
--   'credit_overflow'  the user's credit cannot take the amount back below 2^63 - 1: nothing
--                      changed, the charge stays 'charged' (a later call gives it back once
--                      there is room: an operator's `SELECT payment.refund('<saga>')`)
-- Locks the ledger row first, then the user row, before it checks. Synchronous commit.
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

-- payment.credit: the rental saga's forward step "credit owner"
-- (POST /payment/credit/{saga_id}/{user_id}/{amount}). Credits p_amount to p_user (the rented
-- item's owner) for saga p_saga, once. Claims the saga's row in payment.credits first, as charge
-- claims its row in payment.charges. Returns:
--   'credited'         credit added (now, or by an earlier call of this saga)
--   'refused'          refused by an earlier call (unknown user, or a credit past 2^63 - 1)
--   'unknown_user'     no such user; recorded as 'refused', nothing credited
--   'credit_overflow'  the user's credit cannot take the amount below 2^63 - 1; recorded as
--                      'refused', nothing credited
--   'blocked'          the saga's credit was reversed before it was made: nothing credited
--   'reversed'         the saga's credit was made and reversed already: nothing credited again
-- Locks the ledger row (its insert), then the user row (the update). A credit made commits
-- asynchronously, as a charge taken does, and for the same reason (docs/rentals.md): every answer
-- of a rental comes after a synchronous commit that follows this step in the WAL ("mark active"
-- before a 2xx, "cancel rental" before a 4xx); a refusal commits synchronously.
CREATE OR REPLACE FUNCTION payment.credit(p_saga text, p_user text, p_amount bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    prior_state text;
BEGIN
    INSERT INTO payment.credits (saga_id, user_id, amount, state)
    VALUES (p_saga, p_user, p_amount, 'credited')
    ON CONFLICT (saga_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT state INTO prior_state FROM payment.credits WHERE saga_id = p_saga;
        RETURN prior_state;
    END IF;
    -- p_amount >= 0 (the ledger's check refused the insert otherwise): the bound cannot overflow.
    UPDATE payment.users SET credit = credit + p_amount
    WHERE user_id = p_user AND credit <= 9223372036854775807 - p_amount;
    IF FOUND THEN
        PERFORM set_config('synchronous_commit', 'off', true);
        RETURN 'credited';
    END IF;
    IF EXISTS (SELECT 1 FROM payment.users WHERE user_id = p_user) THEN
        UPDATE payment.credits SET state = 'refused', reason = 'the credit of the user cannot take the amount below 2^63 - 1'
        WHERE saga_id = p_saga;
        RETURN 'credit_overflow';
    END IF;
    UPDATE payment.credits SET state = 'refused', reason = 'unknown user' WHERE saga_id = p_saga;
    RETURN 'unknown_user';
END
$$;

-- payment.reverse_credit: the compensation of "credit owner"
-- (POST /payment/reverse_credit/{saga_id}). Takes back what saga p_saga credited. Returns:
--   'reversed'             the credit was taken back (now, or by an earlier call of this saga)
--   'nothing_credited'     the saga credited nothing (its credit was refused, or never made: a
--                          tombstone 'blocked' now makes any later credit of the saga refused)
--   'insufficient_credit'  the owner no longer has the amount (spent it): refused for good,
--                          nothing changed but the row's reason; the credit stays 'credited' (a
--                          later call takes it back once the owner has it again: an operator's
--                          `SELECT payment.reverse_credit('<saga>')`)
-- Locks the ledger row first, then the user row, before it checks (as refund). Synchronous
-- commit.
CREATE OR REPLACE FUNCTION payment.reverse_credit(p_saga text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    credited payment.credits;
    current_credit bigint;
    prior_state text;
BEGIN
    INSERT INTO payment.credits (saga_id, state, reason) VALUES (p_saga, 'blocked', 'reversed before it was credited')
    ON CONFLICT (saga_id) DO NOTHING;
    IF FOUND THEN
        RETURN 'nothing_credited';
    END IF;
    SELECT * INTO credited FROM payment.credits WHERE saga_id = p_saga AND state = 'credited' FOR UPDATE;
    IF FOUND THEN
        SELECT credit INTO current_credit FROM payment.users WHERE user_id = credited.user_id FOR UPDATE;
        IF NOT FOUND OR current_credit < credited.amount THEN
            UPDATE payment.credits SET reason = 'reverse refused: the owner no longer has the amount'
            WHERE saga_id = p_saga;
            RETURN 'insufficient_credit';
        END IF;
        UPDATE payment.credits SET state = 'reversed', reason = 'reversed' WHERE saga_id = p_saga;
        UPDATE payment.users SET credit = credit - credited.amount WHERE user_id = credited.user_id;
        RETURN 'reversed';
    END IF;
    SELECT state INTO prior_state FROM payment.credits WHERE saga_id = p_saga;
    RETURN CASE prior_state WHEN 'reversed' THEN 'reversed' ELSE 'nothing_credited' END;
END
$$;

RESET ROLE;
