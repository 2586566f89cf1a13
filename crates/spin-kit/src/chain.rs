//! Calls to other components of the app through Spin's local service chaining
//! (`http://<component>.spin.internal/<path>`): in-process, no network hop.

use spin_sdk::http::body::IncomingBodyExt;

/// A response from another component, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One step's answer inside a batch's [`Answer`] (see [`crate::respond::outcomes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAnswer {
    pub status: u16,
    pub message: String,
}

impl Answer {
    /// The per-step answers of a 200 batch answer; `None` if it is not one.
    pub fn outcomes(&self) -> Option<Vec<StepAnswer>> {
        if self.status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("outcomes")?
            .as_array()?
            .iter()
            .map(|o| {
                Some(StepAnswer {
                    status: u16::try_from(o.get("status")?.as_u64()?).ok()?,
                    message: o.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string(),
                })
            })
            .collect()
    }

    /// The `message` of a JSON error body, or the body as text.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// Sends `method url` with `body` (JSON text, may be empty). `Err` when no response came.
pub async fn call(method: http::Method, url: &str, body: String) -> Result<Answer, String> {
    let mut builder = http::Request::builder().method(method).uri(url);
    if !body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .map_err(|e| format!("bad request to {url}: {e}"))?;
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
