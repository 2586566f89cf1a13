//! `wdm-bench`: the WDM stress workload, and the marketplace's own, against a running app (a
//! benchmark, not a test).
//!
//! ```text
//! cargo run --release -p bench -- [--url http://127.0.0.1:3000] [--concurrency 32,128]
//!                                 [--seconds 30] [--n 100000] [--own-orders 20000] [--skip-init]
//!                                 [--timeline] [WORKLOAD]
//! ```
//! Workloads:
//! * `checkout`, `find` (and `all`, both): the WDM template. Initialises `n` items (stock
//!   1 000 000, price 1), users (credit 1 000 000) and orders (two random items each) with the
//!   admin routes, then runs random checkouts (or random finds). Needs `auth_required` off (as
//!   `./dev up` serves it) or an app whose admin routes are open.
//! * `login`: logins of 64 registered users (argon2id verification and a signed token each).
//! * `find-user`: `GET /payment/find_user/{id}` by 64 users, each with its own token: run it
//!   against an app with `auth_required` on and off to see what checking a token costs.
//! * `items-list`: inventory list pages (all items, one category, a text search; 20 per page)
//!   over 2 000 listed items; `item-page`: random items' pages.
//! * `checkout-own`: checkouts of orders that users made for themselves through the API (64
//!   users, `--own-orders` orders of two items each), each sent with its owner's token: run it
//!   with `auth_required` on and off to compare.
//! * `rental`: rentals (`POST /rentals`, one day) by as many borrowers as the largest
//!   concurrency (each client rents as its own borrower, funded with 1 000 000 000) of random
//!   items among 1 000 that 4 other users list (daily price 1, stock 10 000 000 each): a whole
//!   rental saga per request. Only a 201 counts as a success; any other answer is an error.
//!
//! For each concurrency a workload runs for the given time after a 3 s warm-up at the same
//! concurrency (not counted) and prints throughput, success share and latencies. A `checkout`
//! run starts from unpaid orders (initialised again after the warm-up); every run draws its own
//! random sequence. `--timeline` also prints the requests completed in each second of a run,
//! and the slowest one's latency (to see stalls).
//!
//! The load comes from one thread: each simulated client is a task with its own keep-alive
//! HTTP/1.1 connection, like `wrk`. The generator shares the machine's cores with the app, so it
//! must be cheap (a thread per client with a blocking client cost about 4× more CPU per request).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

const WORKLOADS: &[&str] =
    &["checkout", "find", "all", "login", "find-user", "items-list", "item-page", "checkout-own", "rental"];

struct Options {
    url: String,
    concurrency: Vec<usize>,
    seconds: u64,
    n: u64,
    own_orders: usize,
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
        own_orders: 20_000,
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
            "--own-orders" => o.own_orders = value().parse().unwrap_or_else(|_| usage("bad --own-orders")),
            "--skip-init" => o.init = false,
            "--timeline" => o.timeline = true,
            w if WORKLOADS.contains(&w) => o.workload = arg,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    o
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "wdm-bench: {problem}\nusage: wdm-bench [--url URL] [--concurrency 32,128] [--seconds 30] [--n 100000] [--own-orders 20000] [--skip-init] [--timeline] [{}]",
        WORKLOADS.join("|")
    );
    std::process::exit(2)
}

/// One request of a workload.
struct Call {
    method: hyper::Method,
    path: String,
    /// `Authorization: Bearer <token>`.
    token: Option<Rc<str>>,
    /// A JSON body (empty: none).
    body: Bytes,
    /// The only status that counts as a success (`None`: any 2xx); with one, any other answer
    /// counts as an error.
    expect: Option<u16>,
}

impl Call {
    fn new(method: hyper::Method, path: String) -> Call {
        Call { method, path, token: None, body: Bytes::new(), expect: None }
    }

    fn with_token(mut self, token: &Rc<str>) -> Call {
        self.token = Some(token.clone());
        self
    }

    fn with_json(mut self, json: String) -> Call {
        self.body = Bytes::from(json);
        self
    }

    fn expecting(mut self, status: u16) -> Call {
        self.expect = Some(status);
        self
    }
}

/// One keep-alive HTTP/1.1 connection to the app; it reconnects after an error.
struct Client {
    authority: String,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Client {
    fn new(url: &str) -> Client {
        let authority = url.strip_prefix("http://").unwrap_or_else(|| usage("--url must start with http://"));
        Client { authority: authority.trim_end_matches('/').to_string(), sender: None }
    }

    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends `call`; the status and the whole body.
    async fn send(&mut self, call: &Call) -> Result<(u16, Bytes), String> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let mut request = hyper::Request::builder()
            .method(call.method.clone())
            .uri(&call.path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_LENGTH, call.body.len());
        if !call.body.is_empty() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &call.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(call.body.clone())).map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        self.sender = Some(sender);
        Ok((status, body))
    }

    /// Sends `call` for setting up a workload: panics unless it succeeds; the answer's JSON.
    async fn must(&mut self, call: &Call) -> serde_json::Value {
        let (status, body) = self.send(call).await.unwrap_or_else(|e| panic!("{}: {e}", call.path));
        assert!((200..300).contains(&status), "{} answered {status}: {}", call.path, String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
    }
}

/// Runs `work` on a single-threaded runtime.
fn block_on<F: std::future::Future>(work: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&runtime, work)
}

/// Runs `f(i)` for `0..count` on `parallel` connections; the results in order.
async fn setup<T: 'static>(
    url: &str,
    count: usize,
    parallel: usize,
    f: impl Fn(usize) -> Call + 'static,
    read: impl Fn(usize, serde_json::Value) -> T + 'static,
) -> Vec<T> {
    let next = Rc::new(Cell::new(0usize));
    let (f, read) = (Rc::new(f), Rc::new(read));
    let tasks: Vec<_> = (0..parallel.min(count.max(1)))
        .map(|_| {
            let (next, f, read, url) = (next.clone(), f.clone(), read.clone(), url.to_string());
            tokio::task::spawn_local(async move {
                let mut client = Client::new(&url);
                let mut out = Vec::new();
                loop {
                    let i = next.get();
                    if i >= count {
                        return out;
                    }
                    next.set(i + 1);
                    let answer = client.must(&f(i)).await;
                    out.push((i, read(i, answer)));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("setup task"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
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
            client.must(&Call::new(hyper::Method::POST, path.clone())).await;
            println!("init {path}: done in {:.2} s", started.elapsed().as_secs_f64());
        }
    });
}

/// A user the benchmark registered and logged in.
#[derive(Clone)]
struct Account {
    user_id: String,
    username: String,
    token: Rc<str>,
}

const PASSWORD: &str = "wdm-bench password";

/// Registers and logs in `count` new users.
async fn accounts(url: &str, count: usize) -> Vec<Account> {
    let salt = salt() % 1_000_000_007;
    let started = Instant::now();
    let names: Vec<String> = (0..count).map(|i| format!("bench_{salt:x}_{i}")).collect();
    let credentials = |name: &str| serde_json::json!({ "username": name, "password": PASSWORD }).to_string();
    let registering = names.clone();
    let ids = setup(
        url,
        count,
        8,
        move |i| Call::new(hyper::Method::POST, "/accounts/register".into()).with_json(credentials(&registering[i])),
        |_, v| v["user_id"].as_str().expect("user_id").to_string(),
    )
    .await;
    let logging_in = names.clone();
    let tokens = setup(
        url,
        count,
        8,
        move |i| {
            let body = serde_json::json!({ "username": logging_in[i], "password": PASSWORD }).to_string();
            Call::new(hyper::Method::POST, "/accounts/login".into()).with_json(body)
        },
        |_, v| Rc::<str>::from(v["token"].as_str().expect("token")),
    )
    .await;
    println!("setup: {count} users registered and logged in in {:.1} s", started.elapsed().as_secs_f64());
    names
        .into_iter()
        .zip(ids)
        .zip(tokens)
        .map(|((username, user_id), token)| Account { user_id, username, token })
        .collect()
}

/// Lists `count` items owned by `owner` (categories `cat0`..`cat9`, titles from a small
/// vocabulary, daily prices 1 to 20 unless `daily_price` says); their ids.
async fn listed_items(
    url: &str,
    owner: &Account,
    count: usize,
    price: i64,
    stock: i64,
    daily_price: Option<i64>,
) -> Vec<String> {
    let started = Instant::now();
    let token = owner.token.clone();
    let items = setup(
        url,
        count,
        16,
        move |i| {
            let body = serde_json::json!({
                "title": format!("{} {} {i}", WORDS[i % WORDS.len()], WORDS[(i / 7) % WORDS.len()]),
                "description": format!("A {} for rent, in good shape.", WORDS[(i / 3) % WORDS.len()]),
                "category": format!("cat{}", i % 10),
                "daily_price": daily_price.unwrap_or(1 + (i % 20) as i64),
                "price": price,
                "stock": stock,
            });
            Call::new(hyper::Method::POST, "/stock/items".into()).with_token(&token).with_json(body.to_string())
        },
        |_, v| v["item_id"].as_str().expect("item_id").to_string(),
    )
    .await;
    println!("setup: {count} items listed in {:.1} s", started.elapsed().as_secs_f64());
    items
}

/// The `rental` workload's owners, and the items they list between them.
const RENTAL_OWNERS: usize = 40;
const RENTAL_ITEMS: usize = 1_000;

const WORDS: &[&str] =
    &["drill", "ladder", "tent", "kayak", "projector", "bicycle", "saw", "camera", "grill", "speaker"];

/// Adds `amount` to each user's credit (with the user's token).
async fn fund(url: &str, users: &[Account], amount: i64) {
    let funding = users.to_vec();
    setup(
        url,
        users.len(),
        8,
        move |i| {
            let u = &funding[i];
            Call::new(hyper::Method::POST, format!("/payment/add_funds/{}/{amount}", u.user_id)).with_token(&u.token)
        },
        |_, _| (),
    )
    .await;
}

/// Orders the users make for themselves (two items each), and fund; each order with its owner.
async fn own_orders(url: &str, users: &[Account], items: &[String], count: usize) -> Vec<(String, Rc<str>)> {
    let started = Instant::now();
    fund(url, users, 1_000_000_000).await;
    let ordering = users.to_vec();
    let orders = setup(
        url,
        count,
        16,
        move |i| {
            let u = &ordering[i % ordering.len()];
            Call::new(hyper::Method::POST, format!("/orders/create/{}", u.user_id)).with_token(&u.token)
        },
        |_, v| v["order_id"].as_str().expect("order_id").to_string(),
    )
    .await;
    let lines: Vec<(String, String, Rc<str>)> = orders
        .iter()
        .enumerate()
        .flat_map(|(i, order)| {
            let token = users[i % users.len()].token.clone();
            let mut rng = Rng(((i as u64 + 1) * 0x2545_f491_4f6c_dd1d) | 1);
            (0..2).map(move |_| (order.clone(), items[rng.below(items.len() as u64) as usize].clone(), token.clone()))
        })
        .collect();
    let adding = Rc::new(lines);
    let count_lines = adding.len();
    setup(
        url,
        count_lines,
        16,
        move |i| {
            let (order, item, token) = &adding[i];
            Call::new(hyper::Method::POST, format!("/orders/addItem/{order}/{item}/1")).with_token(token)
        },
        |_, _| (),
    )
    .await;
    println!("setup: {count} orders made and filled in {:.1} s", started.elapsed().as_secs_f64());
    orders.into_iter().enumerate().map(|(i, o)| (o, users[i % users.len()].token.clone())).collect()
}

/// A tiny xorshift generator per client (no dependency needed for "random order id").
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn salt() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// What a workload sends: a request drawn with the client's generator, for the client of this
/// index (`0..concurrency`).
type Draw = Rc<dyn Fn(&mut Rng, usize) -> Call>;

/// The requests of `workload`, after preparing what it needs.
fn prepare(o: &Options, workload: &str) -> Draw {
    match workload {
        "checkout" | "find" => {
            let (method, route, n) = match workload {
                "checkout" => (hyper::Method::POST, "/orders/checkout/", o.n),
                _ => (hyper::Method::GET, "/stock/find/", o.n),
            };
            Rc::new(move |rng, _| Call::new(method.clone(), format!("{route}{}", rng.below(n))))
        }
        "login" => {
            let users = block_on(accounts(&o.url, 64));
            Rc::new(move |rng, _| {
                let u = &users[rng.below(users.len() as u64) as usize];
                let body = serde_json::json!({ "username": u.username, "password": PASSWORD }).to_string();
                Call::new(hyper::Method::POST, "/accounts/login".into()).with_json(body)
            })
        }
        "find-user" => {
            let users = block_on(accounts(&o.url, 64));
            Rc::new(move |rng, _| {
                let u = &users[rng.below(users.len() as u64) as usize];
                Call::new(hyper::Method::GET, format!("/payment/find_user/{}", u.user_id)).with_token(&u.token)
            })
        }
        "items-list" | "item-page" => {
            let items = block_on(async {
                let owner = accounts(&o.url, 1).await.remove(0);
                listed_items(&o.url, &owner, 2_000, 10, 5, None).await
            });
            if workload == "item-page" {
                return Rc::new(move |rng, _| {
                    Call::new(
                        hyper::Method::GET,
                        format!("/stock/items/{}", items[rng.below(items.len() as u64) as usize]),
                    )
                });
            }
            Rc::new(|rng, _| {
                let path = match rng.below(3) {
                    0 => "/stock/items?limit=20".to_string(),
                    1 => format!("/stock/items?category=cat{}&limit=20", rng.below(10)),
                    _ => format!("/stock/items?q={}&limit=20", WORDS[rng.below(WORDS.len() as u64) as usize]),
                };
                Call::new(hyper::Method::GET, path)
            })
        }
        "rental" => {
            let borrowers = o.concurrency.iter().copied().max().unwrap_or(1).max(1);
            let (items, borrowers) = block_on(async {
                let users = accounts(&o.url, RENTAL_OWNERS + borrowers).await;
                let (owners, borrowers) = users.split_at(RENTAL_OWNERS);
                let started = Instant::now();
                let mut items = Vec::new();
                for owner in owners {
                    items.extend(
                        listed_items(&o.url, owner, RENTAL_ITEMS / RENTAL_OWNERS, 10, 10_000_000, Some(1)).await,
                    );
                }
                fund(&o.url, borrowers, 1_000_000_000).await;
                println!("setup: rental items listed and borrowers funded in {:.1} s", started.elapsed().as_secs_f64());
                (items, borrowers.to_vec())
            });
            // The borrowers own no item: every item is another user's.
            Rc::new(move |rng, client| {
                let borrower = &borrowers[client % borrowers.len()];
                let item = &items[rng.below(items.len() as u64) as usize];
                Call::new(hyper::Method::POST, "/rentals".into())
                    .with_token(&borrower.token)
                    .with_json(serde_json::json!({ "item_id": item, "days": 1 }).to_string())
                    .expecting(201)
            })
        }
        _ => {
            // checkout-own
            let orders = block_on(async {
                let users = accounts(&o.url, 65).await;
                let (seller, buyers) = users.split_first().expect("users");
                let items = listed_items(&o.url, seller, 1_000, 1, 1_000_000_000, None).await;
                own_orders(&o.url, buyers, &items, o.own_orders).await
            });
            Rc::new(move |rng, _| {
                let (order, token) = &orders[rng.below(orders.len() as u64) as usize];
                Call::new(hyper::Method::POST, format!("/orders/checkout/{order}")).with_token(token)
            })
        }
    }
}

struct Sample {
    /// When it completed, in ms since the run started.
    done_ms: u64,
    micros: u64,
    ok: bool,
    failed: bool,
}

/// Runs `draw`'s requests for `seconds` at `concurrency`, returning every request's sample.
fn run(o: &Options, draw: &Draw, concurrency: usize, seconds: u64) -> (Vec<Sample>, f64) {
    block_on(async {
        let stop = Rc::new(Cell::new(false));
        let started = Instant::now();
        // A different sequence in every run: a run must not repeat the orders its warm-up (or
        // an earlier run) already checked out, which are answered without any work.
        let salt = salt();
        let clients: Vec<_> = (0..concurrency)
            .map(|t| {
                let (stop, draw, url) = (stop.clone(), draw.clone(), o.url.clone());
                tokio::task::spawn_local(async move {
                    let mut client = Client::new(&url);
                    let mut rng = Rng((0x9e37_79b9_7f4a_7c15 ^ salt ^ ((t as u64 + 1) * 0x2545_f491_4f6c_dd1d)) | 1);
                    let mut out = Vec::new();
                    while !stop.get() {
                        let call = draw(&mut rng, t);
                        let t0 = Instant::now();
                        let result = client.send(&call).await;
                        let micros = t0.elapsed().as_micros() as u64;
                        let done_ms = started.elapsed().as_millis() as u64;
                        out.push(match &result {
                            Ok((status, _)) => match call.expect {
                                Some(expected) => {
                                    Sample { done_ms, micros, ok: *status == expected, failed: *status != expected }
                                }
                                None => {
                                    Sample { done_ms, micros, ok: (200..300).contains(status), failed: *status >= 500 }
                                }
                            },
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

fn measure(o: &Options, workload: &str, draw: &Draw, concurrency: usize) {
    run(o, draw, concurrency, 3);
    if workload == "checkout" && o.init {
        init(o, true);
    }
    let (samples, elapsed) = run(o, draw, concurrency, o.seconds);
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
        "{workload:>12} c={concurrency:<4} {:>8.0} req/s  success {:>5.1}%  5xx/errors {failed:<5} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>7.1} ms  ({} requests in {elapsed:.1} s)",
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
    let workloads: Vec<&str> = match o.workload.as_str() {
        "all" => vec!["checkout", "find"],
        w => vec![w],
    };
    if o.init && workloads.iter().any(|w| *w == "checkout" || *w == "find") {
        init(&o, false);
    }
    for w in workloads {
        let draw = prepare(&o, w);
        for &c in &o.concurrency {
            measure(&o, w, &draw, c);
        }
    }
}
