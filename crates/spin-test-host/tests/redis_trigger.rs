//! Black-box test of the Redis trigger against the `fixtures/probe-redis`
//! component. Runs only when `SPIN_TEST_HOST_REDIS` holds a Redis URL
//! (`redis://host:port`, no password); the component must be built first:
//! `cargo build --release --target wasm32-wasip2 -p spin-test-host-probe-redis`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{authority, built_wasm, crate_dir};

fn wasm() -> PathBuf {
    built_wasm("spin_test_host_probe_redis.wasm", "spin-test-host-probe-redis")
}

/// Sends one RESP command and returns the raw reply.
fn redis(addr: &str, args: &[&str]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the reply stops arriving (replies here are small).
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn messages_in_order_without_redelivery_and_reconnect() {
    let Ok(url) = std::env::var("SPIN_TEST_HOST_REDIS") else {
        eprintln!("SPIN_TEST_HOST_REDIS is not set: skipping the Redis trigger test");
        return;
    };
    let addr = authority(&url, Some(6379));
    let suffix = std::process::id().to_string();
    let channel = format!("spin-test-host-it-{suffix}");
    let list = format!("spin-test-host-it-list-{suffix}");

    let text = std::fs::read_to_string(crate_dir().join("fixtures/probe-redis/spin.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("source = ") {
                format!("source = {:?}", wasm().display().to_string())
            } else if l.starts_with("allowed_outbound_hosts") {
                format!("allowed_outbound_hosts = [\"redis://{addr}\"]")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
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
    let host = Host(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("host did not become ready");
        let ready = line.contains("is ready");
        lines.push(line);
        if ready {
            break;
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("/{channel}: [listener]"))),
        "{lines:?}"
    );

    for m in ["one", "fail", "trap", "two"] {
        assert!(redis(&addr, &["PUBLISH", &channel, m]).starts_with(":1"));
    }
    let received = || redis(&addr, &["LRANGE", &list, "0", "-1"]);
    wait_for("two messages", || received().contains("two"));
    assert_eq!(received(), "*2\r\n$3\r\none\r\n$3\r\ntwo\r\n");

    // Drop the subscriber's connection (only ours: the pub/sub clients that
    // appeared with the host): the host reconnects and resubscribes.
    let ours: Vec<String> = pubsub_client_ids(&addr)
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert!(!ours.is_empty(), "no pub/sub connection of the host found");
    for id in &ours {
        redis(&addr, &["CLIENT", "KILL", "ID", id]);
    }
    wait_for("resubscription", || {
        redis(&addr, &["PUBLISH", &channel, "three"]).starts_with(":1")
    });
    wait_for("third message", || received().contains("three"));
    drop(host);
    redis(&addr, &["DEL", &list]);
}
