//! A call from one service to another, as data: each service's domain crate builds the calls
//! other services make to it (its `client` module: the component's chaining URL, the request
//! body's type) and reads their answers; `spin_kit::chain` is the one place that sends them.
//! Keeping the call as data keeps the domain crates free of Spin and their clients testable.

use serde::{Deserialize, Serialize};

/// The HTTP methods services call each other with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMethod {
    Get,
    Post,
}

/// One request to another service's component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCall {
    pub method: CallMethod,
    /// `http://<component>.spin.internal/<route>` (Spin's local service chaining).
    pub url: String,
    /// JSON text, or empty.
    pub body: String,
}

impl ServiceCall {
    /// `GET url`, no body.
    pub fn get(url: String) -> Self {
        ServiceCall { method: CallMethod::Get, url, body: String::new() }
    }

    /// `POST url`, no body.
    pub fn post(url: String) -> Self {
        ServiceCall { method: CallMethod::Post, url, body: String::new() }
    }

    /// `POST url` with `body` as JSON.
    pub fn post_json<T: Serialize>(url: String, body: &T) -> Self {
        // Serializing plain data types (strings, numbers, vectors, derived structs) cannot fail.
        let body = serde_json::to_string(body).unwrap_or_default();
        ServiceCall { method: CallMethod::Post, url, body }
    }
}

/// The answer of a batch endpoint (`/stock/reserve_many`, `/payment/charge_many`): one entry
/// per request of the batch, in its order, each as the single-request endpoint would have
/// answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    pub outcomes: Vec<EntryAnswer>,
}

/// One entry of a [`BatchAnswer`]: `{"status": 200}`, or the status, error code and message of
/// the error the single-request endpoint would have answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryAnswer {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl EntryAnswer {
    /// A 200 entry.
    pub fn done() -> Self {
        EntryAnswer { status: 200, error: None, message: String::new() }
    }

    /// The entry of a refused or failed request, as the client would read its error.
    pub fn failed(err: &crate::ApiError) -> Self {
        EntryAnswer { status: err.status(), error: Some(err.code().to_string()), message: err.public_message() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;

    #[test]
    fn batch_answers_keep_their_wire_format() {
        let answer = BatchAnswer {
            outcomes: vec![EntryAnswer::done(), EntryAnswer::failed(&ApiError::Conflict("out of stock".into()))],
        };
        let text = serde_json::to_string(&answer).unwrap_or_default();
        assert_eq!(text, r#"{"outcomes":[{"status":200},{"status":409,"error":"conflict","message":"out of stock"}]}"#);
        assert_eq!(serde_json::from_str::<BatchAnswer>(&text).ok(), Some(answer));
    }

    #[test]
    fn json_calls_carry_their_body() {
        let call = ServiceCall::post_json("http://x.spin.internal/y".into(), &serde_json::json!({"a": 1}));
        assert_eq!((call.method, call.body.as_str()), (CallMethod::Post, r#"{"a":1}"#));
        assert!(ServiceCall::get("http://x.spin.internal/y".into()).body.is_empty());
    }
}
