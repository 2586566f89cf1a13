//! The Wasmtime side: engine, WIT bindings, per-store state, the linker, and
//! the per-component runtime context (variables, allowed hosts, pools).
//!
//! Every component gets WASI 0.2 and 0.3 (cli, clocks, random, io, filesystem
//! and sockets as `wasmtime-wasi` provides them, stdio inherited from the
//! host), `wasi:http@0.3.0` (outbound through [`crate::http_trigger::OutboundHttp`]),
//! and the Spin interfaces `spin:variables@3.0.0`, `spin:redis@3.0.0` and
//! `spin:postgres@4.2.0`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::{Accessor, Component, HasData, InstancePre, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::http_trigger::OutboundHttp;
use crate::outbound_hosts::AllowedHosts;
use crate::pg_host::PgPools;
use crate::variables::{ComponentVariables, GetError};

wasmtime::component::bindgen!({
    path: "wit",
    world: "spin-test-host",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "spin:redis/redis.connection": crate::redis_host::RedisConnection,
        "spin:postgres/postgres.connection": crate::pg_host::PgConnection,
        "spin:postgres/postgres.connection-builder": crate::pg_host::PgConnectionBuilder,
    },
    additional_derives: [PartialEq],
    trappable_error_type: {
        "spin:redis/redis.error" => spin::redis::redis::Error,
        "spin:postgres/postgres.error" => spin::postgres::postgres::Error,
        "spin:variables/variables.error" => spin::variables::variables::Error,
    },
});

pub use spin::postgres::postgres as pg;
pub use spin::redis::redis as redis_wit;
use spin::variables::variables as vars_wit;

/// Everything a component instance needs that does not change per instance.
pub struct ComponentContext {
    pub id: String,
    pub variables: ComponentVariables,
    pub allowed_hosts: AllowedHosts,
    pub environment: BTreeMap<String, String>,
    pub pg_pools: Arc<PgPools>,
}

/// The data of one `Store`: one component instance.
pub struct StoreData {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub outbound_http: OutboundHttp,
    pub ctx: Arc<ComponentContext>,
    /// The execution span of each request this instance serves, by its component-model task
    /// (for the spans of the host calls it makes); only when tracing.
    pub request_spans: std::collections::HashMap<wasmtime::component::GuestTaskId, opentelemetry::Context>,
}

impl StoreData {
    pub fn new(ctx: Arc<ComponentContext>, outbound_http: OutboundHttp) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &ctx.environment {
            wasi.env(k, v);
        }
        Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outbound_http,
            ctx,
            request_spans: Default::default(),
        }
    }

    /// The `wasi:http` view, as the handler machinery wants it.
    pub fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound_http }
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StoreData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http_view()
    }
}

/// The execution span of the request whose task makes the host call (an empty context when
/// tracing is off or the caller is not a request, e.g. the Redis trigger's).
pub fn request_span<T>(accessor: &Accessor<T, SpinHost>) -> opentelemetry::Context {
    if !crate::otel::enabled() {
        return opentelemetry::Context::new();
    }
    accessor.with(|mut access| {
        let root =
            wasmtime::AsContextMut::as_context_mut(&mut access).async_call_stack().ok().and_then(|tasks| tasks.last());
        root.and_then(|task| access.get().request_spans.get(&task).cloned()).unwrap_or_default()
    })
}

/// A client span of a Redis or Postgres host call (Spin's `spin_outbound_redis.*` and
/// `spin_outbound_pg.*`: `db.system.name` is `redis` or `postgresql`), under the calling
/// request's execution span.
pub fn store_call_span<T>(
    accessor: &Accessor<T, SpinHost>,
    name: &str,
    db_system: &'static str,
) -> crate::otel::HostSpan {
    if !crate::otel::enabled() {
        return crate::otel::HostSpan::start(
            String::new(),
            opentelemetry::trace::SpanKind::Client,
            &Default::default(),
            vec![],
        );
    }
    crate::otel::HostSpan::start(
        name.to_owned(),
        opentelemetry::trace::SpanKind::Client,
        &request_span(accessor),
        vec![opentelemetry::KeyValue::new("db.system.name", db_system)],
    )
}

/// The `HasData` marker through which the Spin interfaces reach [`StoreData`].
pub struct SpinHost;

impl HasData for SpinHost {
    type Data<'a> = &'a mut StoreData;
}

/// The Wasmtime engine configuration we use for every component. With
/// `cache`, compiled components are kept in Wasmtime's on-disk cache (as Spin
/// does unless `--disable-cache`), which makes restarts fast.
pub fn engine(cache: bool) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.concurrency_support(true);
    // For profiling guest code with `perf`: writes /tmp/perf-<pid>.map.
    if std::env::var_os("SPIN_TEST_HOST_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if cache {
        match wasmtime::Cache::from_file(None) {
            Ok(c) => {
                config.cache(Some(c));
            }
            Err(e) => tracing::warn!("compilation cache disabled: {e}"),
        }
    }
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// A linker with everything we provide.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<StoreData>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    SpinTestHost::add_to_linker::<StoreData, SpinHost>(&mut linker, |d| d)?;
    Ok(linker)
}

/// Compiles a component and pre-instantiates it. Imports we do not provide
/// become functions that trap when called (and are logged at startup).
pub fn prepare(
    engine: &Engine,
    linker: &Linker<StoreData>,
    id: &str,
    path: &Path,
) -> anyhow::Result<InstancePre<StoreData>> {
    let component = Component::from_file(engine, path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component {id:?}: cannot load {}", path.display()))?;
    let mut linker = linker.clone();
    match linker.instantiate_pre(&component) {
        Ok(pre) => Ok(pre),
        Err(first) => {
            tracing::warn!(
                "component {id:?} has imports this host does not provide; they will trap if called: {first}"
            );
            linker.define_unknown_imports_as_traps(&component).map_err(anyhow::Error::from)?;
            linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("component {id:?}: cannot pre-instantiate"))
        }
    }
}

// ---- spin:variables/variables@3.0.0 ---------------------------------------

impl vars_wit::Host for StoreData {
    fn convert_error(&mut self, err: vars_wit::Error) -> wasmtime::Result<vars_wit::Error> {
        Ok(err)
    }
}

impl<T: Send> vars_wit::HostWithStore<T> for SpinHost {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, vars_wit::Error> {
        accessor.with(|mut access| {
            let data = access.get();
            data.ctx.variables.get(&name).map_err(|e| match e {
                GetError::InvalidName(m) => vars_wit::Error::InvalidName(m),
                GetError::Undefined(m) => vars_wit::Error::Undefined(m),
            })
        })
    }
}
