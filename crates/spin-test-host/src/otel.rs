//! OpenTelemetry traces in the shape Spin 4.1 exports them (`crates/telemetry`,
//! `crates/trigger-http`, `crates/factor-outbound-*` of Spin's source), so tests can
//! check a request's trace on this host.
//!
//! On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and not
//! empty, unless `OTEL_SDK_DISABLED` is; exported with OTLP/HTTP protobuf (Spin's default; Spin
//! refuses `http/json`; gRPC is not offered here). The resource's `service.name` is
//! `OTEL_SERVICE_NAME`, else `spin`.
//!
//! The spans, as Spin names them (the exported name is Spin's `otel.name`):
//! - per request from the network, a server span `{method} {route}` (`{method}` when no route
//!   matched), its parent taken from the request's `traceparent`;
//! - per component execution, `execute_wasm_component {component}`, child of the request's span
//!   or, for a chained request, of the calling component's outbound-call span (Spin runs a
//!   chained request without a server span of its own);
//! - per outbound HTTP request (chained ones included), a client span named by its method,
//!   whose context is injected into the request as `traceparent`;
//! - per Redis and Postgres host call, a client span (`spin_outbound_redis.*` named by the
//!   command, `spin_outbound_pg.*`).
//!
//! Known differences from Spin: the guest sees, as `traceparent`, the context of its
//! component-execution span (Spin hands it the caller's header as it came); this host takes
//! the parent of an outbound HTTP span from that header on the outgoing request (so a guest that
//! does not forward it starts a new trace), where Spin uses its current span; Redis and
//! Postgres spans find their request through the component-model task that made the call.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

fn any_set(names: &[&str]) -> bool {
    names.iter().any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
}

/// Starts exporting traces when the environment asks for it (see the module's docs).
pub fn init() -> anyhow::Result<()> {
    if !any_set(&["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
        || any_set(&["OTEL_SDK_DISABLED"])
    {
        return Ok(());
    }
    for var in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Ok(p) = std::env::var(var) {
            anyhow::ensure!(p == "http/protobuf", "{var}={p}: this host exports traces with http/protobuf only");
            break;
        }
    }
    let service = std::env::var("OTEL_SERVICE_NAME").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "spin".into());
    // The blocking HTTP client must be made outside the async runtime.
    let exporter = std::thread::spawn(|| opentelemetry_otlp::SpanExporter::builder().with_http().build())
        .join()
        .map_err(|_| anyhow::anyhow!("the OTLP exporter could not be made"))??;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build();
    let tracer = provider.tracer("spin");
    let _ = TRACING.set(Tracing { provider, tracer });
    Ok(())
}

/// Exports what is left (at exit).
pub fn shutdown() {
    if let Some(t) = TRACING.get() {
        let _ = t.provider.force_flush();
    }
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    TRACING.get().is_some()
}

/// A span of the host (a no-op when tracing is off); it ends when dropped.
pub struct HostSpan {
    cx: Context,
}

impl HostSpan {
    /// Starts a span named `name` of `kind` under `parent`.
    pub fn start(name: impl Into<String>, kind: SpanKind, parent: &Context, attributes: Vec<KeyValue>) -> HostSpan {
        let Some(t) = TRACING.get() else { return HostSpan { cx: Context::new() } };
        let span = t
            .tracer
            .span_builder(name.into())
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&t.tracer, parent);
        HostSpan { cx: parent.with_span(span) }
    }

    /// The context whose parent is this span (for children, and `traceparent`).
    pub fn context(&self) -> &Context {
        &self.cx
    }

    pub fn set(&self, kv: KeyValue) {
        self.cx.span().set_attribute(kv);
    }

    pub fn rename(&self, name: String) {
        self.cx.span().update_name(name);
    }

    /// Marks the span as failed with `message`.
    pub fn fail(&self, message: String) {
        self.cx.span().set_status(opentelemetry::trace::Status::error(message));
    }
}

impl Drop for HostSpan {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// The W3C trace context of `headers` (an empty context when absent or invalid: a new trace).
pub fn extract(headers: &http::HeaderMap) -> Context {
    if !enabled() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// Writes `cx` into `headers` as `traceparent` (and `tracestate`), replacing what was there.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    if !enabled() || !cx.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(cx, &mut HeadersMut(headers));
}
