//! Black-box tests of the `spin-test-host` binary against the `fixtures/probe`
//! component, over HTTP on free loopback ports.
//!
//! The component must be built first:
//! `cargo build --release --target wasm32-wasip2 -p spin-test-host-probe`.
//! Redis/Postgres checks run only when `SPIN_TEST_HOST_REDIS` /
//! `SPIN_TEST_HOST_PG` hold a server URL.
// Test code: an unwrap that fails is a failing test, with the value in its message.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{authority, built_wasm, crate_dir, free_port, write_manifest};

fn probe_wasm() -> PathBuf {
    built_wasm("spin_test_host_probe.wasm", "spin-test-host-probe")
}

/// The fixture manifest, pointed at the built probe, after `edit`.
fn manifest(edit: impl FnOnce(String) -> String) -> String {
    let text = std::fs::read_to_string(crate_dir().join("fixtures/probe/spin.toml")).expect("fixtures/probe/spin.toml");
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
        Host { child, port, stdout: lines }
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
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let length = body.map(|b| format!("Content-Length: {}\r\n", b.len())).unwrap_or_default();
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
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    Response { status, headers, body: body.to_owned() }
}

#[test]
fn routes_headers_variables_and_content_length() {
    let host = Host::start(&manifest(|m| m), &[], &[("SPIN_VARIABLE_GREETING", "hey")]);
    assert!(host.stdout.iter().any(|l| l.starts_with("Serving http://127.0.0.1:")));
    assert!(host.stdout.iter().any(|l| l == "Available Routes:"));
    assert!(host.stdout.iter().any(|l| l.contains("probe: http://127.0.0.1:") && l.ends_with("/items/:id")));

    let r = host.get("/items/42?q=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
    assert_eq!(r.header("transfer-encoding"), None);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let h = &v["headers"];
    let port = host.port;
    assert_eq!(h["spin-full-url"], format!("http://localhost:{port}/items/42?q=1"));
    assert_eq!(h["spin-path-info"], "");
    assert_eq!(h["spin-matched-route"], "/items/:id");
    assert_eq!(h["spin-raw-component-route"], "/items/:id");
    assert_eq!(h["spin-component-route"], "/items/:id");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-path-match-id"], "42");
    assert!(h["spin-client-addr"].as_str().unwrap().starts_with("127.0.0.1:"));
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
    let info = host.get("/.well-known/spin/info");
    assert_eq!(info.status, 200);
    assert_eq!(info.header("content-type"), Some("application/json"));
    assert_eq!(info.body, "{\n  \"name\": \"probe\"\n}");
    assert_eq!(host.get("/.well-known/spin/other").status, 404);
    let nope = host.get("/nope");
    assert_eq!((nope.status, nope.body.as_str()), (404, ""));
    assert_eq!(host.get("/only/x").status, 200);
}

#[test]
fn instance_reuse_defaults_and_limits() {
    let counts = |host: &Host, n: usize| -> Vec<u64> {
        (0..n).map(|_| host.json("/count")["count"].as_u64().unwrap()).collect()
    };

    let host = Host::start(&manifest(|m| m), &[], &[]);
    assert_eq!(counts(&host, 4), vec![1, 2, 3, 4]);
    drop(host);

    let host = Host::start(
        &manifest(|m| m),
        &["--max-instance-reuse-count", "1", "--max-instance-concurrent-reuse-count", "1"],
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
    (slow["count"].as_u64().unwrap(), fast["count"].as_u64().unwrap())
}

#[test]
fn concurrent_reuse_limit() {
    // Default (16 at once): the second request joins the busy instance.
    let host = Host::start(&manifest(|m| m), &[], &[]);
    assert_eq!(overlapping_counts(&host), (2, 3));
    drop(host);
    // One at a time: the second request gets a fresh instance.
    let host = Host::start(&manifest(|m| m), &["--max-instance-concurrent-reuse-count", "1"], &[]);
    assert_eq!(overlapping_counts(&host), (2, 1));
}

#[test]
fn service_chaining_and_outbound_denial() {
    let host = Host::start(&manifest(|m| m), &[], &[]);
    let v = host.json("/chain");
    assert_eq!(v["status"], 200, "{v}");
    let h = &v["body"]["headers"];
    // Spin drops the Host header of every outbound request, and builds
    // spin-full-url from the Host header, `localhost` without one.
    assert_eq!(h["spin-full-url"], "http://localhost/echo/chained?x=1");
    assert_eq!(v["body"]["uri"], "http://probe.spin.internal/echo/chained?x=1");
    assert_eq!(h["spin-path-info"], "/echo/chained");
    assert_eq!(h["spin-matched-route"], "/...");
    assert_eq!(h["spin-client-addr"], "0.0.0.0:0");

    let v = host.json("/forbidden");
    assert!(v["error"].as_str().unwrap().contains("HttpRequestDenied"), "{v}");
    drop(host);

    // Without the chaining entry, chaining is denied too.
    let text = manifest(|m| m.replace("\"http://probe.spin.internal\",", ""));
    let host = Host::start(&text, &[], &[]);
    let v = host.json("/chain");
    assert!(v["error"].as_str().unwrap().contains("HttpRequestDenied"), "{v}");
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

/// Sends raw bytes as a request on a fresh connection; returns all that came back.
fn raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// A GET with extra raw header lines; the parsed JSON the probe answered.
fn get_with_headers(port: u16, path: &str, extra: &[u8]) -> (u16, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\n").into_bytes();
    req.extend_from_slice(extra);
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    let out = String::from_utf8_lossy(&raw(port, &req)).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The probe's `header_list` as pairs.
fn header_list(body: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["header_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn spin_headers_as_spin_makes_them() {
    let text = manifest(|m| {
        m.replace(
            "[component.probe]",
            "[[trigger.http]]\nroute = \"/users/:user_id/:Kind/...\"\ncomponent = \"probe\"\n\n[component.probe]",
        )
    });
    let host = Host::start(&text, &[], &[]);
    let port = host.port;
    // The client sends headers named like Spin's: they come first, Spin's after.
    let (status, body) = get_with_headers(
        port,
        "/users/u-7/Admin/rest/?q=1",
        b"X-Trace: t1\r\nSpin-Full-Url: forged\r\nspin-path-match-user-id: forged\r\n",
    );
    assert_eq!(status, 200, "{body}");
    let list = header_list(&body);
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    for n in &names {
        assert_eq!(*n, n.to_ascii_lowercase());
    }
    let values =
        |name: &str| -> Vec<&str> { list.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect() };
    let full_url = format!("http://localhost:{port}/users/u-7/Admin/rest/?q=1");
    assert_eq!(values("spin-full-url"), ["forged", full_url.as_str()]);
    assert_eq!(values("spin-path-match-user-id"), ["forged", "u-7"]);
    assert_eq!(values("spin-path-match-kind"), ["Admin"]);
    assert_eq!(values("spin-path-match-user_id"), Vec::<&str>::new());
    assert_eq!(values("spin-path-info"), ["/rest/"]);
    assert_eq!(values("spin-matched-route"), ["/users/:user_id/:Kind/..."]);
    assert_eq!(values("spin-raw-component-route"), ["/users/:user_id/:Kind/..."]);
    assert_eq!(values("spin-component-route"), ["/users/:user_id/:Kind"]);
    assert_eq!(values("spin-base-path"), ["/"]);
    assert_eq!(values("x-trace"), ["t1"]);
    // wasi:http forbids `host` (as `connection`): it is in the URI instead.
    assert_eq!(values("host"), Vec::<&str>::new());
    let client = values("spin-client-addr");
    assert!(client[0].starts_with("127.0.0.1:"), "{client:?}");
    // No Connection header reaches the guest.
    assert_eq!(values("connection"), Vec::<&str>::new());
}

#[test]
fn header_values_must_be_utf8_not_ascii() {
    let host = Host::start(&manifest(|m| m), &[], &[]);
    // Valid UTF-8, not ASCII: passed through unchanged.
    let (status, body) = get_with_headers(host.port, "/echo", "X-Name: Zoë Ωmega\r\n".as_bytes());
    assert_eq!(status, 200, "{body}");
    let list = header_list(&body);
    assert!(list.contains(&("x-name".to_owned(), "Zoë Ωmega".to_owned())), "{list:?}");
    // Not UTF-8: Spin's `prepare_request_headers` fails, and the handler's
    // error becomes an empty 500.
    let (status, body) = get_with_headers(host.port, "/echo", b"X-Name: Zo\xeb\r\n");
    assert_eq!((status, body.as_str()), (500, ""));
}

#[test]
fn requests_without_a_usable_host_get_no_answer() {
    let host = Host::start(&manifest(|m| m), &[], &[]);
    let port = host.port;
    // Spin's `set_req_uri` fails (no authority, or an invalid one) and hyper
    // closes the connection without a response.
    assert_eq!(raw(port, b"GET /echo HTTP/1.0\r\n\r\n"), b"");
    assert_eq!(raw(port, b"GET /echo HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n"), b"");
    // A chaining Host is removed first, and then there is none.
    assert_eq!(raw(port, b"GET /echo HTTP/1.1\r\nHost: probe.spin.internal\r\nConnection: close\r\n\r\n"), b"");
    // The well-known paths are answered before that.
    let out = raw(port, b"GET /.well-known/spin/health HTTP/1.0\r\n\r\n");
    assert!(out.starts_with(b"HTTP/1.0 200 OK"), "{}", String::from_utf8_lossy(&out));
    // An absolute-form URI gives the authority when there is no Host header.
    let out = raw(port, b"GET http://example.test:81/echo HTTP/1.0\r\n\r\n");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    assert!(out.contains("\"uri\":\"http://example.test:81/echo\""), "{out}");
    // spin-full-url is built from the Host header only: `localhost` here.
    assert!(out.contains("\"spin-full-url\":\"http://localhost/echo\""), "{out}");
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

    let err = startup_error(&manifest(|m| m.replace("{ default = \"hello\" }", "{ required = true }")), &[]);
    assert!(err.contains("SPIN_VARIABLE_GREETING"), "{err}");

    let err = startup_error(&manifest(|m| m.replace("{{ greeting }}, world", "{{ nothing }}")), &[]);
    assert!(err.contains("undefined application variable \"nothing\""), "{err}");

    let err = startup_error(&manifest(|m| m.replace("spin_test_host_probe.wasm", "no_such.wasm")), &[]);
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
    assert_eq!(v["execute_mget"], "Ok([RedisResult::Binary([52, 50]), RedisResult::Nil])", "{v}");
    assert_eq!(v["publish"], "Ok(())", "{v}");
    // What a component sees of Redis's `-NOSCRIPT` reply: `other` with the host's `redis` crate
    // error as text, as in Spin's factor-outbound-redis (same crate, same `e.to_string()`). The
    // services' script runner falls back to EVAL on it (`market_core::script::is_noscript`).
    let noscript = "An error was signalled by the server - NoScriptError: No matching script. Please use EVAL.";
    assert_eq!(v["execute_noscript"], format!("Err(Error::Other({noscript:?}))"), "{v}");
    assert!(market_core::script::is_noscript(noscript));
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
    let columns: Vec<&str> = v["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(columns[0], "i2:DbDataType::Int16");
    assert!(columns.contains(&"ts:DbDataType::Datetime"), "{columns:?}");
    assert!(columns.contains(&"other:DbDataType::Other(\"inet\")"), "{columns:?}");
    let row: Vec<&str> = v["rows"][0].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
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
        "DbValue::Date((2024, 1, 2))",
        "DbValue::Time((3, 4, 5, 0))",
        "DbValue::DbNull",
    ];
    assert_eq!(&row[..expected.len()], &expected[..], "{v}");
    assert!(row[expected.len()].starts_with("DbValue::Unsupported("), "{v}");
    assert_eq!(v["table"], serde_json::json!([[1, "one"], [2, null]]), "{v}");
    let tz = v["timestamptz"].as_str().unwrap();
    assert!(tz.contains("QueryFailed") && tz.contains("timestamptz"), "{tz}");
    assert_eq!(v["empty_columns"], 0, "{v}");
    // A query without rows ends cleanly (its row stream is not read past its end).
    assert_eq!(v["empty_rows"], "Ok(0)", "{v}");
    let bad = v["bad_query"].as_str().unwrap();
    assert!(bad.contains("QueryFailed") && bad.contains("code: \"42P01\""), "{bad}");
    assert!(
        v["denied"]
            .as_str()
            .unwrap()
            .contains("ConnectionFailed(\"address postgres://10.255.255.1:5432 is not permitted\")"),
        "{v}"
    );
}
