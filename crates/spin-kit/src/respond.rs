//! Building responses. The only way to answer is with a complete body and its `Content-Length`:
//! a streamed (chunked) response stalls ~40 ms per request on keep-alive connections in Spin.

use market_core::ApiError;
use market_core::service_call::{BatchAnswer, EntryAnswer};
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

/// `err`'s status with its JSON body (the client's message: see [`ApiError::public_message`]).
pub fn error(err: &ApiError) -> Reply {
    with_retry_after(err, with_body(err.status(), err.body()))
}

/// `err`'s status with its JSON body and the request's id (`"request_id"`).
pub fn error_for(err: &ApiError, request_id: &str) -> Reply {
    with_retry_after(err, with_body(err.status(), err.body_for(request_id)))
}

/// A 429 says when to come back (`Retry-After`, in seconds).
fn with_retry_after(err: &ApiError, mut reply: Reply) -> Reply {
    if let ApiError::TooManyRequests { retry_after_seconds, .. } = err {
        reply.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(*retry_after_seconds));
    }
    reply
}

/// Adds `"request_id"` to an error body built without one (by a handler itself, with
/// [`error`]); any other body is left alone.
pub fn add_request_id(reply: &mut Reply, request_id: &str) {
    let body = reply.body();
    if !body.starts_with("{\"error\"") || body.contains("\"request_id\"") {
        return;
    }
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str::<serde_json::Value>(body) else {
        return;
    };
    fields.insert("request_id".into(), serde_json::Value::String(request_id.to_string()));
    let with_id = serde_json::Value::Object(fields).to_string();
    reply.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(with_id.len()));
    *reply.body_mut() = with_id;
}

/// The answers of a batch of saga steps, each as its single-step endpoint would have answered:
/// `200 {"outcomes": [{"status": 200}, {"status": 409, "error": "...", "message": "..."}, ...]}`,
/// in the batch's order ([`BatchAnswer`]; [`crate::chain::Answer::outcomes`] reads it back).
pub fn outcomes(results: impl IntoIterator<Item = Result<(), ApiError>>) -> Reply {
    let outcomes = results
        .into_iter()
        .map(|r| match r {
            Ok(()) => EntryAnswer::done(),
            Err(e) => EntryAnswer::failed(&e),
        })
        .collect();
    ok(&BatchAnswer { outcomes })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_get_the_request_id_once_and_other_bodies_none() {
        let mut built = error(&ApiError::Conflict("checkout refused: out of stock".into()));
        add_request_id(&mut built, "abc");
        let v: serde_json::Value = serde_json::from_str(built.body()).unwrap();
        assert_eq!((v["error"].as_str(), v["request_id"].as_str()), (Some("conflict"), Some("abc")));
        assert_eq!(built.headers()[http::header::CONTENT_LENGTH], built.body().len().to_string().as_str());

        let mut answered = error_for(&ApiError::Unavailable("Redis failed: broken pipe".into()), "first");
        add_request_id(&mut answered, "second");
        let v: serde_json::Value = serde_json::from_str(answered.body()).unwrap();
        assert_eq!(v["request_id"], "first");
        assert!(!answered.body().contains("Redis"), "{}", answered.body());

        let mut fine = ok(&serde_json::json!({ "stock": 1 }));
        add_request_id(&mut fine, "abc");
        assert_eq!(fine.body(), r#"{"stock":1}"#);
    }
}
