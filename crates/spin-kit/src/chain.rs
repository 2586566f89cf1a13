//! Calls to other components of the app through Spin's local service chaining
//! (`http://<component>.spin.internal/<path>`): in-process, no network hop.
//!
//! A call carries the calling request's credentials (`Authorization`, so that the service called
//! acts for the same caller and checks it itself), trace context (`traceparent`, `tracestate`)
//! and id (`x-request-id`), so that the components one request reaches are one trace and log under one
//! id. The `traceparent` sent is the caller's own, unchanged: the guest cannot see the span the
//! host opens for the outbound call, and when the host traces (Spin with an OTLP endpoint, or our
//! test host) it replaces the header with that span's, as Spin's outbound HTTP does for every
//! request, chained ones included; when it does not, the callee logs the caller's trace id.

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
    send(request_for(call)?).await
}

/// The HTTP request of `call`, with the current request's trace context and id.
fn request_for(call: ServiceCall) -> Result<http::Request<String>, String> {
    let method = match call.method {
        CallMethod::Get => http::Method::GET,
        CallMethod::Post => http::Method::POST,
    };
    let mut builder = http::Request::builder().method(method).uri(&call.url);
    if let Some(ctx) = crate::request_context::current() {
        builder = builder.header("traceparent", ctx.trace.header_value()).header("x-request-id", &ctx.request_id);
        if let Some(state) = &ctx.trace_state {
            builder = builder.header("tracestate", state);
        }
        if let Some(credentials) = &ctx.authorization {
            builder = builder.header(http::header::AUTHORIZATION, credentials);
        }
    }
    if !call.body.is_empty() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    builder
        .header(http::header::CONTENT_LENGTH, call.body.len())
        .body(call.body)
        .map_err(|e| format!("bad request to {}: {e}", call.url))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_context::{self, TraceParent};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn in_scope<T>(ctx: request_context::RequestContext, f: impl FnOnce() -> T) -> T {
        let mut fut = pin!(request_context::scope(ctx, async { f() }));
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("no await inside"),
        }
    }

    #[test]
    fn calls_carry_the_requests_trace_context_and_id() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        headers.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
        headers.insert("authorization", "Bearer a.b.c".parse().unwrap());
        let ctx = request_context::for_request(&headers, "/orders/checkout/:order_id", "orders-checkout");
        let id = ctx.request_id.clone();
        let call = ServiceCall::post_json("http://stock-reserve.spin.internal/stock/reserve".into(), &[1]);
        let request = in_scope(ctx, || request_for(call)).expect("request");
        let h = request.headers();
        assert_eq!(h["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(h["tracestate"], "congo=t61rcWkgMzE");
        assert_eq!(h["x-request-id"], id.as_str());
        assert_eq!(h["authorization"], "Bearer a.b.c");
        assert_eq!((h[http::header::CONTENT_LENGTH].to_str().ok(), request.body().as_str()), (Some("3"), "[1]"));
    }

    #[test]
    fn a_request_without_a_trace_gives_its_calls_its_new_one() {
        let ctx = request_context::for_request(&http::HeaderMap::new(), "/r", "c");
        let trace = ctx.trace;
        let request =
            in_scope(ctx, || request_for(ServiceCall::get("http://x.spin.internal/y".into()))).expect("request");
        let sent = request.headers()["traceparent"].to_str().ok().and_then(TraceParent::parse);
        assert_eq!(sent, Some(trace));
        assert!(request.headers().get("tracestate").is_none());
    }

    #[test]
    fn calls_outside_a_request_carry_no_trace() {
        let request = request_for(ServiceCall::get("http://x.spin.internal/y".into())).expect("request");
        assert!(request.headers().get("traceparent").is_none() && request.headers().get("x-request-id").is_none());
    }
}
