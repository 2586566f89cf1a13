-- The order service's store: schema `orders`, owned by its own role `orders_service`.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders_service') THEN
        CREATE ROLE orders_service LOGIN PASSWORD 'orders_service';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS orders AUTHORIZATION orders_service;
REVOKE ALL ON SCHEMA orders FROM PUBLIC;

CREATE TABLE IF NOT EXISTS orders.orders (
    order_id     text PRIMARY KEY,
    user_id      text NOT NULL,
    paid         boolean NOT NULL DEFAULT false,
    -- [[item_id, quantity], ...] in the order they were added (WDM's shape).
    items        jsonb NOT NULL DEFAULT '[]'::jsonb,
    total_cost   bigint NOT NULL DEFAULT 0 CHECK (total_cost >= 0),
    -- The checkout saga that paid the order.
    paid_by_saga text,
    -- Bumped when batch_init re-creates the order: a new generation has a new saga history.
    generation   bigint NOT NULL DEFAULT 0
);
ALTER TABLE orders.orders OWNER TO orders_service;
