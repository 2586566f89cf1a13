//! `spin-test-host`: a small Spin-compatible host for this project's black-box
//! tests, where the real `spin` CLI cannot be installed.
//!
//! It serves a Spin manifest (version 2) the way Spin 4.1's `spin up` does, for
//! the subset the project uses, and takes the same flags:
//!
//! ```text
//! spin-test-host up --from <spin.toml> [-c <component-id>]...
//!     [--runtime-config-file <file>] [--disable-cache]
//!     [--listen 127.0.0.1:3000] [--max-instance-reuse-count 128]
//!     [--max-instance-concurrent-reuse-count 16] [--idle-instance-timeout 1s]
//! ```
//!
//! The real Spin remains the reference; where this host differs, Spin is right.
//! What it mimics, refusals and failures included:
//! - manifest: `[application]`, `[variables]`, `[[trigger.http]]` (string or
//!   `{ private = true }` routes), `[[trigger.redis]]` with
//!   `[application.trigger.redis] address`, `[component.<id>]` with `source`,
//!   `allowed_outbound_hosts` (checked at load as Spin's loader does),
//!   `variables`, `environment` (`build` is ignored);
//! - selective deployment, `-c/--component-id` (repeatable), as `spin up`:
//!   unknown ids, a kept component chaining to one not kept (or using
//!   `http://*.spin.internal`) and an application left without triggers are
//!   refused with Spin's messages ([`manifest::App::retain_components`]);
//! - one trigger per type, as `spin up` runs one trigger process per type: the
//!   HTTP options (`--listen`, the reuse flags) are refused (exit 2, as clap's
//!   "unexpected argument") when no HTTP trigger is left; a Redis-triggered
//!   component with a `*.spin.internal` entry in `allowed_outbound_hosts` (as
//!   written: `http://{{ x }}.spin.internal` does not count) is refused with
//!   "... not available in this version of the 'redis' trigger:
//!   local_service_chaining"; when a trigger fails, running or at startup, the
//!   process ends with exit 1 and Spin's lines ("Trigger executor failed", the
//!   error, and "A trigger exited unexpectedly. Terminating." when the app has
//!   both types), e.g. when a Redis subscription's connection drops
//!   ("disconnected from <host:port>"; no reconnection);
//! - HTTP routing and `spin-*` headers ([`routes`]), request preparation and
//!   WASIp3 instance reuse ([`http_trigger`]): client headers first, then
//!   Spin's (`spin-path-match-user-id` for `:user_id`), values UTF-8 (an empty
//!   500 otherwise), empty 404/500 bodies, `/.well-known/spin/health` and
//!   `/info`; outbound `wasi:http` with `allowed_outbound_hosts` and local
//!   service chaining via `http://<component>.spin.internal` (HTTP-triggered
//!   components only, as in Spin);
//! - OpenTelemetry traces as Spin exports them when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//!   ([`otel`]: the request, component-execution and outbound-call spans, `traceparent`
//!   extracted and injected);
//! - `spin:variables@3.0.0` with the `SPIN_VARIABLE_<NAME>` env provider
//!   ([`variables`]), `spin:redis@3.0.0` ([`redis_host`]),
//!   `spin:postgres@4.2.0` ([`pg_host`]: Spin's address check, error kinds,
//!   unreadable `timestamptz`, columns from the first row), the Redis trigger
//!   ([`redis_trigger`]);
//! - WASI 0.2 and 0.3 from `wasmtime-wasi`, guest stdio inherited; errors
//!   printed as Spin's CLI prints them (`Error: ...`, then `Caused by:`).
//!
//! Known differences from Spin (details in each module's docs):
//! - one process: the triggers of a multi-type app share it (Spin runs one
//!   process per trigger type; the outcome of a failure is the same);
//! - service chaining to a component without an HTTP trigger answers the caller
//!   `destination-not-found` (Spin traps the calling instance);
//! - a component importing something we do not provide still starts; the
//!   missing functions trap when called (Spin refuses to start it);
//! - wasi:sockets: every address is denied (Spin allows `tcp://`/`udp://`
//!   entries of `allowed_outbound_hosts`);
//! - outbound HTTP (not chained) opens a connection per request (Spin pools
//!   them);
//! - Postgres: no TLS (`sslmode=require` fails), range types unsupported, no
//!   128 MiB result limit (nor for Redis), pools per address never evicted;
//! - `--env`, `--find-free-port`, `--request-timeout`, TLS and log flags,
//!   `SPIN_HTTP_LISTEN_ADDR`, and ranges (`1..8`) for the reuse flags are not
//!   accepted; HTTP/1.1 and h2c only;
//! - wording of a few startup errors (manifest, variables) and of log lines,
//!   and the extra "spin-test-host: application ... is ready" line.
//!
//! NOT supported: components exporting the WASIp2 or Spin-1 HTTP interfaces,
//! Wagi, static responses, inline components, component dependencies, `files`,
//! key-value, SQLite, MySQL, MQTT, LLM, wasi:config/keyvalue, the
//! `fermyon:spin` 1.x/2.x interfaces (including the old
//! `fermyon:spin/inbound-redis` export), TLS, `self` and CIDR entries in
//! `allowed_outbound_hosts`, runtime-config contents (the file is read and
//! ignored with a warning, so only the default env variables provider exists),
//! request timeouts, OpenTelemetry metrics and logs, and log files (guest output goes to our
//! stdout/stderr).
//!
//! Compiled components are cached on disk by Wasmtime (default cache
//! directory, as Spin) unless `--disable-cache` is given.
//!
//! Logging: startup lines and errors only; `RUST_LOG=spin_test_host=debug`
//! shows one line per request.
//!
//! Tests: `cargo test -p spin-test-host` runs unit tests and integration tests
//! against `fixtures/probe` and `fixtures/probe-redis` (build them first with
//! `cargo build --release --target wasm32-wasip2 -p spin-test-host-probe -p spin-test-host-probe-redis`).
//! Checks against the shared stores run only when `SPIN_TEST_HOST_REDIS`
//! (e.g. `redis://:password@127.0.0.1:6379`) and `SPIN_TEST_HOST_PG` (e.g.
//! `postgres://user:pw@127.0.0.1:5432/db`) are set; otherwise they print that
//! they were skipped and pass. The Redis trigger's failure tests start a
//! `redis-server` of their own on a free port (skipped if it is not installed).

mod http_trigger;
mod manifest;
mod otel;
mod outbound_hosts;
mod pg_host;
mod redis_host;
mod redis_trigger;
mod routes;
mod runtime;
mod variables;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use clap::{Parser, Subcommand};

use crate::http_trigger::{AppInfo, HttpApp, HttpComponent, ReuseConfig};
use crate::manifest::HttpRoute;
use crate::outbound_hosts::{AllowedHosts, requires_service_chaining};
use crate::pg_host::PgPools;
use crate::redis_trigger::{RedisComponent, RedisTrigger, Subscription};
use crate::routes::Router;
use crate::runtime::ComponentContext;
use crate::variables::{AppVariables, ComponentVariables};

#[derive(Parser)]
#[command(name = "spin-test-host", version, about = "A small Spin-compatible host for tests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application, like `spin up`.
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The application manifest (spin.toml), or a directory containing one.
    #[arg(short = 'f', long = "from", value_name = "MANIFEST", default_value = "spin.toml")]
    from: PathBuf,
    /// Component ID to run; may be repeated. The default is all components.
    #[arg(short = 'c', long = "component-id", value_name = "ID")]
    components: Vec<String>,
    /// Runtime configuration file (read; its sections are ignored).
    #[arg(long, value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,
    /// Do not use Wasmtime's on-disk compilation cache.
    #[arg(long)]
    disable_cache: bool,
    #[command(flatten)]
    http: HttpArgs,
}

/// The HTTP trigger's options. As in Spin, they exist only when the
/// application (after `-c`) has an HTTP trigger.
#[derive(clap::Args)]
struct HttpArgs {
    /// Address to listen on [default: 127.0.0.1:3000].
    #[arg(long, value_parser = parse_listen_addr)]
    listen: Option<SocketAddr>,
    /// Requests one instance may serve in total [default: 128].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_instance_reuse_count: Option<u64>,
    /// Requests one instance may serve at once [default: 16].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_instance_concurrent_reuse_count: Option<u64>,
    /// How long an idle instance is kept, e.g. `1s`, `500ms` [default: 1s].
    #[arg(long, value_parser = parse_duration)]
    idle_instance_timeout: Option<Duration>,
}

impl HttpArgs {
    const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

    /// The first HTTP option given, as its flag.
    fn first_given(&self) -> Option<&'static str> {
        [
            (self.listen.is_some(), "--listen"),
            (self.max_instance_reuse_count.is_some(), "--max-instance-reuse-count"),
            (self.max_instance_concurrent_reuse_count.is_some(), "--max-instance-concurrent-reuse-count"),
            (self.idle_instance_timeout.is_some(), "--idle-instance-timeout"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| Self::DEFAULT_LISTEN.parse().expect("valid default"))
    }

    fn reuse(&self) -> anyhow::Result<ReuseConfig> {
        let default = ReuseConfig::default();
        Ok(ReuseConfig {
            max_instance_reuse_count: match self.max_instance_reuse_count {
                Some(n) => usize::try_from(n)?,
                None => default.max_instance_reuse_count,
            },
            max_instance_concurrent_reuse_count: match self.max_instance_concurrent_reuse_count {
                Some(n) => usize::try_from(n)?,
                None => default.max_instance_concurrent_reuse_count,
            },
            idle_instance_timeout: self.idle_instance_timeout.unwrap_or(default.idle_instance_timeout),
        })
    }
}

/// `host:port`, resolved as Spin resolves `--listen` (`localhost:3000` is
/// fine; 127.0.0.1 is preferred among the addresses).
fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = text.to_socket_addrs().map_err(|e| e.to_string())?.collect();
    addrs
        .iter()
        .find(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST)
        .or(addrs.first())
        .copied()
        .ok_or_else(|| "couldn't resolve address".to_owned())
}

/// Parses `1s`, `500ms`, `20us`, `10ns` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("invalid duration {text:?}"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "μs" => value / 1e6,
        "ns" => value / 1e9,
        _ => {
            return Err(format!("invalid duration unit in {text:?} (use s, ms, us or ns)"));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = otel::init() {
        report(&e.context("cannot start OpenTelemetry tracing"));
        return std::process::ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Up(args) => runtime.block_on(up(args)),
    };
    // Do not wait for instances or connections still in flight.
    runtime.shutdown_background();
    otel::shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit::Reported) => std::process::ExitCode::FAILURE,
            Some(Exit::Usage(message)) => {
                eprintln!("{message}");
                std::process::ExitCode::from(2)
            }
            None => {
                report(&e);
                std::process::ExitCode::FAILURE
            }
        },
    }
}

/// How `up` ends other than with an error to print.
#[derive(Debug)]
enum Exit {
    /// A trigger failed and it has been reported (as Spin's `spin up` exits
    /// with its failed trigger process's status, printing nothing more).
    Reported,
    /// A command-line mistake found after the manifest was read; exit code 2
    /// like clap's (Spin's trigger process rejects the option with clap).
    Usage(String),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Reported => f.write_str("a trigger failed"),
            Exit::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Exit {}

/// Prints an error as Spin's CLI does: the error, then its causes.
fn report(err: &anyhow::Error) {
    eprintln!("Error: {err}");
    let causes: Vec<_> = err.chain().skip(1).collect();
    if !causes.is_empty() {
        eprintln!("\nCaused by:");
        for (i, cause) in causes.iter().enumerate() {
            if causes.len() > 1 {
                eprintln!("{i:>4}: {cause}");
            } else {
                eprintln!("      {cause}");
            }
        }
    }
}

fn check_runtime_config(path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read runtime config {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid runtime config {}", path.display()))?;
    if !table.is_empty() {
        let keys = table.keys().cloned().collect::<Vec<_>>().join(", ");
        tracing::warn!(
            "runtime config {}: sections are not supported by spin-test-host and are ignored: {keys}",
            path.display()
        );
    }
    Ok(())
}

/// The Spin trigger types of an application, as `spin up` starts one trigger
/// process per type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TriggerType {
    Http,
    Redis,
}

impl TriggerType {
    fn name(self) -> &'static str {
        match self {
            TriggerType::Http => "http",
            TriggerType::Redis => "redis",
        }
    }

    /// `Trigger::supported_host_requirements`: only the HTTP trigger supports
    /// local service chaining (and middleware, which we do not implement).
    fn supports_service_chaining(self) -> bool {
        self == TriggerType::Http
    }
}

/// Ends `up` after a trigger failed, as `spin up` reports it: the trigger's
/// error (printed by its process), "Trigger executor failed" when it failed
/// while running, and, when the app has more than one trigger type, the
/// parent's "A trigger exited unexpectedly. Terminating.".
fn trigger_failed(err: anyhow::Error, running: bool, multi: bool) -> anyhow::Error {
    if running {
        tracing::error!("Trigger executor failed");
    }
    report(&err);
    if multi {
        println!("A trigger exited unexpectedly. Terminating.");
    }
    Exit::Reported.into()
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.runtime_config_file {
        check_runtime_config(path)?;
    }
    let manifest_path = if args.from.is_dir() { args.from.join("spin.toml") } else { args.from.clone() };
    let mut app = manifest::load(&manifest_path)?;
    if !args.components.is_empty() {
        app = app
            .retain_components(&args.components)
            .context("failed to resolve application with only components selected with --component")?;
    }
    ensure!(app.has_triggers(), "No triggers in app");

    let mut trigger_types = Vec::new();
    if !app.http_triggers.is_empty() {
        trigger_types.push(TriggerType::Http);
    }
    if !app.redis_triggers.is_empty() {
        trigger_types.push(TriggerType::Redis);
    }
    let multi = trigger_types.len() > 1;
    if !trigger_types.contains(&TriggerType::Http)
        && let Some(flag) = args.http.first_given()
    {
        // Spin passes such options to the only trigger, whose parser rejects them.
        return Err(Exit::Usage(format!(
            "error: unexpected argument '{flag}' found\n\n  \
             (the application{} has no HTTP trigger, and the redis trigger takes no HTTP options)",
            if args.components.is_empty() { "" } else { ", with the components selected by -c," }
        ))
        .into());
    }

    // Each trigger checks the host requirements of its components at startup.
    for &kind in &trigger_types {
        if let Err(unmet) = unmet_host_requirements(&app, kind) {
            let err = anyhow!(
                "This application requires the following features that are not available in this version of the '{}' trigger: {unmet}",
                kind.name()
            );
            return Err(trigger_failed(err, false, multi));
        }
    }

    let vars = AppVariables::from_env(&app)?;
    let reuse = args.http.reuse()?;

    // Per-component context: variables and allowed hosts resolved now.
    let component_ids: Vec<String> = app.components.keys().cloned().collect();
    let pg_pools = Arc::new(PgPools::default());
    let mut contexts = BTreeMap::new();
    for (id, c) in &app.components {
        let allowed_hosts = AllowedHosts::resolve(&c.allowed_outbound_hosts, &vars, &component_ids);
        let ctx = ComponentContext {
            id: id.clone(),
            variables: ComponentVariables::new(c, &vars)?,
            allowed_hosts,
            environment: c.environment.clone(),
            pg_pools: pg_pools.clone(),
        };
        contexts.insert(id.clone(), Arc::new(ctx));
    }

    // Compile and pre-instantiate every triggered component once.
    let engine = runtime::engine(!args.disable_cache)?;
    let linker = runtime::linker(&engine)?;
    let mut pres = BTreeMap::new();
    let triggered =
        app.http_triggers.iter().map(|t| &t.component).chain(app.redis_triggers.iter().map(|t| &t.component));
    for id in triggered {
        if pres.contains_key(id) {
            continue;
        }
        let source = &app.components[id].source;
        pres.insert(id.clone(), runtime::prepare(&engine, &linker, id, source)?);
    }

    // The triggers; each ends only with the error that ends the application.
    let mut running: Vec<futures::future::BoxFuture<'static, anyhow::Error>> = Vec::new();

    // HTTP.
    if !app.http_triggers.is_empty() {
        let routes = app.http_triggers.iter().filter_map(|t| match &t.route {
            HttpRoute::Pattern(p) => Some((t.component.as_str(), p.as_str())),
            HttpRoute::Private => None,
        });
        let (router, duplicates) = Router::build(routes)?;
        for d in duplicates {
            tracing::error!(
                "route {} of component {} is a duplicate and will never be used (component {} serves it)",
                d.route,
                d.replaced,
                d.effective
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut components = Vec::new();
        for t in &app.http_triggers {
            if seen.insert(t.component.clone()) {
                components.push(HttpComponent { ctx: contexts[&t.component].clone(), pre: pres[&t.component].clone() });
            }
        }
        let info = AppInfo { name: app.name.clone(), version: app.version.clone() };
        let http = HttpApp::new(&engine, router, components, reuse, &info)?;
        let listen = args.http.listen();
        let l = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                let err = if e.kind() == std::io::ErrorKind::AddrInUse {
                    anyhow!("{listen} is already in use")
                } else {
                    anyhow!("Unable to listen on {listen}: {e:?}")
                };
                return Err(trigger_failed(err, true, multi));
            }
        };
        let base_url = format!("http://{}", l.local_addr()?);
        println!("\nServing {base_url}");
        println!("Available Routes:");
        for (component, route) in http.router().listing() {
            println!("  {component}: {base_url}{route}");
        }
        running.push(Box::pin(async move {
            match http.serve(l).await {
                Ok(()) => anyhow!("the HTTP server stopped"),
                Err(e) => e,
            }
        }));
    }

    // Redis.
    if !app.redis_triggers.is_empty() {
        let mut by_address: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let mut components = BTreeMap::new();
        for t in &app.redis_triggers {
            let address_template = match (&t.address, &app.redis_default_address) {
                (Some(a), _) | (None, Some(a)) => a,
                (None, None) => bail!("redis trigger for {:?} has no address", t.component),
            };
            let address = vars.render_str(address_template).with_context(|| {
                format!("failed to resolve redis trigger address {address_template:?} for component {}", t.component)
            })?;
            let channel = vars.render_str(&t.channel).with_context(|| {
                format!("failed to resolve redis trigger channel {:?} for component {}", t.channel, t.component)
            })?;
            let ids = by_address.entry(address).or_default().entry(channel).or_default();
            if !ids.contains(&t.component) {
                ids.push(t.component.clone());
            }
            if !components.contains_key(&t.component) {
                components.insert(
                    t.component.clone(),
                    RedisComponent::new(contexts[&t.component].clone(), pres[&t.component].clone())?,
                );
            }
        }
        let trigger = Arc::new(RedisTrigger { engine: engine.clone(), components });
        let subscriptions =
            by_address.into_iter().map(|(address, channels)| Subscription { address, channels }).collect();
        let tasks = match trigger.start(subscriptions).await {
            Ok(tasks) => tasks,
            Err(e) => return Err(trigger_failed(e, true, multi)),
        };
        for task in tasks {
            running.push(Box::pin(async move {
                task.await.unwrap_or_else(|e| anyhow!("Redis subscriber task failed: {e}"))
            }));
        }
    }

    println!("spin-test-host: application {:?} is ready", app.name);

    tokio::select! {
        (err, _, _) = futures::future::select_all(running) => Err(trigger_failed(err, true, multi)),
        _ = shutdown_signal() => Ok(()),
    }
}

/// Spin's `ensure_needs_only` for one trigger type: the host requirements of
/// the components its triggers name (Spin's loader gives a component the
/// `local_service_chaining` requirement when an `allowed_outbound_hosts` entry,
/// as written, is a `*.spin.internal` host), minus what the trigger supports.
fn unmet_host_requirements(app: &manifest::App, kind: TriggerType) -> Result<(), String> {
    if kind.supports_service_chaining() {
        return Ok(());
    }
    let components: Vec<&String> = match kind {
        TriggerType::Http => app.http_triggers.iter().map(|t| &t.component).collect(),
        TriggerType::Redis => app.redis_triggers.iter().map(|t| &t.component).collect(),
    };
    let needs_chaining =
        components.into_iter().any(|id| requires_service_chaining(&app.components[id].allowed_outbound_hosts));
    if needs_chaining { Err("local_service_chaining".to_owned()) } else { Ok(()) }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn runtime_config_is_read_and_ignored() {
        let dir = std::env::temp_dir().join(format!("sth-rc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, "[[variables_provider]]\ntype = \"vault\"\n").unwrap();
        check_runtime_config(&good).unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[[variables_provider]\n").unwrap();
        assert!(check_runtime_config(&bad).is_err());
        assert!(check_runtime_config(&dir.join("missing.toml")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn cli_defaults() {
        let cli = Cli::try_parse_from(["spin-test-host", "up", "--from", "spin.toml"]).unwrap();
        let Command::Up(a) = cli.command;
        assert_eq!(a.http.listen(), "127.0.0.1:3000".parse().unwrap());
        assert_eq!(a.http.first_given(), None);
        let reuse = a.http.reuse().unwrap();
        assert_eq!(reuse.max_instance_reuse_count, 128);
        assert_eq!(reuse.max_instance_concurrent_reuse_count, 16);
        assert_eq!(reuse.idle_instance_timeout, Duration::from_secs(1));
        assert!(a.components.is_empty());
        assert!(Cli::try_parse_from(["x", "up", "-f", "a", "--max-instance-reuse-count", "0"]).is_err());

        let cli =
            Cli::try_parse_from(["x", "up", "-c", "a", "--component-id", "b", "--listen", "localhost:3001"]).unwrap();
        let Command::Up(a) = cli.command;
        assert_eq!(a.components, ["a", "b"]);
        assert_eq!(a.http.listen(), "127.0.0.1:3001".parse().unwrap());
        assert_eq!(a.http.first_given(), Some("--listen"));
    }
}
