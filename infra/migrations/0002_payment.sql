-- The payment service's store: schema `payment`, owned by its own role `payment_service`.
-- No other service's role may read or write it; other services go through the payment API.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payment_service') THEN
        CREATE ROLE payment_service LOGIN PASSWORD 'payment_service';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS payment AUTHORIZATION payment_service;
REVOKE ALL ON SCHEMA payment FROM PUBLIC;

SET ROLE payment_service;

CREATE TABLE IF NOT EXISTS payment.users (
    user_id text PRIMARY KEY,
    credit  bigint NOT NULL DEFAULT 0 CHECK (credit >= 0)
);

-- The checkout saga's ledger: one row per saga that charged, was refused, or was refunded.
-- A row with state 'refunded' and no user is a tombstone: the refund came before any charge.
CREATE TABLE IF NOT EXISTS payment.charges (
    saga_id    text PRIMARY KEY,
    user_id    text,
    amount     bigint CHECK (amount >= 0),
    state      text NOT NULL CHECK (state IN ('charged', 'refused', 'refunded')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The saga steps `charge` and `refund`.
--
-- Why ONE statement each: Spin's Postgres interface has no transaction object, and a step
-- touches two rows (the ledger row and the user's credit) that must change together. The
-- endpoint runs `SELECT payment.charge(...)` / `SELECT payment.refund(...)`: a single statement,
-- so the whole function body runs in one transaction, all or nothing.
--
-- How they are idempotent: each claims the saga's ledger row FIRST with
-- INSERT ... ON CONFLICT DO NOTHING. Only the caller whose insert lands does the work; any later
-- (or concurrent: it waits on the primary key until the first commits) call of the same saga
-- finds the row and answers from its state without touching credit again. So a retried charge
-- never charges twice, a retried refund never refunds twice, a refund that arrives before its
-- charge leaves a tombstone that makes the late charge a no-op, and a refused charge stays
-- refused (the saga re-driven from its first step reaches the same decision).

-- Charges `p_amount` to `p_user` for saga `p_saga`. Returns:
--   'charged'       credit taken (now, or by an earlier call of this saga)
--   'refused'       not enough credit (now or earlier); recorded, nothing taken
--   'unknown_user'  no such user; recorded as 'refused', nothing taken
--   'refunded'      the saga was refunded (or compensated before charging): nothing taken
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
        RETURN 'charged';
    END IF;
    UPDATE payment.charges SET state = 'refused' WHERE saga_id = p_saga;
    IF EXISTS (SELECT 1 FROM payment.users WHERE user_id = p_user) THEN
        RETURN 'refused';
    END IF;
    RETURN 'unknown_user';
END
$$;

-- Gives back what saga `p_saga` charged. Returns:
--   'refunded'         the credit was given back (now, or by an earlier call of this saga)
--   'nothing_charged'  the saga never charged; a tombstone now makes any later charge a no-op
--   'refused'          the saga's charge was refused: nothing to give back
CREATE OR REPLACE FUNCTION payment.refund(p_saga text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    refunded payment.charges;
    prior_state text;
BEGIN
    INSERT INTO payment.charges (saga_id, state) VALUES (p_saga, 'refunded')
    ON CONFLICT (saga_id) DO NOTHING;
    IF FOUND THEN
        RETURN 'nothing_charged';
    END IF;
    UPDATE payment.charges SET state = 'refunded'
    WHERE saga_id = p_saga AND state = 'charged'
    RETURNING * INTO refunded;
    IF FOUND THEN
        UPDATE payment.users SET credit = credit + refunded.amount WHERE user_id = refunded.user_id;
        RETURN 'refunded';
    END IF;
    SELECT state INTO prior_state FROM payment.charges WHERE saga_id = p_saga;
    RETURN prior_state;
END
$$;

RESET ROLE;
