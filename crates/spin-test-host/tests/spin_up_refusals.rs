//! What `spin up` refuses, the host refuses with the same words: selective
//! deployment (`-c/--component-id`), HTTP options for an application without
//! an HTTP trigger, and a Redis-triggered component that needs service
//! chaining. Uses the built `fixtures/probe` and `fixtures/probe-redis`
//! components (`cargo build --release --target wasm32-wasip2 -p
//! spin-test-host-probe -p spin-test-host-probe-redis`); no store is needed,
//! as every refusal comes before a connection is made.
// Test code: an unwrap that fails is a failing test, with the value in its message.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

mod common;
use common::{HostProcess, built_wasm, free_port, write_manifest};

fn probe() -> String {
    built_wasm("spin_test_host_probe.wasm", "spin-test-host-probe").display().to_string()
}

fn probe_redis() -> String {
    built_wasm("spin_test_host_probe_redis.wasm", "spin-test-host-probe-redis").display().to_string()
}

/// Three HTTP components made of the probe (`front` chains to `back`;
/// `lonely` has no trigger) and a Redis-triggered `listener`, whose
/// `allowed_outbound_hosts` is `listener_hosts`.
fn app(listener_hosts: &str) -> String {
    let probe = probe();
    let probe_redis = probe_redis();
    format!(
        r#"spin_manifest_version = 2

[application]
name = "refusals"
[application.trigger.redis]
address = "redis://127.0.0.1:1"

[variables]
redis_url = {{ default = "redis://127.0.0.1:1" }}
list = {{ default = "l" }}
back_name = {{ default = "back" }}

[[trigger.http]]
route = "/front/..."
component = "front"

[[trigger.http]]
route = "/back/..."
component = "back"

[[trigger.redis]]
channel = "events"
component = "listener"

[component.front]
source = {probe:?}
allowed_outbound_hosts = ["http://back.spin.internal", "http://{{{{ back_name }}}}.spin.internal"]

[component.back]
source = {probe:?}

[component.lonely]
source = {probe:?}

[component.listener]
source = {probe_redis:?}
allowed_outbound_hosts = {listener_hosts}
variables = {{ redis_url = "{{{{ redis_url }}}}", list = "{{{{ list }}}}" }}
"#
    )
}

/// Runs the host to its end (these all fail at startup).
fn run(manifest_text: &str, args: &[&str]) -> Output {
    let path = write_manifest(manifest_text);
    let out = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .args(["up", "--from"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "expected a failure with {args:?}");
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get(port: u16, path: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn component_id_keeps_only_the_named_components() {
    // `spin up -c front -c back`: the listener (and its trigger) is gone, so
    // nothing connects to Redis; `lonely` never had a trigger.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let path = write_manifest(&app("[]"));
    let mut host = HostProcess::spawn(&path, &["-c", "front", "--component-id", "back", "--listen", &listen], &[]);
    host.wait_for_stdout("is ready", Duration::from_secs(120));
    assert!(host.stdout.iter().any(|l| l.starts_with("  front: ")));
    assert!(host.stdout.iter().any(|l| l.starts_with("  back: ")));
    assert!(!host.stdout.iter().any(|l| l.contains("Active Channels")));
    assert_eq!(get(port, "/front/x"), 200);
    assert_eq!(get(port, "/back/x"), 200);
    drop(host);

    // Only `back`: `front`'s routes answer 404.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut host = HostProcess::spawn(&path, &["-c", "back", "--listen", &listen], &[]);
    host.wait_for_stdout("is ready", Duration::from_secs(120));
    assert!(!host.stdout.iter().any(|l| l.starts_with("  front: ")));
    assert_eq!(get(port, "/front/x"), 404);
    assert_eq!(get(port, "/back/x"), 200);
}

#[test]
fn component_id_refusals_have_spins_words() {
    let text = app("[]");
    let context = "Error: failed to resolve application with only components selected with --component";

    let out = run(&text, &["-c", "back", "-c", "nope"]);
    let err = stderr(&out);
    assert!(err.starts_with(context), "{err}");
    assert!(err.contains("Caused by:\n      Specified component \"nope\" not found in application"), "{err}");
    assert_eq!(out.status.code(), Some(1));

    // `front` chains to `back` (the templated entry is not looked at, as in Spin).
    let err = stderr(&run(&text, &["-c", "front"]));
    assert!(err.starts_with(context), "{err}");
    assert!(
        err.contains(
            "Selected component 'front' cannot use service chaining to unselected component: \
             allowed_outbound_hosts = [\"http://back.spin.internal\"]"
        ),
        "{err}"
    );

    let wildcard = text.replace("\"http://back.spin.internal\", ", "\"http://*.spin.internal\", ");
    let err = stderr(&run(&wildcard, &["-c", "front", "-c", "back"]));
    assert!(
        err.contains(
            "Selected component 'front' cannot use wildcard service chaining: \
             allowed_outbound_hosts = [\"http://*.spin.internal\"]"
        ),
        "{err}"
    );

    // A component without a trigger leaves nothing to run.
    let err = stderr(&run(&text, &["-c", "lonely"]));
    assert_eq!(err.trim_end(), "Error: No triggers in app");
}

#[test]
fn http_options_are_refused_without_an_http_trigger() {
    // `spin up -c listener --listen ...`: Spin hands `--listen` to the only
    // trigger, the Redis one, whose command line has no such option.
    let text = app("[]");
    for args in [
        &["-c", "listener", "--listen", "127.0.0.1:3999"][..],
        &["-c", "listener", "--max-instance-reuse-count", "4"][..],
    ] {
        let out = run(&text, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.starts_with(&format!("error: unexpected argument '{}' found", args[2])), "{err}");
    }
}

#[test]
fn a_redis_component_that_needs_service_chaining_is_refused() {
    let message = "Error: This application requires the following features that are not \
                   available in this version of the 'redis' trigger: local_service_chaining";
    let terminating = "A trigger exited unexpectedly. Terminating.";
    for hosts in [
        r#"["http://back.spin.internal"]"#,
        r#"["http://*.spin.internal"]"#,
        r#"["redis://127.0.0.1:1", "https://back.spin.internal:8443"]"#,
    ] {
        let text = app(hosts);
        // The whole application (HTTP and Redis triggers, as `spin up` runs two
        // trigger processes): the Redis one fails, `spin up` ends the other.
        let out = run(&text, &["--listen", &format!("127.0.0.1:{}", free_port())]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.lines().any(|l| l == message), "{hosts}: {err}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.lines().any(|l| l == terminating), "{stdout}");
    }

    // The listener alone (it may name itself; naming an unselected component is
    // refused earlier, by `-c`): the same error, one trigger type, no "Terminating".
    let out = run(&app(r#"["http://listener.spin.internal"]"#), &["-c", "listener"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.lines().any(|l| l == message), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(terminating));
    let err = stderr(&run(&app(r#"["http://back.spin.internal"]"#), &["-c", "listener"]));
    assert!(err.contains("cannot use service chaining to unselected component"), "{err}");
}
