-- The accounts service's store: schema `accounts`, owned by its own role `accounts_service`.
-- No other service's role may read or write it; other services go through the accounts API (or,
-- for revoked tokens, the list the accounts service publishes in Redis).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'accounts_service') THEN
        CREATE ROLE accounts_service LOGIN PASSWORD 'accounts_service';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS accounts AUTHORIZATION accounts_service;
REVOKE ALL ON SCHEMA accounts FROM PUBLIC;

-- The readiness check connects with every service's role and reads the migration record.
GRANT SELECT ON public.schema_migrations TO accounts_service;

SET ROLE accounts_service;

-- A user: a unique, case-folded username and its password as an argon2id PHC string (never the
-- password). `payment_open`: the registration has opened the user's payment account (same id);
-- a registration retried after it failed half-way finishes that step. `admin` is granted by an
-- operator (UPDATE ... SET admin = true), never through the API.
CREATE TABLE IF NOT EXISTS accounts.users (
    user_id       text PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_]{3,32}$'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    admin         boolean NOT NULL DEFAULT false,
    payment_open  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

RESET ROLE;
