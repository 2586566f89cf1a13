//! The payment endpoints' routes, and reading their parameters from the request path.
//!
//! Spin passes route parameters as `spin-path-match-*` headers only for requests it routed by
//! pattern. A request that arrives through service chaining (`http://payment-find-user.spin.internal/…`,
//! and every call of the private saga steps) is matched by component, not by route, and carries
//! none. So the payment endpoints read their parameters from the path, matched against their own
//! route pattern: one way that works for both. (A generic version belongs in spin-kit.)

use market_core::ApiError;

pub const CREATE_USER: &str = "/payment/create_user";
pub const FIND_USER: &str = "/payment/find_user/:user_id";
pub const ADD_FUNDS: &str = "/payment/add_funds/:user_id/:amount";
pub const PAY: &str = "/payment/pay/:user_id/:amount";
pub const BATCH_INIT: &str = "/payment/batch_init/:n/:starting_money";
/// Private: reached only through service chaining.
pub const CHARGE: &str = "/payment/charge/:saga_id/:user_id/:amount";
/// Private: reached only through service chaining.
pub const REFUND: &str = "/payment/refund/:saga_id";

/// The parameters a path gave to the `:name` segments of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathParams<'p> {
    pairs: Vec<(&'static str, &'p str)>,
}

impl<'p> PathParams<'p> {
    /// Matches `path` (without query) against `pattern`, segment by segment: literal segments
    /// must be equal, `:name` segments capture. A path of another shape is 404, as Spin answers
    /// a path that matches no route.
    pub fn match_path(pattern: &'static str, path: &'p str) -> Result<Self, ApiError> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let no_route = || ApiError::NotFound(format!("{path:?} does not match the route {pattern}"));
        let wanted: Vec<&'static str> = pattern.split('/').collect();
        let given: Vec<&'p str> = path.split('/').collect();
        if wanted.len() != given.len() {
            return Err(no_route());
        }
        let mut pairs = Vec::new();
        for (w, g) in wanted.into_iter().zip(given) {
            match w.strip_prefix(':') {
                Some(name) => pairs.push((name, g)),
                None if w == g => {}
                None => return Err(no_route()),
            }
        }
        Ok(Self { pairs })
    }

    /// The value of `:name` (raw; checking it is the caller's job).
    pub fn get(&self, name: &str) -> Result<&'p str, ApiError> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| ApiError::Internal(format!("the route has no parameter {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_captured_by_name() {
        let params = PathParams::match_path(CHARGE, "/payment/charge/o-1.0.1/u-7/25").unwrap();
        assert_eq!(params.get("saga_id"), Ok("o-1.0.1"));
        assert_eq!(params.get("user_id"), Ok("u-7"));
        assert_eq!(params.get("amount"), Ok("25"));
        assert_eq!(params.get("nope").unwrap_err().status(), 500);
        let params = PathParams::match_path(PAY, "/payment/pay/u/3?x=1").unwrap();
        assert_eq!(params.get("amount"), Ok("3"));
        assert!(PathParams::match_path(CREATE_USER, "/payment/create_user").is_ok());
    }

    #[test]
    fn paths_of_another_shape_are_404() {
        for (pattern, path) in [
            (CHARGE, "/payment/charge/s/u"),
            (CHARGE, "/payment/charge/s/u/3/extra"),
            (CHARGE, "/payment/refund/s/u/3"),
            (REFUND, "/payment/refund"),
            (REFUND, "/payment/refund/a/b"),
            (FIND_USER, "/stock/find_user/u"),
            (FIND_USER, ""),
        ] {
            assert_eq!(PathParams::match_path(pattern, path).unwrap_err().status(), 404, "{path:?}");
        }
        // An empty segment is captured as empty and refused by the parameter's own check.
        assert_eq!(PathParams::match_path(REFUND, "/payment/refund/").unwrap().get("saga_id"), Ok(""));
    }

    #[test]
    fn the_manifest_routes_the_public_endpoints_with_these_patterns() {
        let manifest = include_str!("../../../spin.toml");
        for route in [CREATE_USER, FIND_USER, ADD_FUNDS, PAY, BATCH_INIT] {
            assert!(manifest.contains(&format!("route = \"{route}\"")), "spin.toml lacks {route}");
        }
        for route in [CHARGE, REFUND] {
            assert!(!manifest.contains(&format!("route = \"{route}\"")), "{route} must stay private");
        }
    }
}
