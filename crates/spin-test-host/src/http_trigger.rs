//! The HTTP trigger: the server, dispatch to components through
//! `wasmtime-wasi-http`'s `ProxyHandler` (Spin's WASIp3 instance reuse), the
//! outbound `wasi:http` hook with `allowed_outbound_hosts` and local service
//! chaining.
//!
//! Instance reuse is what Spin 4.1 does for WASIp3 components: each instance
//! serves at most `max_instance_reuse_count` requests in total and
//! `max_instance_concurrent_reuse_count` at once, and is dropped after
//! `idle_instance_timeout` without work. A trap kills only its instance; the
//! request gets an empty 500. There is no request timeout (Spin's default).
//!
//! Requests are prepared as Spin's `server.rs`, `headers.rs` and `wasi.rs` do:
//! `Connection` (and a `Host` naming a `*.spin.internal` host) is removed;
//! `/.well-known/spin/health` and `/.well-known/spin/info` are answered before
//! routing, any other path there and an unmatched path get an empty 404; the
//! request URI gets the scheme and the authority of the `Host` header (or of
//! the URI), and a request whose `Host` is not a valid authority, has none, or
//! disagrees with the URI is not answered: the connection is closed (Spin's
//! handler returns an error to hyper). The guest sees the client's headers
//! (values must be UTF-8, not necessarily ASCII; otherwise the answer is an
//! empty 500) followed by the `spin-*` headers; `spin-full-url` is built from
//! the `Host` header, or `localhost` when there is none (HTTP/2, service
//! chaining).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use wasmtime::component::{GuestTaskId, InstancePre};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

use crate::otel::{self, HostSpan};
use crate::outbound_hosts::chaining_target;
use crate::routes::{RouteMatch, Router};
use crate::runtime::{ComponentContext, StoreData};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

/// Spin 4.1's WASIp3 instance-reuse settings.
#[derive(Debug, Clone, Copy)]
pub struct ReuseConfig {
    pub max_instance_reuse_count: usize,
    pub max_instance_concurrent_reuse_count: usize,
    pub idle_instance_timeout: Duration,
}

impl Default for ReuseConfig {
    fn default() -> Self {
        Self {
            max_instance_reuse_count: 128,
            max_instance_concurrent_reuse_count: 16,
            idle_instance_timeout: Duration::from_secs(1),
        }
    }
}

/// One HTTP-triggered component, ready to be instantiated.
pub struct HttpComponent {
    pub ctx: Arc<ComponentContext>,
    pub pre: InstancePre<StoreData>,
}

/// The HTTP side of the application.
pub struct HttpApp {
    router: Router,
    handlers: HashMap<String, ProxyHandler<ComponentHandler>>,
    /// The JSON body of `/.well-known/spin/info`.
    info: Bytes,
}

/// What `/.well-known/spin/info` reports, as Spin's `AppInfo`.
#[derive(serde::Serialize)]
pub struct AppInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Paths Spin reserves for itself.
const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// The client address Spin reports for chained requests.
const CHAINED_CLIENT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

impl HttpApp {
    /// Builds the app; `components` must hold every component named by an
    /// HTTP trigger (private routes included).
    pub fn new(
        engine: &Engine,
        router: Router,
        components: Vec<HttpComponent>,
        reuse: ReuseConfig,
        info: &AppInfo,
    ) -> anyhow::Result<Arc<Self>> {
        let info = Bytes::from(serde_json::to_vec_pretty(info)?);
        let mut prepared = Vec::new();
        for c in components {
            let pre = ServicePre::new(c.pre).map_err(anyhow::Error::from).with_context(|| {
                format!(
                    "component {:?} does not export wasi:http/handler@0.3.0 (is it built with spin-sdk 7?)",
                    c.ctx.id
                )
            })?;
            prepared.push((c.ctx, pre));
        }
        Ok(Arc::new_cyclic(|app: &Weak<HttpApp>| {
            let handlers = prepared
                .into_iter()
                .map(|(ctx, pre)| {
                    let id = ctx.id.clone();
                    let state = ComponentHandler { engine: engine.clone(), pre, ctx, app: app.clone(), reuse };
                    (id, ProxyHandler::new(state))
                })
                .collect();
            HttpApp { router, handlers, info }
        }))
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Serves forever on `listener`.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        loop {
            let (stream, client_addr) = listener.accept().await?;
            let app = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let app = app.clone();
                    async move { app.handle_inbound(req, client_addr).await }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!("error serving HTTP connection: {e}");
                }
            });
        }
    }

    /// Handles one inbound request from the network. An error (Spin's
    /// handler errors) makes hyper close the connection without an answer.
    async fn handle_inbound(
        &self,
        req: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> anyhow::Result<Response<WasiBody>> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        // Spin's `spin_trigger_http.handle_http_request` span, named `{method} {route}` once routed.
        let span = HostSpan::start(
            method.to_string(),
            SpanKind::Server,
            &otel::extract(req.headers()),
            vec![
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("network.peer.address", client_addr.ip().to_string()),
                KeyValue::new("network.peer.port", client_addr.port().to_string()),
                KeyValue::new("network.protocol.name", "http"),
                KeyValue::new("url.path", path.clone()),
                KeyValue::new("url.query", req.uri().query().unwrap_or("").to_owned()),
                KeyValue::new("url.scheme", req.uri().scheme_str().unwrap_or("").to_owned()),
            ],
        );
        let mut req = req.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
        // Transport-level header, meaningless to the guest (Spin strips it too),
        // and a service-chaining Host header must not leak in from outside.
        req.headers_mut().remove(http::header::CONNECTION);
        if req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| chaining_target(h).is_some())
        {
            req.headers_mut().remove(http::header::HOST);
        }

        // Spin answers its well-known paths itself, before routing.
        let response = if let Some(well_known) = path.strip_prefix(WELL_KNOWN_PREFIX) {
            if matches!(well_known, "health" | "info") {
                span.set(KeyValue::new("http.route", path.clone()));
                span.rename(format!("{method} {path}"));
            }
            match well_known {
                "health" => text_response(Bytes::from_static(b"OK"), None),
                "info" => text_response(self.info.clone(), Some("application/json")),
                _ => status_response(StatusCode::NOT_FOUND),
            }
        } else {
            match self.router.route(&path) {
                None => status_response(StatusCode::NOT_FOUND),
                Some(route) => {
                    set_req_uri(&mut req, "http").inspect_err(|e| {
                        tracing::error!("Error handling request {method} {path}: {e:#}");
                        span.fail(format!("{e:#}"));
                    })?;
                    span.set(KeyValue::new("http.route", route.raw_route.clone()));
                    span.rename(format!("{method} {}", route.raw_route));
                    match self.dispatch(route, req, client_addr, span.context()).await {
                        Ok(resp) => resp,
                        Err(e) => {
                            tracing::error!("Error processing request {method} {path}: {e:?}");
                            status_response(StatusCode::INTERNAL_SERVER_ERROR)
                        }
                    }
                }
            }
        };
        span.set(KeyValue::new("http.response.status_code", i64::from(response.status().as_u16())));
        tracing::debug!("{method} {path} -> {} in {:?}", response.status().as_u16(), started.elapsed());
        Ok(response)
    }

    /// Sets the `spin-*` headers and hands the request (whose URI
    /// [`set_req_uri`] has made absolute) to the component, in a component
    /// execution span under `parent`.
    async fn dispatch(
        &self,
        route: RouteMatch,
        mut req: Request<WasiBody>,
        client_addr: SocketAddr,
        parent: &opentelemetry::Context,
    ) -> anyhow::Result<Response<WasiBody>> {
        let execution =
            HostSpan::start(format!("execute_wasm_component {}", route.component), SpanKind::Internal, parent, vec![]);
        let handler =
            self.handlers.get(&route.component).with_context(|| format!("unknown component {:?}", route.component))?;

        // Like Spin: the guest sees the original headers (which must be valid
        // UTF-8, not necessarily ASCII) followed by the spin-* ones, which are
        // built from the Host header (`localhost` without one).
        let mut headers = http::HeaderMap::new();
        for (name, value) in req.headers() {
            std::str::from_utf8(value.as_bytes()).with_context(|| format!("header {name} is not valid UTF-8"))?;
            headers.append(name.clone(), value.clone());
        }
        let host = match req.headers().get(http::header::HOST) {
            Some(h) => std::str::from_utf8(h.as_bytes())?.to_owned(),
            None => "localhost".to_owned(),
        };
        let scheme = req.uri().scheme_str().unwrap_or("http").to_owned();
        let path_and_query = req.uri().path_and_query().context("cannot get path and query")?.as_str().to_owned();
        for (name, value) in route.spin_headers(&scheme, &host, &path_and_query, client_addr) {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
            {
                headers.append(n, v);
            }
        }
        // The guest's `traceparent` is its execution span (see `otel`'s docs).
        otel::inject(execution.context(), &mut headers);
        *req.headers_mut() = headers;

        handler.handle(execution.context().clone(), req).await.map_err(|e| {
            execution.fail(format!("{e:?}"));
            anyhow::anyhow!("{e:?}")
        })
    }

    /// Service chaining: `http://<component>.spin.internal/...` handled
    /// in-process, as Spin's HTTP trigger intercepts it: the `Host` header is
    /// dropped (Spin drops it from every outbound request), the scheme becomes
    /// `http`, and the whole path is the `/...` wildcard's.
    async fn handle_chained(
        &self,
        component: &str,
        mut req: Request<WasiBody>,
    ) -> Result<Response<WasiBody>, wasmtime_wasi_http::Error> {
        if !self.handlers.contains_key(component) {
            // Spin traps the calling instance here ("unknown routing destination").
            tracing::error!("service chaining to unknown component {component:?}");
            return Err(wasmtime_wasi_http::Error::DestinationNotFound);
        }
        req.headers_mut().remove(http::header::HOST);
        let route = RouteMatch::synthetic(component, req.uri().path());
        if let Err(e) = set_req_uri(&mut req, "http") {
            // Spin traps the calling instance here.
            tracing::error!("Error handling chained request to {component:?}: {e:#}");
            return Err(wasmtime_wasi_http::Error::HttpRequestUriInvalid);
        }
        // Spin runs a chained request under the caller's outbound span, which our hook has
        // injected into it.
        let parent = otel::extract(req.headers());
        match self.dispatch(route, req, CHAINED_CLIENT_ADDR, &parent).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                tracing::error!("Error processing chained request to {component:?}: {e:?}");
                Ok(status_response(StatusCode::INTERNAL_SERVER_ERROR))
            }
        }
    }
}

/// Spin's `set_req_uri`: the request URI gets `scheme` and the authority of the
/// `Host` header or of the URI; both present must agree, one must be there, and
/// the `Host` header must be visible ASCII and a valid authority.
fn set_req_uri(req: &mut Request<WasiBody>, scheme: &str) -> anyhow::Result<()> {
    let header_authority = req
        .headers()
        .get(http::header::HOST)
        .map(|h| -> anyhow::Result<http::uri::Authority> {
            let host = h.to_str().context("'Host' header is not valid UTF-8")?;
            host.parse().context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let mut parts = req.uri().clone().into_parts();
    let authority = match (header_authority, parts.authority.take()) {
        (None, None) => anyhow::bail!("no 'Host' header present in request"),
        (None, Some(a)) | (Some(a), None) => a,
        (Some(a1), Some(a2)) => {
            anyhow::ensure!(a1 == a2, "authority in 'Host' header does not match authority in URI");
            a1
        }
    };
    parts.scheme = Some(scheme.parse()?);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *req.uri_mut() = http::Uri::from_parts(parts)?;
    Ok(())
}

fn text_response(body: Bytes, content_type: Option<&'static str>) -> Response<WasiBody> {
    let mut resp = Response::new(http_body_util::Full::new(body).map_err(|never| match never {}).boxed_unsync());
    if let Some(ct) = content_type {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    resp
}

fn status_response(status: StatusCode) -> Response<WasiBody> {
    let mut resp = Response::new(Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync());
    *resp.status_mut() = status;
    resp
}

// ---- instance reuse (wasmtime-wasi-http's handler machinery) ---------------------------

/// Creates instances of one component.
struct ComponentHandler {
    engine: Engine,
    pre: ServicePre<StoreData>,
    ctx: Arc<ComponentContext>,
    app: Weak<HttpApp>,
    reuse: ReuseConfig,
}

impl HandlerState for ComponentHandler {
    type StoreData = StoreData;
    type WorkerExpiration = IdleExpiration;
    type WorkerState = ReuseLimits;

    async fn instantiate(&self) -> wasmtime::Result<Instance<StoreData, IdleExpiration, ReuseLimits>> {
        let data = StoreData::new(self.ctx.clone(), OutboundHttp::new(self.ctx.clone(), Some(self.app.clone())));
        let mut store = Store::new(&self.engine, data);
        let service = self.pre.instantiate_async(&mut store).await?;
        tracing::debug!("new instance of component {:?}", self.ctx.id);
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: |data: &mut StoreData| data.http_view(),
            expiration: IdleExpiration {
                idle_timeout: self.reuse.idle_instance_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            },
            state: ReuseLimits {
                component: self.ctx.id.clone(),
                max_total: self.reuse.max_instance_reuse_count,
                max_concurrent: self.reuse.max_instance_concurrent_reuse_count,
            },
        })
    }
}

/// Drops an idle instance after the idle timeout. Busy instances never expire
/// (no request timeout, as in Spin by default).
struct IdleExpiration {
    idle_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for IdleExpiration {
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        if status != WorkerStatus::Idle {
            return Poll::Pending;
        }
        let deadline = tokio::time::Instant::from_std(start + self.idle_timeout);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

/// How many requests one instance may take.
struct ReuseLimits {
    component: String,
    max_total: usize,
    max_concurrent: usize,
}

impl WorkerState for ReuseLimits {
    type StoreData = StoreData;
    /// The span of the component's execution for the request.
    type RequestData = opentelemetry::Context;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_total {
            ShouldAccept::Never
        } else if concurrent >= self.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, StoreData>,
        execution: opentelemetry::Context,
        task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        if otel::enabled() {
            store.data_mut().request_spans.insert(task, execution);
        }
        Box::pin(std::future::pending())
    }

    fn drop(&self, store: Store<StoreData>, result: Result<(), wasmtime::Error>) {
        match result {
            Ok(()) => tracing::debug!("instance of component {:?} retired", self.component),
            Err(e) => tracing::error!("instance of component {:?} failed: {e:?}", self.component),
        }
        drop(store);
    }
}

// ---- outbound wasi:http ------------------------------------------------------------------

/// The `wasi:http` hooks of one instance: `allowed_outbound_hosts` and service chaining.
pub struct OutboundHttp {
    ctx: Arc<ComponentContext>,
    /// The HTTP trigger that serves `*.spin.internal` requests; `None` for
    /// Redis-triggered instances, whose such requests go to the network (as in
    /// Spin, where chaining is the HTTP trigger's).
    app: Option<Weak<HttpApp>>,
}

impl OutboundHttp {
    pub fn new(ctx: Arc<ComponentContext>, app: Option<Weak<HttpApp>>) -> Self {
        Self { ctx, app }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        mut request: Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>> + Send> {
        let uri = request.uri().to_string();
        let scheme = request.uri().scheme_str().unwrap_or("https").to_owned();
        let allowed = self.ctx.allowed_hosts.allows_url(&uri, &scheme);
        let app = self.app.clone();
        let target = request.uri().host().and_then(chaining_target).filter(|_| app.is_some()).map(str::to_owned);
        let component = self.ctx.id.clone();
        // Spin's `spin_outbound_http.send_request` span; see `otel`'s docs for its parent.
        let method = request.method().to_string();
        let mut attributes =
            vec![KeyValue::new("url.full", uri.clone()), KeyValue::new("http.request.method", method.clone())];
        if let Some(host) = request.uri().host() {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        if let Some(port) = request.uri().port_u16() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        let span = HostSpan::start(method, SpanKind::Client, &otel::extract(request.headers()), attributes);
        otel::inject(span.context(), request.headers_mut());
        Box::new(async move {
            let result = Self::send(request, options, allowed, target, app, uri, component).await;
            match &result {
                Ok((resp, _)) => {
                    span.set(KeyValue::new("http.response.status_code", i64::from(resp.status().as_u16())))
                }
                Err(e) => span.fail(format!("{e:?}")),
            }
            result
        })
    }
}

impl OutboundHttp {
    async fn send(
        request: Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        allowed: bool,
        target: Option<String>,
        app: Option<Weak<HttpApp>>,
        uri: String,
        component: String,
    ) -> Result<(Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error> {
        {
            if !allowed {
                tracing::error!(
                    "component {component:?}: outbound request to {uri} is not allowed by allowed_outbound_hosts"
                );
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            if let Some(target) = target {
                let app = app.and_then(|a| a.upgrade()).ok_or(wasmtime_wasi_http::Error::DestinationNotFound)?;
                let resp = app.handle_chained(&target, request).await?;
                let done: IoFuture = Box::new(async { Ok(()) });
                return Ok((resp, done));
            }
            let (resp, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: IoFuture = Box::new(io);
            Ok((resp.map(BodyExt::boxed_unsync), io))
        }
    }
}
