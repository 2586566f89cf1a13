-- Rentals, owned by the order service (schema `orders`, role `orders_service`): a rental is an
-- order to borrow an item for some days. Its row is written by the rental saga's own steps
-- (record rental, mark active, cancel rental) and by its return saga (mark returned); the stock
-- unit it holds and the money it moved are in the stock and payment services' ledgers, keyed by
-- the saga id `rental:<rental_id>`.
SET ROLE orders_service;

CREATE TABLE IF NOT EXISTS orders.rentals (
    rental_id    text PRIMARY KEY,
    item_id      text NOT NULL,
    borrower_id  text NOT NULL,
    owner_id     text NOT NULL,
    days         bigint NOT NULL CHECK (days BETWEEN 1 AND 365),
    daily_price  bigint NOT NULL CHECK (daily_price >= 0),
    amount       bigint NOT NULL CHECK (amount >= 0),
    -- pending: its saga runs; active: paid, the unit is the borrower's; returned: given back;
    -- failed: refused, everything it did undone (`reason` says why).
    state        text NOT NULL CHECK (state IN ('pending', 'active', 'returned', 'failed')),
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    ended_at     timestamptz
);
CREATE INDEX IF NOT EXISTS rentals_borrower ON orders.rentals (borrower_id);

RESET ROLE;
