-- The stock service's store: schema `stock`, owned by its own role `stock_service`.
-- No other service's role may read or write it; other services go through the stock API.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stock_service') THEN
        CREATE ROLE stock_service LOGIN PASSWORD 'stock_service';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS stock AUTHORIZATION stock_service;
REVOKE ALL ON SCHEMA stock FROM PUBLIC;

CREATE TABLE IF NOT EXISTS stock.items (
    item_id text PRIMARY KEY,
    stock   bigint NOT NULL DEFAULT 0 CHECK (stock >= 0),
    price   bigint NOT NULL CHECK (price >= 0),
    -- Bumped by every write; orders the values written into the Redis cache.
    version bigint NOT NULL DEFAULT 0
);
ALTER TABLE stock.items OWNER TO stock_service;
