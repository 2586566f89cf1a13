//! `spin-test-host`: a small Spin-compatible host for this project's black-box
//! tests, where the real `spin` CLI cannot be installed.
//!
//! It serves a Spin manifest (version 2) the way Spin 4.1's `spin up` does, for
//! the subset the project uses, and takes the same flags:
//!
//! ```text
//! spin-test-host up --from <spin.toml> [--listen 127.0.0.1:3000]
//!     [--runtime-config-file <file>] [--max-instance-reuse-count 128]
//!     [--max-instance-concurrent-reuse-count 16] [--idle-instance-timeout 1s]
//!     [--disable-cache]
//! ```
//!
//! What it mimics (the real Spin remains the reference):
//! - manifest: `[application]`, `[variables]`, `[[trigger.http]]` (string or
//!   `{ private = true }` routes), `[[trigger.redis]]` with
//!   `[application.trigger.redis] address`, `[component.<id>]` with `source`,
//!   `allowed_outbound_hosts`, `variables`, `environment` (`build` is ignored);
//! - HTTP routing and `spin-*` headers ([`routes`]), WASIp3 instance reuse
//!   ([`http_trigger`]), outbound `wasi:http` with `allowed_outbound_hosts` and
//!   local service chaining via `http://<component>.spin.internal`;
//! - `spin:variables@3.0.0` with the `SPIN_VARIABLE_<NAME>` env provider
//!   ([`variables`]), `spin:redis@3.0.0` ([`redis_host`]),
//!   `spin:postgres@4.2.0` ([`pg_host`]), the Redis trigger ([`redis_trigger`]);
//! - WASI 0.2 and 0.3 from `wasmtime-wasi`, guest stdio inherited.
//!
//! Known differences from Spin (details in each module's docs):
//! - the Redis trigger reconnects with backoff when its connection drops
//!   (Spin's trigger stops with "disconnected");
//! - a service-chaining request to a component without an HTTP trigger fails
//!   with `destination-not-found` (Spin traps the caller);
//! - Postgres: no TLS (`sslmode=require` fails), range types unsupported,
//!   `timestamptz` decoded, column metadata present for empty results;
//! - a component importing something we do not provide still starts; the
//!   missing functions trap when called (logged as a warning at startup);
//! - HTTP/1.1 and h2c only; `--env`, `--find-free-port`, TLS flags and other
//!   `spin up` options are not accepted.
//!
//! NOT supported: components exporting the WASIp2 or Spin-1 HTTP interfaces,
//! Wagi, static responses, inline components, component dependencies, `files`,
//! key-value, SQLite, MySQL, MQTT, LLM, wasi:config/keyvalue, the
//! `fermyon:spin` 1.x/2.x interfaces (including the old
//! `fermyon:spin/inbound-redis` export), TLS, `self` and CIDR entries in
//! `allowed_outbound_hosts`, runtime-config contents (the file is read and
//! ignored with a warning, so only the default env variables provider exists),
//! request timeouts, `/.well-known/spin/info` (only `/.well-known/spin/health`
//! answers), OpenTelemetry, and log files (guest output goes to our
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
//! Redis- and Postgres-backed checks run only when `SPIN_TEST_HOST_REDIS`
//! (e.g. `redis://127.0.0.1:6379`, no password) and `SPIN_TEST_HOST_PG` (e.g.
//! `postgres://user:pw@127.0.0.1:5432/db`) are set; otherwise they print that
//! they were skipped and pass.

mod http_trigger;
mod manifest;
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

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::http_trigger::{HttpApp, HttpComponent, ReuseConfig};
use crate::manifest::HttpRoute;
use crate::outbound_hosts::AllowedHosts;
use crate::pg_host::PgPools;
use crate::redis_trigger::{RedisComponent, RedisTrigger, Subscription};
use crate::routes::Router;
use crate::runtime::ComponentContext;
use crate::variables::{AppVariables, ComponentVariables};

#[derive(Parser)]
#[command(
    name = "spin-test-host",
    version,
    about = "A small Spin-compatible host for tests"
)]
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
    #[arg(
        short = 'f',
        long = "from",
        value_name = "MANIFEST",
        default_value = "spin.toml"
    )]
    from: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Runtime configuration file (read; its sections are ignored).
    #[arg(long, value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,
    /// Requests one instance may serve in total.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    max_instance_reuse_count: u64,
    /// Requests one instance may serve at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    max_instance_concurrent_reuse_count: u64,
    /// How long an idle instance is kept, e.g. `1s`, `500ms`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    idle_instance_timeout: Duration,
    /// Do not use Wasmtime's on-disk compilation cache.
    #[arg(long)]
    disable_cache: bool,
}

/// Parses `1s`, `500ms`, `20us`, `10ns` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "μs" => value / 1e6,
        "ns" => value / 1e9,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?} (use s, ms, us or ns)"
            ));
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Up(args) => runtime.block_on(up(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check_runtime_config(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read runtime config {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("invalid runtime config {}", path.display()))?;
    if !table.is_empty() {
        let keys = table.keys().cloned().collect::<Vec<_>>().join(", ");
        tracing::warn!(
            "runtime config {}: sections are not supported by spin-test-host and are ignored: {keys}",
            path.display()
        );
    }
    Ok(())
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.runtime_config_file {
        check_runtime_config(path)?;
    }
    let manifest_path = if args.from.is_dir() {
        args.from.join("spin.toml")
    } else {
        args.from.clone()
    };
    let app = manifest::load(&manifest_path)?;
    let vars = AppVariables::from_env(&app)?;
    let reuse = ReuseConfig {
        max_instance_reuse_count: usize::try_from(args.max_instance_reuse_count)?,
        max_instance_concurrent_reuse_count: usize::try_from(
            args.max_instance_concurrent_reuse_count,
        )?,
        idle_instance_timeout: args.idle_instance_timeout,
    };

    // Per-component context: variables and allowed hosts resolved now.
    let component_ids: Vec<String> = app.components.keys().cloned().collect();
    let pg_pools = Arc::new(PgPools::default());
    let mut contexts = BTreeMap::new();
    for (id, c) in &app.components {
        let allowed_hosts = AllowedHosts::resolve(&c.allowed_outbound_hosts, &vars, &component_ids)
            .with_context(|| format!("component {id:?}: invalid allowed_outbound_hosts"))?;
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
    let triggered = app
        .http_triggers
        .iter()
        .map(|t| &t.component)
        .chain(app.redis_triggers.iter().map(|t| &t.component));
    for id in triggered {
        if pres.contains_key(id) {
            continue;
        }
        let source = &app.components[id].source;
        pres.insert(id.clone(), runtime::prepare(&engine, &linker, id, source)?);
    }

    // HTTP.
    let mut http_app = None;
    let mut listener = None;
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
                components.push(HttpComponent {
                    ctx: contexts[&t.component].clone(),
                    pre: pres[&t.component].clone(),
                });
            }
        }
        let http = HttpApp::new(&engine, router, components, reuse)?;
        let l = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    anyhow::anyhow!("{} is already in use", args.listen)
                } else {
                    anyhow::anyhow!("unable to listen on {}: {e}", args.listen)
                }
            })?;
        let base_url = format!("http://{}", l.local_addr()?);
        println!("\nServing {base_url}");
        println!("Available Routes:");
        for (component, route) in http.router().listing() {
            println!("  {component}: {base_url}{route}");
        }
        http_app = Some(http);
        listener = Some(l);
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
                format!(
                    "failed to resolve redis trigger address for component {}",
                    t.component
                )
            })?;
            let channel = vars.render_str(&t.channel).with_context(|| {
                format!(
                    "failed to resolve redis trigger channel for component {}",
                    t.component
                )
            })?;
            let ids = by_address
                .entry(address)
                .or_default()
                .entry(channel)
                .or_default();
            if !ids.contains(&t.component) {
                ids.push(t.component.clone());
            }
            if !components.contains_key(&t.component) {
                components.insert(
                    t.component.clone(),
                    RedisComponent::new(
                        contexts[&t.component].clone(),
                        pres[&t.component].clone(),
                    )?,
                );
            }
        }
        let trigger = Arc::new(RedisTrigger {
            engine: engine.clone(),
            components,
            http: http_app.clone(),
        });
        let subscriptions = by_address
            .into_iter()
            .map(|(address, channels)| Subscription { address, channels })
            .collect();
        trigger.start(subscriptions).await?;
    }

    if http_app.is_none() && app.redis_triggers.is_empty() {
        bail!("the application has no triggers");
    }
    println!("spin-test-host: application {:?} is ready", app.name);

    let server = async {
        match (http_app, listener) {
            (Some(http), Some(l)) => http.serve(l).await,
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        r = server => r,
        _ = shutdown_signal() => Ok(()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
        assert_eq!(a.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(a.max_instance_reuse_count, 128);
        assert_eq!(a.max_instance_concurrent_reuse_count, 16);
        assert_eq!(a.idle_instance_timeout, Duration::from_secs(1));
        assert!(
            Cli::try_parse_from(["x", "up", "-f", "a", "--max-instance-reuse-count", "0"]).is_err()
        );
    }
}
