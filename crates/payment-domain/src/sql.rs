//! Every statement the payment service runs. Each change is ONE statement, so it is atomic without
//! a transaction object (Spin's Postgres interface has none); the saga steps are server-side
//! functions (infra/functions/payment.sql) called in one statement.

/// → the new user's generated id; credit starts at 0.
pub const CREATE_USER: &str =
    "INSERT INTO payment.users (user_id, credit) VALUES (gen_random_uuid()::text, 0) RETURNING user_id";

/// `$1` user id: opens the account with credit 0 if it is not open → `opened` (false: it was).
pub const OPEN_ACCOUNT: &str = "WITH opened AS (INSERT INTO payment.users (user_id, credit) VALUES ($1, 0) \
     ON CONFLICT (user_id) DO NOTHING RETURNING 1) SELECT EXISTS (SELECT 1 FROM opened) AS opened";

/// `$1` user id → credit.
pub const FIND_USER: &str = "SELECT credit FROM payment.users WHERE user_id = $1";

/// `$1` user id, `$2` amount → credit; no row when the user does not exist.
/// Overflow raises SQLSTATE 22003 (numeric_value_out_of_range).
pub const ADD_FUNDS: &str = "UPDATE payment.users SET credit = credit + $2 WHERE user_id = $1 RETURNING credit";

/// `$1` user id, `$2` amount → credit; no row when the user does not exist or has less than
/// `$2` credit (the check and the change are one atomic statement).
pub const PAY: &str =
    "UPDATE payment.users SET credit = credit - $2 WHERE user_id = $1 AND credit >= $2 RETURNING credit";

/// `$1` user id → one row when the user exists (tells "unknown" from "not enough" after a refusal).
pub const USER_EXISTS: &str = "SELECT 1 FROM payment.users WHERE user_id = $1";

/// Run after BATCH_INIT (see `spin_kit::pg_store::vacuum_after_bulk_write`).
pub const VACUUM_USERS: &str = "VACUUM (ANALYZE) payment.users";

/// `$1` n, `$2` starting credit: (re)creates users "0".."n-1" in one statement.
pub const BATCH_INIT: &str = "INSERT INTO payment.users (user_id, credit) \
     SELECT g::text, $2 FROM generate_series(0::bigint, $1::bigint - 1) AS g \
     ON CONFLICT (user_id) DO UPDATE SET credit = EXCLUDED.credit";

/// SQLSTATE of an integer overflow.
pub const NUMERIC_OUT_OF_RANGE: &str = "22003";

/// `$1` saga id, `$2` user id, `$3` amount → outcome (see `saga::ChargeOutcome`).
pub const CHARGE: &str = "SELECT payment.charge($1, $2, $3) AS outcome";

/// `$1` saga ids, `$2` user ids, `$3` amounts (infra/functions/payment.sql) → one row per saga, in order:
/// `o_saga`, `o_outcome` (as [`CHARGE`]'s).
pub const CHARGE_MANY: &str = "SELECT o_saga, o_outcome FROM payment.charge_many($1, $2, $3)";

/// `$1` saga id → outcome (see `saga::RefundOutcome`; infra/functions/payment.sql).
pub const REFUND: &str = "SELECT payment.refund($1) AS outcome";

/// `$1` saga id, `$2` user id, `$3` amount → outcome (see `saga::CreditOutcome`;
/// infra/functions/payment.sql).
pub const CREDIT: &str = "SELECT payment.credit($1, $2, $3) AS outcome";

/// `$1` saga id → outcome (see `saga::ReverseCreditOutcome`; infra/functions/payment.sql).
pub const REVERSE_CREDIT: &str = "SELECT payment.reverse_credit($1) AS outcome";
