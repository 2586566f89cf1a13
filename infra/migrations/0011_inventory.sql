-- The sharing-economy inventory: items gain an owner, a listing (title, description, category,
-- daily rental price) and timestamps. Existing rows stay valid: an item without an owner (made by
-- the WDM routes or batch_init) has an empty listing, and only an admin may change it where tokens
-- are required.
SET ROLE stock_service;

ALTER TABLE stock.items
    ADD COLUMN IF NOT EXISTS owner_id    text,
    ADD COLUMN IF NOT EXISTS title       text   NOT NULL DEFAULT '' CHECK (length(title) <= 200),
    ADD COLUMN IF NOT EXISTS description text   NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    ADD COLUMN IF NOT EXISTS category    text   NOT NULL DEFAULT '' CHECK (length(category) <= 64),
    ADD COLUMN IF NOT EXISTS daily_price bigint NOT NULL DEFAULT 0 CHECK (daily_price >= 0),
    ADD COLUMN IF NOT EXISTS created_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at  timestamptz NOT NULL DEFAULT now(),
    -- The listing order: newest first, a cursor is the last seq seen (keyset pagination, so
    -- pages do not shift when items are added meanwhile).
    ADD COLUMN IF NOT EXISTS listed_seq  bigint GENERATED ALWAYS AS IDENTITY,
    -- What `q` searches (Postgres full-text search, English stemming).
    ADD COLUMN IF NOT EXISTS search      tsvector
        GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || description || ' ' || category)) STORED;

-- The list shows listed items only: an owner and a title (the WDM items have neither).
CREATE UNIQUE INDEX IF NOT EXISTS items_listed ON stock.items (listed_seq) WHERE owner_id IS NOT NULL AND title <> '';
CREATE INDEX IF NOT EXISTS items_owner ON stock.items (owner_id, listed_seq) WHERE owner_id IS NOT NULL AND title <> '';
CREATE INDEX IF NOT EXISTS items_category ON stock.items (category, listed_seq) WHERE owner_id IS NOT NULL AND title <> '';
CREATE INDEX IF NOT EXISTS items_search ON stock.items USING gin (search) WHERE owner_id IS NOT NULL AND title <> '';

RESET ROLE;
