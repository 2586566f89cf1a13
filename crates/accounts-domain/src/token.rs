//! What a login's token says.

use auth_token::{Claims, ISSUER};

/// The claims of a token for `user_id`, issued at `now` (Unix seconds) for `ttl_seconds`, with
/// the id `jti`.
pub fn claims_for(user_id: &str, admin: bool, now: u64, ttl_seconds: u64, jti: String) -> Claims {
    Claims { sub: user_id.to_string(), jti, iat: now, exp: now.saturating_add(ttl_seconds), iss: ISSUER.into(), admin }
}

/// A token's lifetime as configured (`token_ttl_seconds`): 60 s to 7 days.
pub fn parse_ttl(raw: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(ttl) if (60..=7 * 24 * 3600).contains(&ttl) => Ok(ttl),
        _ => Err(format!("the variable token_ttl_seconds must be 60 to 604800, not {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_expire_after_the_ttl() {
        let c = claims_for("u", false, 100, 3600, "j".into());
        assert_eq!((c.sub.as_str(), c.iat, c.exp, c.iss.as_str(), c.admin), ("u", 100, 3700, ISSUER, false));
        assert_eq!(parse_ttl("3600"), Ok(3600));
        assert!(parse_ttl("59").is_err() && parse_ttl("x").is_err() && parse_ttl("604801").is_err());
    }
}
