//! The error every endpoint answers with, and its single mapping to HTTP.

use serde::Serialize;
use std::fmt;

/// An error as the client sees it: a status class, a stable machine-readable code and a message.
///
/// Client mistakes are 4xx; a store that cannot be reached is 503; anything else is 500. The
/// message of a 4xx is for the client; that of an [`ApiError::Unavailable`] or an
/// [`ApiError::Internal`] is for the server's log only (it may quote a store's own error text):
/// the client gets [`ApiError::public_message`], a fixed text, with the request's id to find the
/// log line by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request is malformed: a parameter is not a number, is negative, overflows...
    BadRequest(String),
    /// No valid credentials came with a request that needs them (401): no token, or one that is
    /// not ours, expired or revoked; or a login with a wrong username or password.
    Unauthorized(String),
    /// The caller is known but may not do this (403): acting for another user, or without the
    /// role the route needs.
    Forbidden(String),
    /// The addressed entity does not exist.
    NotFound(String),
    /// The route exists but not for this method.
    MethodNotAllowed { allowed: String },
    /// The request is well-formed but refused by the current state (e.g. not enough stock).
    Conflict(String),
    /// The request cannot be processed as sent (e.g. an idempotency key reused for another request).
    Unprocessable(String),
    /// Too many attempts (429): retry after `retry_after_seconds` (answered as `Retry-After`).
    TooManyRequests { message: String, retry_after_seconds: u64 },
    /// A data store (or another service) did not answer; the request may be retried. The text
    /// is logged, never answered.
    Unavailable(String),
    /// The work was accepted and goes on, but its outcome is not known yet (503; the text, for
    /// the client, says where to look).
    InProgress(String),
    /// The deployment is wrong (a variable is missing or has a value the component refuses):
    /// 500 with the text, which names the setting and never a store's error.
    Misconfigured(String),
    /// A bug or an unexpected answer from a store. The text is logged, never answered.
    Internal(String),
}

/// What the client reads instead of an [`ApiError::Unavailable`]'s text.
pub const UNAVAILABLE_MESSAGE: &str = "a data store is unavailable; retry later";
/// What the client reads instead of an [`ApiError::Internal`]'s text.
pub const INTERNAL_MESSAGE: &str = "internal error; the server's log has the details under this request's id";

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl ApiError {
    /// The HTTP status code this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::Unprocessable(_) => 422,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Unavailable(_) | ApiError::InProgress(_) => 503,
            ApiError::Misconfigured(_) | ApiError::Internal(_) => 500,
        }
    }

    /// A stable, machine-readable name of the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Unavailable(_) | ApiError::InProgress(_) => "unavailable",
            ApiError::Misconfigured(_) => "misconfigured",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The whole message, as the server logs it.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::TooManyRequests { message: m, .. }
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Unprocessable(m)
            | ApiError::Unavailable(m)
            | ApiError::InProgress(m)
            | ApiError::Misconfigured(m)
            | ApiError::Internal(m) => m.clone(),
            ApiError::MethodNotAllowed { allowed } => format!("method not allowed; use {allowed}"),
        }
    }

    /// The message the client reads: a fixed text for a store failure or a bug, whose own text
    /// (which may quote a store's error) only goes to the log.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Unavailable(_) => UNAVAILABLE_MESSAGE.to_string(),
            ApiError::Internal(_) => INTERNAL_MESSAGE.to_string(),
            _ => self.message(),
        }
    }

    /// Whether the server should log this error (the client is not told its details, or it is
    /// the server's fault).
    pub fn is_server_error(&self) -> bool {
        self.status() >= 500
    }

    /// The JSON body: `{"error": "<code>", "message": "<public message>"}`.
    pub fn body(&self) -> String {
        self.body_with(None)
    }

    /// The JSON body with the request's id: `{"error", "message", "request_id"}`.
    pub fn body_for(&self, request_id: &str) -> String {
        self.body_with(Some(request_id))
    }

    fn body_with(&self, request_id: Option<&str>) -> String {
        let message = self.public_message();
        serde_json::to_string(&ErrorBody { error: self.code(), message: &message, request_id })
            .unwrap_or_else(|_| format!("{{\"error\":\"{}\"}}", self.code()))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code(), self.status(), self.message())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_4xx_and_store_failures_5xx() {
        assert_eq!(ApiError::BadRequest("x".into()).status(), 400);
        assert_eq!(ApiError::Unauthorized("x".into()).status(), 401);
        assert_eq!(ApiError::Forbidden("x".into()).status(), 403);
        assert_eq!(ApiError::NotFound("x".into()).status(), 404);
        assert_eq!(ApiError::TooManyRequests { message: "x".into(), retry_after_seconds: 1 }.status(), 429);
        assert_eq!(ApiError::MethodNotAllowed { allowed: "GET".into() }.status(), 405);
        assert_eq!(ApiError::Conflict("x".into()).status(), 409);
        assert_eq!(ApiError::Unprocessable("x".into()).status(), 422);
        assert_eq!(ApiError::Unavailable("x".into()).status(), 503);
        assert_eq!(ApiError::InProgress("x".into()).status(), 503);
        assert_eq!(ApiError::Misconfigured("x".into()).status(), 500);
        assert_eq!(ApiError::Internal("x".into()).status(), 500);
    }

    #[test]
    fn store_failures_and_bugs_answer_a_fixed_text_with_the_request_id() {
        let detail = "Postgres unavailable: connection refused (os error 111) at 127.0.0.1:15432";
        for (err, message) in [
            (ApiError::Unavailable(detail.into()), UNAVAILABLE_MESSAGE),
            (ApiError::Internal(format!("Postgres failed: {detail}")), INTERNAL_MESSAGE),
        ] {
            let body = err.body_for("r-1");
            assert!(
                !body.contains("Postgres") && !body.contains("connection") && !body.contains("127.0.0.1"),
                "{body}"
            );
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (v["error"].as_str(), v["message"].as_str(), v["request_id"].as_str()),
                (Some(err.code()), Some(message), Some("r-1"))
            );
            assert!(err.is_server_error());
            assert!(err.to_string().contains(detail), "the log line keeps the details: {err}");
        }
        // Texts meant for the client stay.
        let pending = ApiError::InProgress("checkout of order o is still in progress".into());
        assert!(pending.body().contains("still in progress"));
        let config = ApiError::Misconfigured("variable admin_routes must be \"true\" or \"false\"".into());
        let v: serde_json::Value = serde_json::from_str(&config.body()).unwrap();
        assert_eq!(v["error"], "misconfigured");
        assert!(v["message"].as_str().unwrap().contains("admin_routes"));
        assert!(v.get("request_id").is_none(), "no id unless given");
        assert!(!ApiError::Conflict("x".into()).is_server_error());
    }

    #[test]
    fn body_is_json_with_code_and_escaped_message() {
        let body = ApiError::NotFound("item \"a\" not found".into()).body();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "not_found");
        assert_eq!(v["message"], "item \"a\" not found");
    }
}
