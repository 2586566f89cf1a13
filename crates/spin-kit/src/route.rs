//! Route parameters, as Spin passes them: one `spin-path-match-<name>` header per `:name`.

use market_core::ApiError;
use spin_sdk::http::Request;

/// The value of the route parameter `name` (e.g. `item_id` for a route `/stock/find/:item_id`).
pub fn param<'r>(req: &'r Request, name: &str) -> Result<&'r str, ApiError> {
    let header = format!("spin-path-match-{name}");
    req.headers()
        .get(header.as_str())
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("missing route parameter {name}")))
}
