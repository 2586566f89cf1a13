-- The rental saga's credit ledger: one row per saga that credited an item's owner, was refused,
-- was reversed, or was blocked, kept by payment.credit (the step "credit owner",
-- POST /payment/credit/{saga_id}/{user_id}/{amount}) and payment.reverse_credit (its
-- compensation, POST /payment/reverse_credit/{saga_id}), the way payment.charges is kept by
-- charge and refund. The two functions live in infra/functions/payment.sql alone (a new function
-- needs no numbered migration). A row with state 'blocked' and neither user nor amount is a
-- tombstone: the reverse came before any credit, and a late credit of that saga is refused.
SET ROLE payment_service;

CREATE TABLE IF NOT EXISTS payment.credits (
    saga_id    text PRIMARY KEY,
    user_id    text,
    amount     bigint CHECK (amount >= 0),
    state      text NOT NULL CHECK (state IN ('credited', 'refused', 'reversed', 'blocked')),
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (state = 'blocked' OR (user_id IS NOT NULL AND amount IS NOT NULL))
);

RESET ROLE;
