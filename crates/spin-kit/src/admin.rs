//! The admin routes (`batch_init` of every service, which rewrite data wholesale): served only
//! where the application variable `admin_routes` is `"true"` (spin.toml's default, for local
//! runs and the benchmark); a deployment sets it `"false"` and they answer 404, as a route that
//! does not exist. Any other value is a deployment error: 500, and logged.

use crate::vars;
use market_core::{ApiError, parse_switch};

/// `Ok` where the admin routes are on; 404 where they are off.
pub async fn require_admin_routes() -> Result<(), ApiError> {
    if parse_switch("admin_routes", &vars::get("admin_routes").await?)? {
        Ok(())
    } else {
        Err(ApiError::NotFound("no such route".into()))
    }
}
