//! `wdm-bench`: the WDM stress workload against a running app (a benchmark, not a test).
//!
//! ```text
//! cargo run --release -p bench -- [--url http://127.0.0.1:3000] [--concurrency 32,128]
//!                                 [--seconds 30] [--n 100000] [--skip-init] [--timeline]
//!                                 [checkout|find|all]
//! ```
//! Initialises `n` items (stock 1 000 000, price 1), users (credit 1 000 000) and orders (two
//! random items each, as the WDM template), then, for each concurrency, runs random checkouts
//! (or random finds) for the given time and prints throughput, success share and latencies.
//! Each run is preceded by a 3 s warm-up at the same concurrency (not counted), and each
//! checkout run starts from unpaid orders (the orders are initialised again after the warm-up),
//! so that repeated checkouts of already paid orders (cheap) stay rare; every run (warm-up
//! included) draws its own random sequence of orders, so a run never replays its warm-up's
//! orders. `--timeline` also prints the requests completed in each second of a run, and the
//! slowest one's latency (to see stalls).
//!
//! The load comes from one thread: each simulated client is a task with its own keep-alive
//! HTTP/1.1 connection, like `wrk`. The generator shares the machine's cores with the app, so it
//! must be cheap (a thread per client with a blocking client cost about 4× more CPU per request).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

struct Options {
    url: String,
    concurrency: Vec<usize>,
    seconds: u64,
    n: u64,
    init: bool,
    timeline: bool,
    workload: String,
}

fn options() -> Options {
    let mut o = Options {
        url: "http://127.0.0.1:3000".into(),
        concurrency: vec![32, 128],
        seconds: 30,
        n: 100_000,
        init: true,
        timeline: false,
        workload: "all".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--url" => o.url = value(),
            "--concurrency" => {
                o.concurrency =
                    value().split(',').map(|c| c.parse().unwrap_or_else(|_| usage("bad --concurrency"))).collect()
            }
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| usage("bad --seconds")),
            "--n" => o.n = value().parse().unwrap_or_else(|_| usage("bad --n")),
            "--skip-init" => o.init = false,
            "--timeline" => o.timeline = true,
            "checkout" | "find" | "all" => o.workload = arg,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    o
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "wdm-bench: {problem}\nusage: wdm-bench [--url URL] [--concurrency 32,128] [--seconds 30] [--n 100000] [--skip-init] [--timeline] [checkout|find|all]"
    );
    std::process::exit(2)
}

/// One keep-alive HTTP/1.1 connection to the app; it reconnects after an error.
struct Client {
    authority: String,
    sender: Option<http1::SendRequest<Empty<Bytes>>>,
}

impl Client {
    fn new(url: &str) -> Client {
        let authority = url.strip_prefix("http://").unwrap_or_else(|| usage("--url must start with http://"));
        Client { authority: authority.trim_end_matches('/').to_string(), sender: None }
    }

    async fn connect(&self) -> Result<http1::SendRequest<Empty<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends `method path` with an empty body; the status, once the whole body has arrived.
    async fn send(&mut self, method: hyper::Method, path: &str) -> Result<u16, String> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        response.into_body().collect().await.map_err(|e| e.to_string())?;
        self.sender = Some(sender);
        Ok(status)
    }
}

/// Runs `work` on a single-threaded runtime.
fn block_on<F: std::future::Future>(work: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&runtime, work)
}

fn init(o: &Options, orders_only: bool) {
    let n = o.n;
    let mut paths = vec![
        format!("/stock/batch_init/{n}/1000000/1"),
        format!("/payment/batch_init/{n}/1000000"),
        format!("/orders/batch_init/{n}/{n}/{n}/1"),
    ];
    if orders_only {
        paths.drain(..2);
    }
    block_on(async {
        let mut client = Client::new(&o.url);
        for path in paths {
            let started = Instant::now();
            let status = client.send(hyper::Method::POST, &path).await.unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!((200..300).contains(&status), "{path} answered {status}");
            println!("init {path}: {status} in {:.2} s", started.elapsed().as_secs_f64());
        }
    });
}

/// A tiny xorshift generator per thread (no dependency needed for "random order id").
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Sample {
    /// When it completed, in ms since the run started.
    done_ms: u64,
    micros: u64,
    ok: bool,
    failed: bool,
}

/// Runs the workload for `seconds` at `concurrency`, returning every request's sample.
fn run(o: &Options, workload: &str, concurrency: usize, seconds: u64) -> (Vec<Sample>, f64) {
    let (method, route) = match workload {
        "checkout" => (hyper::Method::POST, "/orders/checkout/"),
        _ => (hyper::Method::GET, "/stock/find/"),
    };
    block_on(async {
        let stop = Rc::new(Cell::new(false));
        let started = Instant::now();
        // A different sequence of orders in every run: a run must not repeat the orders its
        // warm-up (or an earlier run) already checked out, which are answered without any work.
        let salt =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let clients: Vec<_> = (0..concurrency)
            .map(|t| {
                let (stop, method, url, n) = (stop.clone(), method.clone(), o.url.clone(), o.n);
                tokio::task::spawn_local(async move {
                    let mut client = Client::new(&url);
                    let mut rng = Rng((0x9e37_79b9_7f4a_7c15 ^ salt ^ ((t as u64 + 1) * 0x2545_f491_4f6c_dd1d)) | 1);
                    let mut out = Vec::new();
                    while !stop.get() {
                        let path = format!("{route}{}", rng.below(n));
                        let t0 = Instant::now();
                        let result = client.send(method.clone(), &path).await;
                        let micros = t0.elapsed().as_micros() as u64;
                        let done_ms = started.elapsed().as_millis() as u64;
                        out.push(match result {
                            Ok(status) => {
                                Sample { done_ms, micros, ok: (200..300).contains(&status), failed: status >= 500 }
                            }
                            Err(_) => Sample { done_ms, micros, ok: false, failed: true },
                        });
                        if result.is_err() {
                            tokio::time::sleep(Duration::from_millis(10)).await; // do not spin on a dead server
                        }
                    }
                    out
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.set(true);
        let mut samples = Vec::new();
        for client in clients {
            samples.extend(client.await.expect("client task"));
        }
        (samples, started.elapsed().as_secs_f64())
    })
}

fn measure(o: &Options, workload: &str, concurrency: usize) {
    run(o, workload, concurrency, 3);
    if workload == "checkout" && o.init {
        init(o, true);
    }
    let (samples, elapsed) = run(o, workload, concurrency, o.seconds);
    let mut micros: Vec<u64> = samples.iter().map(|s| s.micros).collect();
    micros.sort_unstable();
    let pct = |p: f64| {
        micros.get(((micros.len() as f64 * p) as usize).min(micros.len().saturating_sub(1))).copied().unwrap_or(0)
            as f64
            / 1000.0
    };
    let ok = samples.iter().filter(|s| s.ok).count();
    let failed = samples.iter().filter(|s| s.failed).count();
    println!(
        "{workload:>8} c={concurrency:<4} {:>8.0} req/s  success {:>5.1}%  5xx/errors {failed:<5} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>7.1} ms  ({} requests in {elapsed:.1} s)",
        samples.len() as f64 / elapsed,
        100.0 * ok as f64 / samples.len().max(1) as f64,
        pct(0.50),
        pct(0.99),
        micros.last().copied().unwrap_or(0) as f64 / 1000.0,
        samples.len(),
    );
    if o.timeline {
        let mut seconds = vec![(0usize, 0u64); elapsed.ceil() as usize + 1];
        for s in &samples {
            let slot = &mut seconds[(s.done_ms / 1000) as usize];
            slot.0 += 1;
            slot.1 = slot.1.max(s.micros);
        }
        for (second, (count, slowest)) in seconds.iter().enumerate().filter(|(_, (c, _))| *c > 0) {
            println!("    second {second:>3}: {count:>6} requests, slowest {:>7.1} ms", *slowest as f64 / 1000.0);
        }
    }
}

fn main() {
    let o = options();
    if o.init {
        init(&o, false);
    }
    let workloads: &[&str] = match o.workload.as_str() {
        "checkout" => &["checkout"],
        "find" => &["find"],
        _ => &["checkout", "find"],
    };
    for w in workloads {
        for &c in &o.concurrency {
            measure(&o, w, c);
        }
    }
}
