//! The error every endpoint answers with, and its single mapping to HTTP.

use serde::Serialize;
use std::fmt;

/// An error as the client sees it: a status class, a stable machine-readable code and a message.
///
/// Client mistakes are 4xx; a store that cannot be reached is 503; anything else is 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request is malformed: a parameter is not a number, is negative, overflows...
    BadRequest(String),
    /// The addressed entity does not exist.
    NotFound(String),
    /// The route exists but not for this method.
    MethodNotAllowed { allowed: &'static str },
    /// The request is well-formed but refused by the current state (e.g. not enough stock).
    Conflict(String),
    /// The request cannot be processed as sent (e.g. an idempotency key reused for another request).
    Unprocessable(String),
    /// A data store did not answer; the request may be retried.
    Unavailable(String),
    /// A bug or an unexpected answer from a store.
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// The HTTP status code this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::Unprocessable(_) => 422,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// A stable, machine-readable name of the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Unprocessable(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m.clone(),
            ApiError::MethodNotAllowed { allowed } => format!("method not allowed; use {allowed}"),
        }
    }

    /// The JSON body: `{"error": "<code>", "message": "<text>"}`.
    pub fn body(&self) -> String {
        let message = self.message();
        serde_json::to_string(&ErrorBody { error: self.code(), message: &message })
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
        assert_eq!(ApiError::NotFound("x".into()).status(), 404);
        assert_eq!(ApiError::MethodNotAllowed { allowed: "GET" }.status(), 405);
        assert_eq!(ApiError::Conflict("x".into()).status(), 409);
        assert_eq!(ApiError::Unprocessable("x".into()).status(), 422);
        assert_eq!(ApiError::Unavailable("x".into()).status(), 503);
        assert_eq!(ApiError::Internal("x".into()).status(), 500);
    }

    #[test]
    fn body_is_json_with_code_and_escaped_message() {
        let body = ApiError::NotFound("item \"a\" not found".into()).body();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "not_found");
        assert_eq!(v["message"], "item \"a\" not found");
    }
}
