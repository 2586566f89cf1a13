//! The accounts service's endpoints (one component each): `register`, `login`, `me`, `validate`
//! and `logout`. Users live in Postgres (schema `accounts`); failed-login counters and revoked
//! tokens in Redis (prefix `accounts:`). Only the login component holds the token signing key
//! (the secret variable `auth_signing_key`); the others verify with the public key, through
//! [`spin_kit::auth`] like every other service.

use accounts_domain::login_limit::{self, LOGIN_CHECK, LOGIN_FAILED};
use accounts_domain::{AccountsError, Credentials, LoginLimits, Registration, password, sql, token};
use auth_token::Issuer;
use market_core::ApiError;
use serde::Deserialize;
use spin_kit::pg_store::{execute, query};
use spin_kit::redis_store::{args, redis_idempotent, script_idempotent, script_once};
use spin_kit::{Reply, Request, auth, body, chain, respond, vars};
use spin_sdk::pg::{ParameterValue, Row};
use spin_sdk::redis::RedisResult;
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    /// The issuer built from `auth_signing_key`, kept per instance.
    static ISSUER: RefCell<Option<Rc<Issuer>>> = const { RefCell::new(None) };
}

/// `POST /accounts/register` `{"username", "password"}` → `201 {"user_id"}`, with the user's
/// payment account opened under the same id. 409 if the username is taken. A registration that
/// failed after storing the user (its payment account not opened) is finished by the same
/// request sent again (same username and password): it never makes two users or two accounts.
pub async fn register(req: Request) -> Result<Reply, ApiError> {
    let registration = Registration::parse(&body::bytes(req).await?)?;
    let stored = password::hash(&registration.password, &random_bytes()?)
        .map_err(|e| ApiError::Internal(format!("argon2 failed: {e}")))?;
    let params = [ParameterValue::Str(registration.username.clone()), ParameterValue::Str(stored)];
    let user_id = match query(sql::INSERT_USER, params).await?.first() {
        Some(row) => text(row, "user_id")?,
        None => unfinished_registration(&registration).await?,
    };
    let answer = chain::call(payment_domain::client::open_account(&user_id)).await.map_err(ApiError::Unavailable)?;
    if answer.status != 200 {
        return Err(ApiError::Unavailable(format!("payment service answered {}: {}", answer.status, answer.message())));
    }
    execute(sql::MARK_PAYMENT_OPEN, [ParameterValue::Str(user_id.clone())]).await?;
    Ok(respond::json(201, &serde_json::json!({ "user_id": user_id })))
}

/// The username is taken: by this same registration, sent again after it failed before its
/// payment account was opened (its id, to finish it), or by someone else (409).
async fn unfinished_registration(registration: &Registration) -> Result<String, ApiError> {
    let taken = || AccountsError::UsernameTaken { username: registration.username.clone() };
    let rows = query(sql::FIND_BY_USERNAME, [ParameterValue::Str(registration.username.clone())]).await?;
    let row = rows.first().ok_or_else(taken)?;
    let payment_open: bool = row.get("payment_open").unwrap_or(true);
    if payment_open || !password::verify(&registration.password, &text(row, "password_hash")?) {
        return Err(taken().into());
    }
    text(row, "user_id")
}

/// `POST /accounts/login` `{"username", "password"}` → `{"token", "expires_at", "user_id"}`
/// (`expires_at` in Unix seconds). A wrong password and an unknown user get the same 401 after
/// the same work (an argon2id verification either way). Failed logins are limited
/// ([`accounts_domain::login_limit`]): 429 with `Retry-After`.
pub async fn login(req: Request) -> Result<Reply, ApiError> {
    let address =
        login_limit::client_address(req.headers().get_all("spin-client-addr").iter().filter_map(|v| v.to_str().ok()));
    let credentials = Credentials::parse(&body::bytes(req).await?)?;
    let limits = login_limits().await?;
    let wait = int(&script_idempotent(&LOGIN_CHECK, limits.check_args(&credentials.limit_key, &address)).await?);
    login_limit::check_outcome(wait)?;

    let lookup = credentials.username.as_deref().unwrap_or(&credentials.limit_key);
    let rows = query(sql::FIND_BY_USERNAME, [ParameterValue::Str(lookup.to_string())]).await?;
    let user = match rows.first() {
        Some(row) => {
            Some((text(row, "user_id")?, text(row, "password_hash")?, row.get::<bool>("admin").unwrap_or(false)))
        }
        None => None,
    };
    let matched = match &user {
        Some((_, stored, _)) => password::verify(&credentials.password, stored),
        None => password::verify_decoy(&credentials.password),
    };
    let Some((user_id, _, admin)) = user.filter(|_| matched) else {
        script_once(&LOGIN_FAILED, limits.failed_args(&credentials.limit_key, &address)).await?;
        return Err(AccountsError::WrongCredentials.into());
    };
    let counter = login_limit::user_counter_key(&credentials.limit_key);
    redis_idempotent(|conn| {
        let counter = counter.clone();
        async move { conn.execute("DEL", args([counter])).await }
    })
    .await?;

    let ttl = token::parse_ttl(&vars::get("token_ttl_seconds").await?).map_err(ApiError::Misconfigured)?;
    let claims = token::claims_for(&user_id, admin, auth::now_seconds(), ttl, hex(&random_bytes::<16>()?));
    let token = issuer().await?.issue(&claims).map_err(|e| ApiError::Misconfigured(e.to_string()))?;
    // Listed as issued: the components that check it need no signature check.
    auth::list_issued(&token, &claims).await?;
    Ok(respond::ok(&serde_json::json!({ "token": token, "expires_at": claims.exp, "user_id": user_id })))
}

/// `GET /accounts/me` (token) → `{"user_id", "username", "admin", "created_at"}`.
pub async fn me(req: Request) -> Result<Reply, ApiError> {
    let claims = auth::authenticate(&req).await?;
    let rows = query(sql::FIND_BY_ID, [ParameterValue::Str(claims.sub.clone())]).await?;
    let row = rows.first().ok_or(AccountsError::UnknownUser)?;
    Ok(respond::ok(&serde_json::json!({
        "user_id": claims.sub,
        "username": text(row, "username")?,
        "admin": row.get::<bool>("admin").unwrap_or(false),
        "created_at": text(row, "created_at")?,
    })))
}

/// `POST /accounts/validate` `{"token"}` → the token's claims (`{"sub", "jti", "iat", "exp",
/// "iss", "admin"}`), or 401 if it does not count (not ours, expired, revoked): for services
/// outside this app that hold no public key.
pub async fn validate(req: Request) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        token: String,
    }
    let Body { token } = serde_json::from_slice(&body::bytes(req).await?)
        .map_err(|e| ApiError::BadRequest(format!("the body must be JSON {{\"token\": \"...\"}}: {e}")))?;
    Ok(respond::ok(&auth::claims_of(&token).await?))
}

/// `POST /accounts/logout` (token): the token is revoked until it would have expired; every
/// component refuses it from then on (401) → `{"revoked": "<jti>"}`.
pub async fn logout(req: Request) -> Result<Reply, ApiError> {
    let claims = auth::authenticate(&req).await?;
    auth::revoke(&claims).await?;
    Ok(respond::ok(&serde_json::json!({ "revoked": claims.jti })))
}

async fn login_limits() -> Result<LoginLimits, ApiError> {
    LoginLimits::parse(
        &vars::get("login_max_failures_per_user").await?,
        &vars::get("login_max_failures_per_address").await?,
        &vars::get("login_failure_window_seconds").await?,
    )
    .map_err(ApiError::Misconfigured)
}

/// The issuer of `auth_signing_key`, checked against `auth_public_key`: a pair that does not
/// match would issue tokens every other component refuses, so it is a deployment error (500).
async fn issuer() -> Result<Rc<Issuer>, ApiError> {
    if let Some(issuer) = ISSUER.with(|i| i.borrow().clone()) {
        return Ok(issuer);
    }
    let issuer = Issuer::from_seed_text(&vars::get("auth_signing_key").await?)
        .map_err(|e| ApiError::Misconfigured(format!("the variable auth_signing_key is not usable: {e}")))?;
    if auth_token::key_text(&issuer.public_key()) != vars::get("auth_public_key").await?.trim() {
        return Err(ApiError::Misconfigured(
            "the variable auth_public_key is not the public key of auth_signing_key".into(),
        ));
    }
    let issuer = Rc::new(issuer);
    ISSUER.with(|i| *i.borrow_mut() = Some(issuer.clone()));
    Ok(issuer)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(row: &Row, column: &str) -> Result<String, ApiError> {
    row.get::<String>(column).ok_or_else(|| ApiError::Internal(format!("accounts row has no {column}")))
}

fn int(reply: &[RedisResult]) -> i64 {
    match reply.first() {
        Some(RedisResult::Int64(n)) => *n,
        _ => 0,
    }
}
