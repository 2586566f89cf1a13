-- The reservations that hold an item for a rental (saga id `rental:...`, state 'reserved'),
-- indexed by item: `DELETE /stock/items/{id}` looks them up (stock.delete_item in
-- infra/functions/stock.sql: an item with an active rental is not deleted, 409). Partial: only
-- the open rental holds are in it, so it stays small and the checkout's reservations never
-- touch it.
SET ROLE stock_service;

CREATE INDEX IF NOT EXISTS reservations_rental_holds ON stock.reservations USING gin (items)
    WHERE state = 'reserved' AND saga_id LIKE 'rental:%';

RESET ROLE;
