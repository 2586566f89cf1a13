//! Calls to other components of the app through Spin's local service chaining
//! (`http://<component>.spin.internal/<path>`): in-process, no network hop.

use market_core::service_call::{BatchAnswer, CallMethod, EntryAnswer, ServiceCall};
use spin_sdk::http::body::IncomingBodyExt;

/// A response from another component, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The per-entry answers of a 200 batch answer; `None` if it is not one.
    pub fn outcomes(&self) -> Option<Vec<EntryAnswer>> {
        if self.status != 200 {
            return None;
        }
        serde_json::from_slice::<BatchAnswer>(&self.body).ok().map(|batch| batch.outcomes)
    }

    /// The `message` of a JSON error body, or the body as text.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Sends a call to another service (built by that service's domain crate, its `client` module).
/// `Err` when no response came.
pub async fn call(call: ServiceCall) -> Result<Answer, String> {
    let method = match call.method {
        CallMethod::Get => http::Method::GET,
        CallMethod::Post => http::Method::POST,
    };
    let mut builder = http::Request::builder().method(method).uri(&call.url);
    if !call.body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .header(http::header::CONTENT_LENGTH, call.body.len())
        .body(call.body)
        .map_err(|e| format!("bad request to {}: {e}", call.url))?;
    send(request).await
}

/// Sends `request` (to another component, or to any allowed outbound host) and reads the whole
/// answer. `Err` when no response came.
pub async fn send(request: http::Request<String>) -> Result<Answer, String> {
    let url = request.uri().to_string();
    let response = spin_sdk::http::send(request).await.map_err(|e| format!("{url}: {e:?}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().bytes().await.map_err(|e| format!("{url}: reading the body: {e:?}"))?;
    Ok(Answer { status, body: body.to_vec() })
}
