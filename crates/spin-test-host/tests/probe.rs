//! Black-box tests of the `spin-test-host` binary against the `fixtures/probe`
//! component, over HTTP on free loopback ports.
//!
//! The component must be built first:
//! `cargo build --release --target wasm32-wasip2 -p spin-test-host-probe`.
//! Redis/Postgres checks run only when `SPIN_TEST_HOST_REDIS` /
//! `SPIN_TEST_HOST_PG` hold a server URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{authority, built_wasm, crate_dir};

fn probe_wasm() -> PathBuf {
    built_wasm("spin_test_host_probe.wasm", "spin-test-host-probe")
}

/// The fixture manifest, pointed at the built probe, after `edit`.
fn manifest(edit: impl FnOnce(String) -> String) -> String {
    let text = std::fs::read_to_string(crate_dir().join("fixtures/probe/spin.toml"))
        .expect("fixtures/probe/spin.toml");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("source = ") {
                format!("source = {:?}", probe_wasm().display().to_string())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    edit(text)
}

fn write_manifest(text: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "spin-test-host-it-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Host {
    child: Child,
    port: u16,
    stdout: Vec<String>,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    fn start(manifest_text: &str, args: &[&str], env: &[(&str, &str)]) -> Host {
        let path = write_manifest(manifest_text);
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spin-test-host"));
        cmd.args(["up", "--from"])
            .arg(&path)
            .args(["--listen", &listen])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn spin-test-host");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    let ready = line.contains("is ready");
                    lines.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    panic!("host did not become ready (exit: {status:?}); stdout: {lines:#?}");
                }
            }
        }
        Host {
            child,
            port,
            stdout: lines,
        }
    }

    fn get(&self, path: &str) -> Response {
        request(self.port, "GET", path, None)
    }

    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.body))
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let length = body
        .map(|b| format!("Content-Length: {}\r\n", b.len()))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n{length}\r\n{}",
        body.unwrap_or("")
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[test]
fn routes_headers_variables_and_content_length() {
    let host = Host::start(&manifest(|m| m), &[], &[("SPIN_VARIABLE_GREETING", "hey")]);
    assert!(
        host.stdout
            .iter()
            .any(|l| l.starts_with("Serving http://127.0.0.1:"))
    );
    assert!(host.stdout.iter().any(|l| l == "Available Routes:"));
    assert!(
        host.stdout
            .iter()
            .any(|l| l.contains("probe: http://127.0.0.1:") && l.ends_with("/items/:id"))
    );

    let r = host.get("/items/42?q=1");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(r.header("transfer-encoding"), None);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let h = &v["headers"];
    let port = host.port;
    assert_eq!(
        h["spin-full-url"],
        format!("http://localhost:{port}/items/42?q=1")
    );
    assert_eq!(h["spin-path-info"], "");
    assert_eq!(h["spin-matched-route"], "/items/:id");
    assert_eq!(h["spin-raw-component-route"], "/items/:id");
    assert_eq!(h["spin-component-route"], "/items/:id");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-path-match-id"], "42");
    assert!(
        h["spin-client-addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(v["greeting"], "hey, world");

    let v = host.json("/other/a/b/");
    assert_eq!(v["headers"]["spin-matched-route"], "/...");
    assert_eq!(v["headers"]["spin-path-info"], "/other/a/b/");
    assert_eq!(v["headers"]["spin-component-route"], "");

    let v = host.json("/exact");
    assert_eq!(v["headers"]["spin-matched-route"], "/exact");

    let v = host.json("/var/greeting");
    assert_eq!(v["value"], "hey, world");
    let v = host.json("/var/missing");
    assert!(v["error"].as_str().unwrap().contains("Undefined"), "{v}");
    let v = host.json("/var/Bad");
    assert!(v["error"].as_str().unwrap().contains("InvalidName"), "{v}");
}

#[test]
fn request_bodies_reach_the_guest() {
    let host = Host::start(&manifest(|m| m), &[], &[]);
    let r = request(host.port, "POST", "/body", Some("{\"qty\": 5}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["body"], "{\"qty\": 5}");
}

#[test]
fn unknown_route_is_404() {
    let text = manifest(|m| m.replace("route = \"/...\"", "route = \"/only/...\""));
    let host = Host::start(&text, &[], &[]);
    assert_eq!(host.get("/nope").status, 404);
    let health = host.get("/.well-known/spin/health");
    assert_eq!((health.status, health.body.as_str()), (200, "OK"));
    assert_eq!(host.get("/.well-known/spin/other").status, 404);
    assert_eq!(host.get("/only/x").status, 200);
}

#[test]
fn instance_reuse_defaults_and_limits() {
    let counts = |host: &Host, n: usize| -> Vec<u64> {
        (0..n)
            .map(|_| host.json("/count")["count"].as_u64().unwrap())
            .collect()
    };

    let host = Host::start(&manifest(|m| m), &[], &[]);
    assert_eq!(counts(&host, 4), vec![1, 2, 3, 4]);
    drop(host);

    let host = Host::start(
        &manifest(|m| m),
        &[
            "--max-instance-reuse-count",
            "1",
            "--max-instance-concurrent-reuse-count",
            "1",
        ],
        &[],
    );
    assert_eq!(counts(&host, 4), vec![1, 1, 1, 1]);
    drop(host);

    let host = Host::start(&manifest(|m| m), &["--max-instance-reuse-count", "2"], &[]);
    assert_eq!(counts(&host, 4), vec![1, 2, 1, 2]);
    drop(host);

    let host = Host::start(&manifest(|m| m), &["--idle-instance-timeout", "200ms"], &[]);
    assert_eq!(counts(&host, 2), vec![1, 2]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(counts(&host, 1), vec![1]);
}

/// Warms one instance up, then starts `/sleep/1500` and, 400 ms later, asks
/// `/sleep/0`; returns the counters both saw.
fn overlapping_counts(host: &Host) -> (u64, u64) {
    assert_eq!(host.json("/count")["count"], 1);
    let port = host.port;
    let slow = std::thread::spawn(move || request(port, "GET", "/sleep/1500", None));
    std::thread::sleep(Duration::from_millis(400));
    let fast: Value = serde_json::from_str(&host.get("/sleep/0").body).unwrap();
    let slow: Value = serde_json::from_str(&slow.join().unwrap().body).unwrap();
    (
        slow["count"].as_u64().unwrap(),
        fast["count"].as_u64().unwrap(),
    )
}

#[test]
fn concurrent_reuse_limit() {
    // Default (16 at once): the second request joins the busy instance.
    let host = Host::start(&manifest(|m| m), &[], &[]);
    assert_eq!(overlapping_counts(&host), (2, 3));
    drop(host);
    // One at a time: the second request gets a fresh instance.
    let host = Host::start(
        &manifest(|m| m),
        &["--max-instance-concurrent-reuse-count", "1"],
        &[],
    );
    assert_eq!(overlapping_counts(&host), (2, 1));
}

#[test]
fn service_chaining_and_outbound_denial() {
    let host = Host::start(&manifest(|m| m), &[], &[]);
    let v = host.json("/chain");
    assert_eq!(v["status"], 200, "{v}");
    let h = &v["body"]["headers"];
    assert_eq!(
        h["spin-full-url"],
        "http://probe.spin.internal/echo/chained?x=1"
    );
    assert_eq!(h["spin-path-info"], "/echo/chained");
    assert_eq!(h["spin-matched-route"], "/...");
    assert_eq!(h["spin-client-addr"], "0.0.0.0:0");

    let v = host.json("/forbidden");
    assert!(
        v["error"].as_str().unwrap().contains("HttpRequestDenied"),
        "{v}"
    );
    drop(host);

    // Without the chaining entry, chaining is denied too.
    let text = manifest(|m| m.replace("\"http://probe.spin.internal\",", ""));
    let host = Host::start(&text, &[], &[]);
    let v = host.json("/chain");
    assert!(
        v["error"].as_str().unwrap().contains("HttpRequestDenied"),
        "{v}"
    );
    drop(host);

    // `http://*.spin.internal` allows every component.
    let text = manifest(|m| m.replace("http://probe.spin.internal", "http://*.spin.internal"));
    let host = Host::start(&text, &[], &[]);
    assert_eq!(host.json("/chain")["status"], 200);
}

#[test]
fn a_trap_fails_only_its_request() {
    let host = Host::start(&manifest(|m| m), &[], &[]);
    assert_eq!(host.json("/count")["count"], 1);
    let r = host.get("/trap");
    assert_eq!(r.status, 500);
    assert_eq!(r.body, "");
    // The trapped instance is gone; a new one serves the next request.
    assert_eq!(host.json("/count")["count"], 1);
    assert_eq!(host.json("/count")["count"], 2);
}

fn startup_error(text: &str, env: &[(&str, &str)]) -> String {
    let path = write_manifest(text);
    let out = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .args(["up", "--from"])
        .arg(&path)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "expected failure for:\n{text}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_manifests_fail_at_startup() {
    let err = startup_error(
        &manifest(|m| {
            m.replace(
                "component = \"probe\"\n\n[[trigger.http]]\nroute = \"/items/:id\"",
                "component = \"nope\"\n\n[[trigger.http]]\nroute = \"/items/:id\"",
            )
        }),
        &[],
    );
    assert!(err.contains("\"nope\", which is not defined"), "{err}");

    let err = startup_error(
        &manifest(|m| m.replace("{ default = \"hello\" }", "{ required = true }")),
        &[],
    );
    assert!(err.contains("SPIN_VARIABLE_GREETING"), "{err}");

    let err = startup_error(
        &manifest(|m| m.replace("{{ greeting }}, world", "{{ nothing }}")),
        &[],
    );
    assert!(
        err.contains("undefined application variable \"nothing\""),
        "{err}"
    );

    let err = startup_error(
        &manifest(|m| m.replace("spin_test_host_probe.wasm", "no_such.wasm")),
        &[],
    );
    assert!(err.contains("does not exist"), "{err}");

    let err = startup_error(&manifest(|m| m.replace("\"/exact\"", "\"/exact/:\"")), &[]);
    assert!(err.contains("route"), "{err}");
}

#[test]
fn redis_host_calls() {
    let Ok(url) = std::env::var("SPIN_TEST_HOST_REDIS") else {
        eprintln!("SPIN_TEST_HOST_REDIS is not set: skipping the Redis host-call checks");
        return;
    };
    let allowed = format!("redis://{}", authority(&url, None));
    let text = manifest(|m| m.replace("redis://127.0.0.1:*", &allowed));
    let host = Host::start(&text, &[], &[("SPIN_VARIABLE_REDIS_URL", &url)]);
    let v = host.json("/redis");
    assert_eq!(v["denied"], "Some(Error::InvalidAddress)", "{v}");
    assert_eq!(v["set"], "Ok(())", "{v}");
    assert_eq!(v["get"], "Ok(Some(\"41\"))", "{v}");
    assert_eq!(v["incr"], "Ok(42)", "{v}");
    assert_eq!(v["sadd"], "Ok(2)", "{v}");
    assert_eq!(v["smembers"], "Ok([\"a\", \"b\"])", "{v}");
    assert_eq!(v["srem"], "Ok(1)", "{v}");
    assert_eq!(v["ping"], "Ok([RedisResult::Status(\"PONG\")])", "{v}");
    assert_eq!(v["execute_set"], "Ok([RedisResult::Status(\"OK\")])", "{v}");
    assert_eq!(
        v["execute_mget"], "Ok([RedisResult::Binary([52, 50]), RedisResult::Nil])",
        "{v}"
    );
    assert_eq!(v["publish"], "Ok(())", "{v}");
}

#[test]
fn postgres_host_calls() {
    let Ok(url) = std::env::var("SPIN_TEST_HOST_PG") else {
        eprintln!("SPIN_TEST_HOST_PG is not set: skipping the Postgres host-call checks");
        return;
    };
    let allowed = format!("postgres://{}", authority(&url, None));
    let text = manifest(|m| m.replace("postgres://127.0.0.1:*", &allowed));
    let host = Host::start(&text, &[], &[("SPIN_VARIABLE_PG_URL", &url)]);
    let v = host.json("/pg");
    assert_eq!(v["create"], "Ok(0)", "{v}");
    assert_eq!(v["insert"], "Ok(2)", "{v}");
    assert_eq!(v["status"], "Ok(())", "{v}");
    let columns: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(columns[0], "i2:DbDataType::Int16");
    assert!(columns.contains(&"tz:DbDataType::Datetime"), "{columns:?}");
    assert!(
        columns.contains(&"other:DbDataType::Other(\"inet\")"),
        "{columns:?}"
    );
    let row: Vec<&str> = v["rows"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let expected = [
        "DbValue::Int16(1)",
        "DbValue::Int32(2)",
        "DbValue::Int64(3)",
        "DbValue::Floating32(1.5)",
        "DbValue::Floating64(2.5)",
        "DbValue::Str(\"x\")",
        "DbValue::Str(\"y\")",
        "DbValue::Str(\"z\")",
        "DbValue::Boolean(true)",
        "DbValue::Binary([1, 2])",
        "DbValue::Uuid(\"00000000-0000-0000-0000-000000000001\")",
        "DbValue::Jsonb([123, 34, 97, 34, 58, 49, 125])",
        "DbValue::Decimal(\"12.50\")",
        "DbValue::ArrayInt32([Some(1), None])",
        "DbValue::ArrayInt64([Some(5)])",
        "DbValue::ArrayStr([Some(\"p\"), None])",
        "DbValue::Datetime((2024, 1, 2, 3, 4, 5, 0))",
        "DbValue::Datetime((2024, 1, 2, 3, 4, 5, 0))",
        "DbValue::Date((2024, 1, 2))",
        "DbValue::Time((3, 4, 5, 0))",
        "DbValue::DbNull",
    ];
    assert_eq!(&row[..expected.len()], &expected[..], "{v}");
    assert!(
        row[expected.len()].starts_with("DbValue::Unsupported("),
        "{v}"
    );
    assert_eq!(
        v["table"],
        serde_json::json!([[1, "one"], [2, null]]),
        "{v}"
    );
    let bad = v["bad_query"].as_str().unwrap();
    assert!(
        bad.contains("QueryFailed") && bad.contains("code: \"42P01\""),
        "{bad}"
    );
    assert!(
        v["denied"].as_str().unwrap().contains("ConnectionFailed"),
        "{v}"
    );
}
