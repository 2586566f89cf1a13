//! Building responses. The only way to answer is with a complete body and its `Content-Length`:
//! a streamed (chunked) response stalls ~40 ms per request on keep-alive connections in Spin.

use market_core::ApiError;
use serde::Serialize;

/// A complete response: the body is held in memory and sent with its length.
pub type Reply = http::Response<String>;

/// `status` with `value` as a JSON body.
pub fn json<T: Serialize>(status: u16, value: &T) -> Reply {
    match serde_json::to_string(value) {
        Ok(body) => with_body(status, body),
        Err(e) => error(&ApiError::Internal(format!("cannot encode response: {e}"))),
    }
}

/// 200 with `value` as a JSON body.
pub fn ok<T: Serialize>(value: &T) -> Reply {
    json(200, value)
}

/// `err`'s status with its JSON body.
pub fn error(err: &ApiError) -> Reply {
    with_body(err.status(), err.body())
}

/// The answers of a batch of saga steps, each as its single-step endpoint would have answered:
/// `200 {"outcomes": [{"status": 200}, {"status": 409, "error": "...", "message": "..."}, ...]}`,
/// in the batch's order. ([`crate::chain::Answer::outcomes`] reads it back.)
pub fn outcomes(results: impl IntoIterator<Item = Result<(), ApiError>>) -> Reply {
    let list: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(()) => serde_json::json!({ "status": 200 }),
            Err(e) => serde_json::json!({ "status": e.status(), "error": e.code(), "message": e.message() }),
        })
        .collect();
    ok(&serde_json::json!({ "outcomes": list }))
}

/// `status` with a body that is already JSON text.
pub fn raw_json(status: u16, body: String) -> Reply {
    with_body(status, body)
}

fn with_body(status: u16, body: String) -> Reply {
    let mut reply = http::Response::new(String::new());
    *reply.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = reply.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    *reply.body_mut() = body;
    reply
}
