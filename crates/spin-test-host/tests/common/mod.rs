//! Helpers shared by the integration tests: where the fixture components are built, URL bits,
//! a Redis server of a test's own, and a host process whose output is collected.
// Test code: an unwrap that fails is a failing test, with the value in its message.
#![allow(clippy::unwrap_used)]
// Each test file uses its own share of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built fixture `file` (e.g. `spin_test_host_probe.wasm`) of the cargo `package`; panics
/// with the command that builds it when it is missing.
pub fn built_wasm(file: &str, package: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { crate_dir().join("../..").join(p) } else { p })
        .unwrap_or_else(|| crate_dir().join("../../target"));
    let wasm = target.join("wasm32-wasip2/release").join(file);
    assert!(
        wasm.is_file(),
        "the {package} component is not built ({} is missing); build it with: \
         cargo build --release --target wasm32-wasip2 -p {package}",
        wasm.display()
    );
    wasm
}

/// `host[:port]` of a `scheme://[user@]host[:port][/path]` URL, with `default_port` added when
/// the URL has none.
pub fn authority(url: &str, default_port: Option<u16>) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let auth = rest.split(['/', '?']).next().unwrap_or(rest);
    match default_port {
        Some(port) if !auth.contains(':') => format!("{auth}:{port}"),
        _ => auth.to_owned(),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Writes `text` as `spin.toml` in a fresh temporary directory; returns its path.
pub fn write_manifest(text: &str) -> PathBuf {
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

/// One RESP command.
fn resp(args: &[&str]) -> String {
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    cmd
}

/// The password of `SPIN_TEST_HOST_REDIS` (`redis://:<password>@host:port`), if `addr` is
/// that server and the URL has one.
fn shared_redis_password(addr: &str) -> Option<String> {
    let url = std::env::var("SPIN_TEST_HOST_REDIS").ok()?;
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(&url);
    let (userinfo, _) = rest.rsplit_once('@')?;
    let password = userinfo.split_once(':').map(|(_, p)| p)?;
    (authority(&url, Some(6379)) == authority(addr, Some(6379)) && !password.is_empty()).then(|| password.to_owned())
}

/// Sends one RESP command to `addr` (`host:port`) and returns the raw reply; authenticates
/// first on the shared server when its URL has a password.
pub fn redis(addr: &str, args: &[&str]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    if let Some(password) = shared_redis_password(addr) {
        s.write_all(resp(&["AUTH", &password]).as_bytes()).unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
            reply.push(byte[0]);
        }
        assert!(reply.starts_with(b"+OK"), "AUTH failed: {}", String::from_utf8_lossy(&reply));
    }
    s.write_all(resp(args).as_bytes()).unwrap();
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

/// A `redis-server` of the test's own on a free loopback port (no persistence), killed when
/// dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// `None` (the caller skips) when `redis-server` is not installed.
    pub fn start() -> Option<RedisServer> {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer { child, port };
        let start = Instant::now();
        while !server.answers() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// Whether the server answers a PING, on one connection and without panicking: before the
    /// server listens, a connection to its port (in the ephemeral range) can be the client's
    /// own self-connection, which succeeds once and then is refused.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(self.addr()) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        s.write_all(resp(&["PING"]).as_bytes()).is_ok() && s.read_exact(&mut reply).is_ok() && reply == *b"+PONG\r\n"
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `spin-test-host up`, its stdout and stderr collected line by line.
pub struct HostProcess {
    child: Child,
    lines: mpsc::Receiver<(bool, String)>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl HostProcess {
    /// Starts `spin-test-host up --from <manifest> <args>` with `env`.
    pub fn spawn(manifest: &Path, args: &[&str], env: &[(&str, &str)]) -> HostProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
            .args(["up", "--from"])
            .arg(manifest)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spin-test-host");
        let (tx, lines) = mpsc::channel();
        for (is_stdout, stream) in [
            (true, Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>),
            (false, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send((is_stdout, line)).is_err() {
                        break;
                    }
                }
            });
        }
        HostProcess { child, lines, stdout: Vec::new(), stderr: Vec::new() }
    }

    /// Collects output until a stdout line contains `needle`; panics after `timeout`.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stdout.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(_) => panic!(
                    "no {needle:?} on stdout within {timeout:?}; stdout: {:#?}; stderr: {:#?}",
                    self.stdout, self.stderr
                ),
            }
        }
    }

    /// Waits for the process to exit (at most `timeout`), then collects the rest of its output.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            while let Ok(line) = self.lines.try_recv() {
                self.push(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.is_some() {
            // The readers end at EOF, once the process is gone.
            while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                self.push(line);
            }
        }
        status
    }

    fn push(&mut self, (is_stdout, line): (bool, String)) {
        if is_stdout {
            self.stdout.push(line);
        } else {
            self.stderr.push(line);
        }
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
