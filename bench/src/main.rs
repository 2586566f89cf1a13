//! `wdm-bench`: the WDM stress workload against a running app (a benchmark, not a test).
//!
//! ```text
//! cargo run --release -p bench -- [--url http://127.0.0.1:3000] [--concurrency 32,128]
//!                                 [--seconds 30] [--n 100000] [--skip-init] [checkout|find|all]
//! ```
//! Initialises `n` items (stock 1 000 000, price 1), users (credit 1 000 000) and orders (two
//! random items each, as the WDM template), then, for each concurrency, runs random checkouts
//! (or random finds) for the given time and prints throughput, success share and latencies.
//! Each run is preceded by a 3 s warm-up at the same concurrency (not counted), and each
//! checkout run starts from unpaid orders (the orders are initialised again after the warm-up),
//! so that repeated checkouts of already paid orders (cheap) stay rare.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Options {
    url: String,
    concurrency: Vec<usize>,
    seconds: u64,
    n: u64,
    init: bool,
    workload: String,
}

fn options() -> Options {
    let mut o = Options {
        url: "http://127.0.0.1:3000".into(),
        concurrency: vec![32, 128],
        seconds: 30,
        n: 100_000,
        init: true,
        workload: "all".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--url" => o.url = value(),
            "--concurrency" => {
                o.concurrency = value().split(',').map(|c| c.parse().unwrap_or_else(|_| usage("bad --concurrency"))).collect()
            }
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| usage("bad --seconds")),
            "--n" => o.n = value().parse().unwrap_or_else(|_| usage("bad --n")),
            "--skip-init" => o.init = false,
            "checkout" | "find" | "all" => o.workload = arg,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    o
}

fn usage(problem: &str) -> ! {
    eprintln!("wdm-bench: {problem}\nusage: wdm-bench [--url URL] [--concurrency 32,128] [--seconds 30] [--n 100000] [--skip-init] [checkout|find|all]");
    std::process::exit(2)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str) -> Result<u16, ureq::Error> {
    let mut r = agent.post(url).send_empty()?;
    let _ = r.body_mut().read_to_string();
    Ok(r.status().as_u16())
}

fn init(o: &Options, orders_only: bool) {
    let a = agent();
    let n = o.n;
    let mut paths = vec![
        format!("/stock/batch_init/{n}/1000000/1"),
        format!("/payment/batch_init/{n}/1000000"),
        format!("/orders/batch_init/{n}/{n}/{n}/1"),
    ];
    if orders_only {
        paths.drain(..2);
    }
    for path in paths {
        let started = Instant::now();
        let status = post(&a, &format!("{}{path}", o.url)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!((200..300).contains(&status), "{path} answered {status}");
        println!("init {path}: {status} in {:.2} s", started.elapsed().as_secs_f64());
    }
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
    micros: u64,
    ok: bool,
    failed: bool,
}

/// Runs the workload for `seconds` at `concurrency`, returning every request's sample.
fn run(o: &Options, workload: &str, concurrency: usize, seconds: u64) -> (Vec<Sample>, f64) {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let samples: Vec<Sample> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..concurrency)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let a = agent();
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 0x2545_f491_4f6c_dd1d));
                    let mut out = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let id = rng.below(o.n);
                        let t0 = Instant::now();
                        let result = if workload == "checkout" {
                            post(&a, &format!("{}/orders/checkout/{id}", o.url))
                        } else {
                            a.get(&format!("{}/stock/find/{id}", o.url)).call().map(|mut r| {
                                let _ = r.body_mut().read_to_string();
                                r.status().as_u16()
                            })
                        };
                        let micros = t0.elapsed().as_micros() as u64;
                        out.push(match result {
                            Ok(status) => Sample { micros, ok: (200..300).contains(&status), failed: status >= 500 },
                            Err(_) => Sample { micros, ok: false, failed: true },
                        });
                    }
                    out
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    (samples, started.elapsed().as_secs_f64())
}

fn measure(o: &Options, workload: &str, concurrency: usize) {
    run(o, workload, concurrency, 3);
    if workload == "checkout" && o.init {
        init(o, true);
    }
    let (samples, elapsed) = run(o, workload, concurrency, o.seconds);
    let mut micros: Vec<u64> = samples.iter().map(|s| s.micros).collect();
    micros.sort_unstable();
    let pct = |p: f64| micros.get(((micros.len() as f64 * p) as usize).min(micros.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0;
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
