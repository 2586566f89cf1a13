//! Route parameters, read from the request's path by the endpoint's route pattern.
//!
//! Each endpoint declares its route pattern (the same as in `spin.toml`; [`crate::serve`] records
//! it), and `:name` is the path segment at that position. Spin also passes one
//! `spin-path-match-<name>` header per parameter, but those are not read: the client's own
//! headers come first, so a client could name another user or amount in one than in the path it
//! was routed by; and requests that arrive through service chaining
//! (`http://<component>.spin.internal/…`) carry none.

use market_core::ApiError;
use spin_sdk::http::Request;
use std::cell::Cell;

thread_local! {
    /// The route pattern of this component's endpoint (one endpoint per component).
    static PATTERN: Cell<&'static str> = const { Cell::new("") };
}

/// Records the endpoint's route pattern (done by [`crate::serve`]).
pub fn declare(pattern: &'static str) {
    PATTERN.with(|p| p.set(pattern));
}

/// The value of the route parameter `name` (e.g. `item_id` for a route `/stock/find/:item_id`),
/// from the request's path.
pub fn param<'r>(req: &'r Request, name: &str) -> Result<&'r str, ApiError> {
    let pattern = PATTERN.with(Cell::get);
    from_path(pattern, req.uri().path(), name)
        .ok_or_else(|| ApiError::BadRequest(format!("missing route parameter {name}")))
}

/// Reads `:name` out of `path` by `pattern` (segment by segment).
pub fn from_path<'p>(pattern: &str, path: &'p str, name: &str) -> Option<&'p str> {
    let mut segments = path.trim_start_matches('/').split('/');
    for part in pattern.trim_start_matches('/').split('/') {
        let segment = segments.next()?;
        if part.strip_prefix(':') == Some(name) {
            return Some(segment);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::from_path;

    #[test]
    fn parameters_come_out_of_the_path_by_position() {
        let pattern = "/payment/charge/:saga_id/:user_id/:amount";
        let path = "/payment/charge/o.0.1/u-7/12";
        assert_eq!(from_path(pattern, path, "saga_id"), Some("o.0.1"));
        assert_eq!(from_path(pattern, path, "user_id"), Some("u-7"));
        assert_eq!(from_path(pattern, path, "amount"), Some("12"));
        assert_eq!(from_path(pattern, path, "nope"), None);
        assert_eq!(from_path(pattern, "/payment/charge/x", "amount"), None);
    }
}
