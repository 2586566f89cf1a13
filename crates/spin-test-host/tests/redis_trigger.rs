//! Black-box tests of the Redis trigger against the `fixtures/probe-redis`
//! component (and `fixtures/probe` for the HTTP side of mixed applications).
//! The test against the shared Redis runs only when `SPIN_TEST_HOST_REDIS`
//! holds a Redis URL (`redis://[:password@]host:port`); the others start a
//! `redis-server` of their own (and are skipped when it is not installed).
//! The components must be built first: `cargo build --release --target
//! wasm32-wasip2 -p spin-test-host-probe -p spin-test-host-probe-redis`.
// Test code: an unwrap that fails is a failing test, with the value in its message.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{HostProcess, RedisServer, authority, built_wasm, crate_dir, free_port, redis, write_manifest};

fn wasm() -> PathBuf {
    built_wasm("spin_test_host_probe_redis.wasm", "spin-test-host-probe-redis")
}

/// Ids of the pub/sub clients connected to the server.
fn pubsub_client_ids(addr: &str) -> Vec<String> {
    redis(addr, &["CLIENT", "LIST", "TYPE", "pubsub"])
        .split(|c: char| c.is_whitespace())
        .filter_map(|field| field.strip_prefix("id="))
        .map(str::to_owned)
        .collect()
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn messages_in_order_without_redelivery_and_no_reconnect() {
    let Ok(url) = std::env::var("SPIN_TEST_HOST_REDIS") else {
        eprintln!("SPIN_TEST_HOST_REDIS is not set: skipping the Redis trigger test");
        return;
    };
    let addr = authority(&url, Some(6379));
    let suffix = std::process::id().to_string();
    let channel = format!("spin-test-host-it-{suffix}");
    let list = format!("spin-test-host-it-list-{suffix}");

    let text = redis_manifest(&addr, false);
    let dir = std::env::temp_dir().join(format!("spin-test-host-redis-it-{suffix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("spin.toml");
    std::fs::write(&manifest, text).unwrap();

    redis(&addr, &["DEL", &list]);
    let before = pubsub_client_ids(&addr);
    let mut child = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .args(["up", "--from"])
        .arg(&manifest)
        .env("SPIN_VARIABLE_REDIS_URL", &url)
        .env("SPIN_VARIABLE_CHANNEL", &channel)
        .env("SPIN_VARIABLE_LIST", &list)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut host = Host(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("host did not become ready");
        let ready = line.contains("is ready");
        lines.push(line);
        if ready {
            break;
        }
    }
    assert!(lines.iter().any(|l| l.contains(&format!("/{channel}: [listener]"))), "{lines:?}");

    for m in ["one", "fail", "trap", "two"] {
        assert!(redis(&addr, &["PUBLISH", &channel, m]).starts_with(":1"));
    }
    let received = || redis(&addr, &["LRANGE", &list, "0", "-1"]);
    wait_for("two messages", || received().contains("two"));
    assert_eq!(received(), "*2\r\n$3\r\none\r\n$3\r\ntwo\r\n");

    // Drop the subscriber's connection (only ours: the pub/sub clients that
    // appeared with the host): as Spin, the host does not reconnect, it ends.
    let ours: Vec<String> = pubsub_client_ids(&addr).into_iter().filter(|id| !before.contains(id)).collect();
    assert!(!ours.is_empty(), "no pub/sub connection of the host found");
    for id in &ours {
        redis(&addr, &["CLIENT", "KILL", "ID", id]);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = host.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the host still runs after its Redis connection dropped");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status}");
    redis(&addr, &["DEL", &list]);
}

/// The probe-redis fixture's manifest pointed at the built component and at
/// `redis_addr`, with the probe's HTTP component added when `with_http`.
fn redis_manifest(redis_addr: &str, with_http: bool) -> String {
    let mut text = std::fs::read_to_string(crate_dir().join("fixtures/probe-redis/spin.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("source = ") {
                format!("source = {:?}", wasm().display().to_string())
            } else if l.starts_with("allowed_outbound_hosts") {
                format!("allowed_outbound_hosts = [\"redis://{redis_addr}\"]")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if with_http {
        let probe = built_wasm("spin_test_host_probe.wasm", "spin-test-host-probe");
        text.push_str(&format!(
            "\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"probe\"\n\n\
             [component.probe]\nsource = {:?}\n",
            probe.display().to_string()
        ));
    }
    text
}

/// Publishes `message` on `channel` until a subscriber receives it.
fn publish_until_received(addr: &str, channel: &str, message: &str) {
    wait_for("a subscriber", || redis(addr, &["PUBLISH", channel, message]).starts_with(":1"));
}

#[test]
fn a_dropped_redis_connection_ends_the_process() {
    let Some(mut server) = RedisServer::start() else {
        eprintln!("redis-server is not installed: skipping");
        return;
    };
    let addr = server.addr();
    let list = "received";
    let channel = "events";
    // An HTTP application that (wrongly) also holds the Redis trigger: it dies too.
    let manifest = write_manifest(&redis_manifest(&addr, true));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut host = HostProcess::spawn(
        &manifest,
        &["--listen", &listen],
        &[("SPIN_VARIABLE_REDIS_URL", &server.url()), ("SPIN_VARIABLE_CHANNEL", channel), ("SPIN_VARIABLE_LIST", list)],
    );
    host.wait_for_stdout("is ready", Duration::from_secs(120));
    publish_until_received(&addr, channel, "one");
    wait_for("the message", || redis(&addr, &["LRANGE", list, "0", "-1"]).contains("one"));

    server.kill();
    let status = host.wait_exit(Duration::from_secs(5)).expect("the host still runs 5 s after its Redis went away");
    assert_eq!(status.code(), Some(1), "{status}");
    let stderr = host.stderr_text();
    assert!(stderr.contains("Trigger executor failed"), "{stderr}");
    assert!(host.stderr.iter().any(|l| l == &format!("Error: disconnected from {addr}")), "{stderr}");
    assert!(host.stdout.iter().any(|l| l == "A trigger exited unexpectedly. Terminating."), "{:?}", host.stdout);
    // And the HTTP side is gone with it.
    assert!(std::net::TcpStream::connect(&listen).is_err());
}

#[test]
fn a_redis_only_selection_runs_without_http_options() {
    let Some(mut server) = RedisServer::start() else {
        eprintln!("redis-server is not installed: skipping");
        return;
    };
    let addr = server.addr();
    let manifest = write_manifest(&redis_manifest(&addr, true));
    let env = [
        ("SPIN_VARIABLE_REDIS_URL", server.url()),
        ("SPIN_VARIABLE_CHANNEL", "events".to_owned()),
        ("SPIN_VARIABLE_LIST", "received".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // `-c listener` leaves only the Redis trigger: no HTTP server, no --listen.
    let mut host = HostProcess::spawn(&manifest, &["-c", "listener"], &env);
    host.wait_for_stdout("is ready", Duration::from_secs(120));
    assert!(!host.stdout.iter().any(|l| l.contains("Serving")), "{:?}", host.stdout);
    publish_until_received(&addr, "events", "one");
    wait_for("the message", || redis(&addr, &["LRANGE", "received", "0", "-1"]).contains("one"));
    server.kill();
    let status = host.wait_exit(Duration::from_secs(5)).expect("the host still runs 5 s after its Redis went away");
    assert_eq!(status.code(), Some(1), "{status}");
    assert!(host.stderr_text().contains(&format!("Error: disconnected from {addr}")));
    // A single trigger type: no "Terminating" line (that is spin up's, for several).
    assert!(!host.stdout.iter().any(|l| l.contains("Terminating")));
}

#[test]
fn a_templated_chaining_host_does_not_stop_the_redis_trigger() {
    let Some(server) = RedisServer::start() else {
        eprintln!("redis-server is not installed: skipping");
        return;
    };
    // Spin's loader cannot parse `http://{{ x }}.spin.internal` before rendering, so it does
    // not count as service chaining: the Redis trigger starts.
    let text = redis_manifest(&server.addr(), false).replace(
        &format!("allowed_outbound_hosts = [\"redis://{}\"]", server.addr()),
        &format!("allowed_outbound_hosts = [\"redis://{}\", \"http://{{{{ list }}}}.spin.internal\"]", server.addr()),
    );
    assert!(text.contains("spin.internal"));
    let manifest = write_manifest(&text);
    let mut host = HostProcess::spawn(&manifest, &[], &[("SPIN_VARIABLE_REDIS_URL", &server.url())]);
    host.wait_for_stdout("is ready", Duration::from_secs(120));
}
