//! The harness of the black-box tests: starts the app as users do and calls it over HTTP.
//!
//! The app is served by `spin up` when a `spin` binary is on PATH (the reference), otherwise by
//! our test host (`target/release/spin-test-host`); `E2E_RUNNER=spin|host` forces one. The data
//! stores must be running and the Wasm built: `./dev test` does both. Store addresses reach the
//! app through the `SPIN_VARIABLE_*` environment, as with Spin.
//!
//! Each test binary starts its own app on a free port; the app dies with the test process.
// The only crate allowed unsafe code: the harness calls libc (setsid, kill of a session,
// atexit) to stop every process it started, even when a test panics.
#![allow(unsafe_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

/// A running app and an HTTP client for it: the HTTP components in one process
/// (`infra/serve-http`), the saga worker in another under its supervisor (`infra/saga-worker`),
/// as `./dev up` and a deployment run them.
pub struct App {
    pub base: String,
    agent: ureq::Agent,
    log: PathBuf,
    launch: Launch,
    pid: Mutex<u32>,
    /// The saga worker's supervisor, and its output (the worker's included).
    worker_log: PathBuf,
    worker_supervisor: Mutex<u32>,
    worker_launch: Launch,
    /// Where the saga worker's process serves its probe (`GET /health/worker`).
    pub worker_probe_base: String,
}

/// How the app was started, to start it again.
#[derive(Clone)]
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    /// Environment set for the app on top of the test's (e.g. `SPIN_VARIABLE_*` overrides).
    env: Vec<(String, String)>,
    dir: PathBuf,
    runner: &'static str,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_length: Option<usize>,
    pub body: String,
    /// The response headers (names in lower case), in order.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of the response header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Reads a `ureq` response whole.
fn read_reply(mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let status = resp.status().as_u16();
    let content_length =
        resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let mut body = String::new();
    resp.body_mut().as_reader().read_to_string(&mut body).map_err(ureq::Error::Io)?;
    Ok(Reply { status, content_length, body, headers })
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// Whether the app under test is served by the real Spin (`spin up`) rather than our test host.
pub fn use_spin() -> bool {
    match std::env::var("E2E_RUNNER").as_deref() {
        Ok("spin") => true,
        Ok("host") => false,
        _ => Command::new("spin").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok(),
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl App {
    /// Starts the app with Spin's default instance reuse, with tokens not required
    /// (`auth_required` off: the WDM benchmark's API, which most suites test). The suites of
    /// accounts and who may do what start it with [`App::start_with_env`] and
    /// `SPIN_VARIABLE_AUTH_REQUIRED=true`.
    pub fn start() -> App {
        App::start_with(&[])
    }

    /// Starts the app with extra `spin up` flags (e.g. `--max-instance-reuse-count 1`).
    pub fn start_with(extra_args: &[&str]) -> App {
        App::launch(extra_args, &[])
    }

    /// Starts the app with extra environment variables, such as `SPIN_VARIABLE_<NAME>` overrides
    /// of application variables (e.g. a store address that does not answer). Tokens are not
    /// required unless `env` says `SPIN_VARIABLE_AUTH_REQUIRED=true`.
    pub fn start_with_env(env: &[(&str, &str)]) -> App {
        App::launch(&[], env)
    }

    fn launch(extra_args: &[&str], env: &[(&str, &str)]) -> App {
        let root = repo_root();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let (runner_program, runner) = if use_spin() {
            (PathBuf::from("spin"), "spin")
        } else {
            let host = root.join("target/release/spin-test-host");
            assert!(
                host.exists(),
                "{} is missing: build it with `cargo build --release -p spin-test-host` (or run ./dev test)",
                host.display()
            );
            (host, "host")
        };
        let runner_program = runner_program.to_string_lossy().into_owned();
        let wasm = root.join("target/wasm32-wasip2/release/stock_find.wasm");
        assert!(wasm.exists(), "the Wasm components are not built: run ./dev build");
        let log_dir = root.join("target/e2e-logs");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let log = log_dir.join(format!("app-{port}.log"));
        let worker_log = log_dir.join(format!("app-{port}-worker.log"));
        let mut args: Vec<String> =
            ["--runner", &runner_program, "--listen", &listen].iter().map(|s| s.to_string()).collect();
        args.extend(extra_args.iter().map(|s| s.to_string()));
        // Tokens off unless the test asks for them (a later entry wins).
        let mut env: Vec<(String, String)> = std::iter::once(&("SPIN_VARIABLE_AUTH_REQUIRED", "false"))
            .chain(env)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let launch =
            Launch { program: root.join("infra/serve-http"), args, env: env.clone(), dir: root.clone(), runner };
        let pid = spawn_tied_to_this_process(&launch, &log);
        env.push(("SPIN_VARIABLE_APP_HTTP_HOST".into(), listen.clone()));
        let worker_probe = format!("127.0.0.1:{}", free_port());
        let worker = Launch {
            program: root.join("infra/saga-worker"),
            args: vec!["--runner".into(), runner_program, "--health-listen".into(), worker_probe.clone()],
            env,
            dir: root,
            runner,
        };
        let worker_supervisor = spawn_tied_to_this_process(&worker, &worker_log);

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let app = App {
            base: format!("http://{listen}"),
            agent,
            log,
            launch,
            pid: Mutex::new(pid),
            worker_log,
            worker_supervisor: Mutex::new(worker_supervisor),
            worker_launch: worker,
            worker_probe_base: format!("http://{worker_probe}"),
        };
        app.wait_until_ready(runner);
        app
    }

    /// The saga worker's supervisor's output so far (the worker's own output included).
    pub fn worker_log_text(&self) -> String {
        std::fs::read_to_string(&self.worker_log).unwrap_or_default()
    }

    /// Whether the process serving HTTP is still running (not ended, not a zombie).
    pub fn http_process_alive(&self) -> bool {
        process_alive(*self.pid.lock().expect("pid"))
    }

    /// Whether the saga worker's supervisor is still running.
    pub fn worker_supervisor_alive(&self) -> bool {
        process_alive(*self.worker_supervisor.lock().expect("pid"))
    }

    /// Kills the saga worker: its supervisor, its process and all they started (SIGKILL).
    pub fn stop_worker(&self) {
        kill_session(*self.worker_supervisor.lock().expect("pid"));
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Starts the saga worker again under a new supervisor (after [`App::stop_worker`]).
    pub fn start_worker(&self) {
        *self.worker_supervisor.lock().expect("pid") =
            spawn_tied_to_this_process(&self.worker_launch, &self.worker_log);
    }

    /// `GET path` from the saga worker's process (its probe, `/health/worker`); `Err` when no
    /// response came (the process is down or restarting).
    pub fn try_worker_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        read_reply(self.agent.get(&format!("{}{}", self.worker_probe_base, path)).call()?)
    }

    /// Kills the process serving HTTP with SIGKILL (no chance to clean up), as a crash would,
    /// and every process it started (Spin runs each trigger in a child process of `spin up`).
    pub fn kill(&self) {
        kill_session(*self.pid.lock().expect("pid"));
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
                // 503: the app answers, but (as a test may want) without a store.
                if r.status == 404 || r.status == 200 || r.status == 503 {
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
        let resp = match method {
            "GET" => self.agent.get(&url).call()?,
            "POST" => self.agent.post(&url).send_empty()?,
            "PUT" => self.agent.put(&url).send_empty()?,
            "DELETE" => self.agent.delete(&url).call()?,
            other => panic!("unsupported method {other}"),
        };
        read_reply(resp)
    }

    /// Sends `method path` with these request headers and body (a GET or DELETE sends no body); panics
    /// (with the app's log) if no response comes.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let url = format!("{}{}", self.base, path);
        let result = match method {
            "GET" => {
                let mut req = self.agent.get(&url);
                for (name, value) in headers {
                    req = req.header(*name, *value);
                }
                req.call()
            }
            "POST" | "PATCH" => {
                let mut req = if method == "POST" { self.agent.post(&url) } else { self.agent.patch(&url) };
                for (name, value) in headers {
                    req = req.header(*name, *value);
                }
                req.send(body)
            }
            "DELETE" => {
                let mut req = self.agent.delete(&url);
                for (name, value) in headers {
                    req = req.header(*name, *value);
                }
                req.call()
            }
            other => panic!("unsupported method {other}"),
        };
        result
            .and_then(read_reply)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}\napp log:\n{}", self.log_text()))
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

/// Whether `pid` is a running process (a zombie, ended but not yet reaped, is not).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// The sessions of the processes this test process started (each its own session, led by the
/// process it spawned), killed when the test process exits.
static SESSIONS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// SIGKILLs every process of the session `sid`: the process spawned and all it started, which
/// may have left its process group (Spin's trigger processes do) but not its session.
fn kill_session(sid: u32) {
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // After the command's ")": state, ppid, process group, session.
        let session = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(3)?.parse::<u32>().ok());
        if session == Some(sid) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

extern "C" fn kill_all_sessions() {
    if let Ok(sessions) = SESSIONS.lock() {
        for sid in sessions.iter() {
            kill_session(*sid);
        }
    }
}

/// Spawns the app from a thread that lives as long as the process, with the kernel told to kill
/// the app when that thread (hence the test process) ends, and the app's whole session killed
/// when the test process exits: no server outlives its tests.
fn spawn_tied_to_this_process(launch: &Launch, log: &Path) -> u32 {
    let (tx, rx) = mpsc::channel::<std::io::Result<u32>>();
    let Launch { program, args, env, dir, .. } = launch.clone();
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let spawned = (|| -> std::io::Result<Child> {
            let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
            let err = out.try_clone()?;
            let mut cmd = Command::new(&program);
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
            cmd.args(&args).current_dir(&dir).stdin(Stdio::null()).stdout(out).stderr(err);
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    if libc::setsid() < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
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
    let pid = rx.recv().expect("spawner thread").unwrap_or_else(|e| panic!("cannot start the app: {e}"));
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(kill_all_sessions);
    });
    SESSIONS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    pid
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

/// Runs `infra/stores redis-cli <args>` and returns its output lines; panics if it fails.
pub fn redis_cli(args: &[&str]) -> Vec<String> {
    let out =
        Command::new(repo_root().join("infra/stores")).arg("redis-cli").args(args).output().expect("infra/stores runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "redis-cli {args:?} failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(str::to_string).collect()
}

impl App {
    /// Sends a POST with an `Idempotency-Key` header.
    pub fn post_with_key(&self, path: &str, key: &str) -> Reply {
        self.send("POST", path, &[("Idempotency-Key", key)], b"")
    }
}

pub mod accounts;
pub mod market;
pub mod otlp;
pub mod own_stores;
pub mod raw_http;
