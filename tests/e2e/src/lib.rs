//! The harness of the black-box tests: starts the app as users do and calls it over HTTP.
//!
//! The app is served by `spin up` when a `spin` binary is on PATH (the reference), otherwise by
//! our test host (`target/release/spin-test-host`); `E2E_RUNNER=spin|host` forces one. The data
//! stores must be running and the Wasm built: `./dev test` does both. Store addresses reach the
//! app through the `SPIN_VARIABLE_*` environment, as with Spin.
//!
//! Each test binary starts its own app on a free port; the app dies with the test process.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

/// A running app and an HTTP client for it.
pub struct App {
    pub base: String,
    agent: ureq::Agent,
    log: PathBuf,
    launch: Launch,
    pid: Mutex<u32>,
}

/// How the app was started, to start it again.
#[derive(Clone)]
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    runner: &'static str,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_length: Option<usize>,
    pub body: String,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

fn use_spin() -> bool {
    match std::env::var("E2E_RUNNER").as_deref() {
        Ok("spin") => true,
        Ok("host") => false,
        _ => Command::new("spin").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl App {
    /// Starts the app with Spin's default instance reuse.
    pub fn start() -> App {
        App::start_with(&[])
    }

    /// Starts the app with extra `spin up` flags (e.g. `--max-instance-reuse-count 1`).
    pub fn start_with(extra_args: &[&str]) -> App {
        let root = repo_root();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let (program, runner) = if use_spin() {
            (PathBuf::from("spin"), "spin")
        } else {
            let host = root.join("target/release/spin-test-host");
            assert!(host.exists(), "{} is missing: build it with `cargo build --release -p spin-test-host` (or run ./dev test)", host.display());
            (host, "host")
        };
        let wasm = root.join("target/wasm32-wasip2/release/stock_find.wasm");
        assert!(wasm.exists(), "the Wasm components are not built: run ./dev build");
        let log_dir = root.join("target/e2e-logs");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let log = log_dir.join(format!("app-{port}.log"));
        let mut args: Vec<String> = ["up", "--from", "spin.toml", "--runtime-config-file", "runtime-config.toml", "--listen", &listen]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let launch = Launch { program, args, dir: root, runner };
        let pid = spawn_tied_to_this_process(&launch, &log);

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let app = App { base: format!("http://{listen}"), agent, log, launch, pid: Mutex::new(pid) };
        app.wait_until_ready(runner);
        app
    }

    /// Kills the app with SIGKILL (no chance to clean up), as a crash would.
    pub fn kill(&self) {
        let pid = *self.pid.lock().expect("pid");
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Starts the app again on the same address (after [`App::kill`]).
    pub fn restart(&self) {
        let pid = spawn_tied_to_this_process(&self.launch, &self.log);
        *self.pid.lock().expect("pid") = pid;
        self.wait_until_ready(self.launch.runner);
    }

    fn wait_until_ready(&self, runner: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = self.try_request("GET", "/stock/find/readiness-probe") {
                if r.status == 404 || r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the app ({runner}) did not answer within 60 s; its log:\n{}", self.log_text());
    }

    /// The app's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a request; `Err` when no response came (connection refused, reset...).
    pub fn try_request(&self, method: &str, path: &str) -> Result<Reply, ureq::Error> {
        let url = format!("{}{}", self.base, path);
        let mut resp = match method {
            "GET" => self.agent.get(&url).call()?,
            "POST" => self.agent.post(&url).send_empty()?,
            "PUT" => self.agent.put(&url).send_empty()?,
            "DELETE" => self.agent.delete(&url).call()?,
            other => panic!("unsupported method {other}"),
        };
        let status = resp.status().as_u16();
        let content_length = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut body = String::new();
        resp.body_mut().as_reader().read_to_string(&mut body).map_err(ureq::Error::Io)?;
        Ok(Reply { status, content_length, body })
    }

    /// Sends a request without a body; panics (with the app's log) if no response comes.
    pub fn request(&self, method: &str, path: &str) -> Reply {
        self.try_request(method, path)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}\napp log:\n{}", self.log_text()))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> Reply {
        self.request("POST", path)
    }
}

/// Spawns the app from a thread that lives as long as the process, with the kernel told to kill
/// the app when that thread (hence the test process) ends: no server outlives its tests.
fn spawn_tied_to_this_process(launch: &Launch, log: &Path) -> u32 {
    let (tx, rx) = mpsc::channel::<std::io::Result<u32>>();
    let Launch { program, args, dir, .. } = launch.clone();
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let spawned = (|| -> std::io::Result<Child> {
            let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
            let err = out.try_clone()?;
            let mut cmd = Command::new(&program);
            cmd.args(&args).current_dir(&dir).stdin(Stdio::null()).stdout(out).stderr(err);
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            cmd.spawn()
        })();
        match spawned {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                let _ = child.wait();
                // Keep this thread (the app's parent) alive until the process exits.
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv().expect("spawner thread").unwrap_or_else(|e| panic!("cannot start the app: {e}"))
}

/// Runs `infra/stores <args>` (e.g. `restart-redis`), panicking if it fails.
pub fn stores(args: &[&str]) {
    let status = Command::new(repo_root().join("infra/stores")).args(args).status().expect("infra/stores runs");
    assert!(status.success(), "infra/stores {args:?} failed");
}

/// Runs one SQL statement as the stores' superuser (`infra/stores psql -Atc`) and returns its
/// rows, one line each, columns separated by `|`; panics if it fails. For the services' batch
/// functions, which only other services reach (through private endpoints).
pub fn sql(statement: &str) -> Vec<String> {
    let out = Command::new(repo_root().join("infra/stores"))
        .args(["psql", "-v", "ON_ERROR_STOP=1", "-Atc", statement])
        .output()
        .expect("infra/stores runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{statement}\nfailed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(str::to_string).collect()
}

impl App {
    /// Sends a POST with an `Idempotency-Key` header.
    pub fn post_with_key(&self, path: &str, key: &str) -> Reply {
        let url = format!("{}{}", self.base, path);
        let result = self.agent.post(&url).header("Idempotency-Key", key).send_empty().and_then(|mut resp| {
            let status = resp.status().as_u16();
            let content_length =
                resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
            let body = resp.body_mut().read_to_string()?;
            Ok(Reply { status, content_length, body })
        });
        result.unwrap_or_else(|e| panic!("POST {path} failed: {e}\napp log:\n{}", self.log_text()))
    }
}

pub mod market;
