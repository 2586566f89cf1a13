//! Who is calling, and what they may do: the one token check every component that acts for a
//! user runs.
//!
//! A request carries its access token as `Authorization: Bearer <jwt>` (issued by
//! `POST /accounts/login`). A token counts when it has not expired, is not on the accounts
//! service's revocation list, and either is on its list of issued tokens or verifies with the
//! public key (the variable `auth_public_key`; no component but the login holds the private one).
//! Both lists are read in one Redis call per request that needs the caller
//! (`auth_token::TOKEN_CHECK`, on the Redis of `auth_revocations_address`); a token the login
//! listed needs no signature check (an Ed25519 verification costs more than a small request's
//! whole work in a component), and one it did not (Redis lost it) is verified, each instance
//! remembering the tokens it verified. Refusals: no token, a token that is not ours, expired or
//! revoked → 401; a caller acting for someone else or without the role → 403.
//!
//! The variable `auth_required` (`"true"` by default) switches the rules of who may do what:
//! off, every route behaves as the WDM benchmark expects (no token needed or read). The routes
//! that are about the caller itself (`/accounts/me`, `/accounts/logout`) always need a token.

use crate::redis_store::{args, auth_script, on_auth_redis, reply_text};
use crate::vars;
pub use auth_token::Claims;
use auth_token::{ListedAs, TOKEN_CHECK, TokenError, Verifier};
use market_core::{ApiError, parse_switch};
use spin_sdk::http::Request;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    /// The verifier built from `auth_public_key`, kept per instance.
    static VERIFIER: RefCell<Option<Rc<Verifier>>> = const { RefCell::new(None) };
    /// Tokens whose signature this instance has checked, with their claims: an Ed25519
    /// verification costs more than a small request's whole work in a component, and a client
    /// sends its token again and again. A cache only: expiry and revocation are checked on every
    /// request, and an instance that has not seen a token checks its signature.
    static VERIFIED: RefCell<HashMap<String, Claims>> = RefCell::new(HashMap::new());
}

/// Most tokens an instance remembers as verified (emptied when full).
const VERIFIED_MAX: usize = 4096;

/// Whether tokens are required (the variable `auth_required`).
pub async fn required() -> Result<bool, ApiError> {
    parse_switch("auth_required", &vars::get("auth_required").await?)
}

/// Where tokens are required, the caller's claims; where not, `None` (nothing is read).
pub async fn caller(req: &Request) -> Result<Option<Claims>, ApiError> {
    if required().await? { authenticate(req).await.map(Some) } else { Ok(None) }
}

/// Where tokens are required, the caller must be `user_id` (403 otherwise).
pub async fn require_user(req: &Request, user_id: &str) -> Result<(), ApiError> {
    match caller(req).await? {
        Some(claims) => require_same_user(&claims, user_id),
        None => Ok(()),
    }
}

/// Where tokens are required, the caller must hold the admin role (403 otherwise).
pub async fn require_admin(req: &Request) -> Result<(), ApiError> {
    match caller(req).await? {
        Some(claims) if !claims.admin => Err(ApiError::Forbidden("this route needs the admin role".into())),
        _ => Ok(()),
    }
}

/// 403 unless `claims` are `user_id`'s (an admin acts for nobody else either).
pub fn require_same_user(claims: &Claims, user_id: &str) -> Result<(), ApiError> {
    if claims.sub == user_id {
        Ok(())
    } else {
        Err(ApiError::Forbidden("the token's user may not act for another user".into()))
    }
}

/// The claims of the request's bearer token, whether or not tokens are required: 401 without
/// one, or with one that does not count.
pub async fn authenticate(req: &Request) -> Result<Claims, ApiError> {
    claims_of(bearer_token(req.headers())?).await
}

/// The claims of `token` if it counts (see the module), else 401.
pub async fn claims_of(token: &str) -> Result<Claims, ApiError> {
    // What the token says, unverified: its id, to look it up.
    let said = auth_token::claims_of_issued(token, now_seconds()).map_err(refusal)?;
    let reply = auth_script(&TOKEN_CHECK, [said.jti.clone(), auth_token::token_digest(token)]).await?;
    match ListedAs::parse(&reply_text(&reply).unwrap_or_default()) {
        ListedAs::Revoked => Err(ApiError::Unauthorized("the token was revoked (logged out)".into())),
        ListedAs::Issued => Ok(said),
        ListedAs::Unknown => verify(token).await,
    }
}

fn refusal(e: TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::Unauthorized("the token has expired".into()),
        TokenError::Invalid(_) => ApiError::Unauthorized("the token is not valid".into()),
    }
}

/// The claims of `token` by its signature (issuer and expiry checked too; the lists not).
async fn verify(token: &str) -> Result<Claims, ApiError> {
    let now = now_seconds();
    if let Some(claims) = VERIFIED.with(|v| v.borrow().get(token).cloned()) {
        return if now >= claims.exp { Err(refusal(TokenError::Expired)) } else { Ok(claims) };
    }
    let claims = verifier().await?.verify(token, now).map_err(refusal)?;
    VERIFIED.with(|v| {
        let mut verified = v.borrow_mut();
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(token.to_string(), claims.clone());
    });
    Ok(claims)
}

/// Lists `token` (just issued, with `claims`) as issued until it expires (the accounts service's
/// login; the list is its to write).
pub async fn list_issued(token: &str, claims: &Claims) -> Result<(), ApiError> {
    list_until(auth_token::issued_key(token), claims.exp).await
}

/// Puts the token of `claims` on the revocation list until it would have expired (the accounts
/// service's logout; the list is its to write).
pub async fn revoke(claims: &Claims) -> Result<(), ApiError> {
    list_until(auth_token::revocation_key(&claims.jti), claims.exp).await
}

/// Sets `key` on the lists' Redis until `exp` (Unix seconds).
async fn list_until(key: String, exp: u64) -> Result<(), ApiError> {
    let until = exp.to_string();
    on_auth_redis(|conn| async move { conn.execute("SET", args([key, "1".into(), "EXAT".into(), until])).await })
        .await
        .map(drop)
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case), 401 without one.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized("an access token is needed: Authorization: Bearer <token>".into());
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

/// Unix seconds now.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn verifier() -> Result<Rc<Verifier>, ApiError> {
    if let Some(v) = VERIFIER.with(|v| v.borrow().clone()) {
        return Ok(v);
    }
    let key = vars::get("auth_public_key").await?;
    let verifier = Rc::new(
        Verifier::from_public_key_text(&key)
            .map_err(|e| ApiError::Misconfigured(format!("the variable auth_public_key is not usable: {e}")))?,
    );
    VERIFIER.with(|v| *v.borrow_mut() = Some(verifier.clone()));
    Ok(verifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_token_comes_from_a_bearer_authorization_header_only() {
        assert_eq!(bearer_token(&headers("Bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(bearer_token(&headers("bearer  a.b.c ")), Ok("a.b.c"));
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "a.b.c"] {
            assert_eq!(bearer_token(&headers(bad)).map_err(|e| e.status()), Err(401), "{bad:?}");
        }
        assert_eq!(bearer_token(&http::HeaderMap::new()).map_err(|e| e.status()), Err(401));
    }

    #[test]
    fn only_the_same_user_passes() {
        let claims =
            Claims { sub: "u1".into(), jti: "j".into(), iat: 0, exp: 1, iss: auth_token::ISSUER.into(), admin: true };
        assert!(require_same_user(&claims, "u1").is_ok());
        assert_eq!(require_same_user(&claims, "u2").map_err(|e| e.status()), Err(403));
    }
}
