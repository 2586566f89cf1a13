//! The statements of the `accounts` schema (migration 0010).

/// `$1` username, `$2` password hash → `user_id` of the new user; no row if the username is
/// taken.
pub const INSERT_USER: &str = "INSERT INTO accounts.users (user_id, username, password_hash) \
     VALUES (gen_random_uuid()::text, $1, $2) ON CONFLICT (username) DO NOTHING RETURNING user_id";

/// `$1` username → `user_id`, `password_hash`, `admin`, `payment_open`.
pub const FIND_BY_USERNAME: &str =
    "SELECT user_id, password_hash, admin, payment_open FROM accounts.users WHERE username = $1";

/// `$1` user id: its payment account is open (the end of a registration).
pub const MARK_PAYMENT_OPEN: &str = "UPDATE accounts.users SET payment_open = true WHERE user_id = $1";

/// `$1` user id → `username`, `admin`, `created_at` (RFC 3339 text).
pub const FIND_BY_ID: &str = "SELECT username, admin, \
     to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at \
     FROM accounts.users WHERE user_id = $1";
