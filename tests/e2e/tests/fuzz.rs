//! Fuzz: a few thousand generated requests over every route of spin.toml (the list is read from
//! the manifest, so a new route is fuzzed too) — random methods, ids of every length and charset,
//! numbers at and past every boundary, odd headers, large and chunked bodies, percent-encodings,
//! duplicate slashes — sent as raw bytes, each on a fresh connection, by a few threads at once.
//!
//! It asserts: never a 5xx but a deliberate 503 with a JSON error body (and, kept apart, the
//! empty 500 Spin answers for a header value that is not UTF-8); never a hang (every request is
//! answered or closed within its deadline); stock and money conserved across the run on a known
//! population (stock + units held by reservations, credit + charges, per item and per user,
//! after the changes the fuzz itself made and the app confirmed); every paid order of the
//! population paid exactly once by its own saga; every saga finished; and afterwards a normal
//! checkout pays.
//!
//! `FUZZ_SEED` (decimal or 0x-hex) repeats a run's requests (their order of arrival differs:
//! several threads send them); `FUZZ_REQUESTS` sets how many (default 3000). A failure prints the
//! exact requests that failed.

use e2e::market::in_parallel;
use e2e::raw_http::{self, Outcome, escape};
use e2e::{App, Value, redis_cli, repo_root, sql};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_REQUESTS: usize = 3000;
/// How many requests are in flight at once.
const THREADS: usize = 4;
/// Longest wait for an answer; a checkout may wait 20 s for its saga before its 503.
const TIMEOUT: Duration = Duration::from_secs(10);
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the sagas may take to finish after the run.
const SAGA_LIMIT: Duration = Duration::from_secs(90);
/// Largest body an endpoint reads (`spin_kit::body::MAX_BODY_BYTES`).
const MAX_BODY: usize = 1 << 20;
/// Longest id (`market_core::params::MAX_ID_LEN`).
const MAX_ID: usize = market_core::params::MAX_ID_LEN;
/// Largest count a `batch_init` accepts (`MAX_BATCH_ITEMS`, `_USERS`, `_ORDERS`).
const MAX_BATCH: i64 = 1_000_000;
/// Largest valid count the fuzz sends a `batch_init` (a million rows is a load test, not a fuzz).
const FUZZ_BATCH: i64 = 100;

/// A line of the run's report on the process's stderr, past the test harness's capture, so
/// that a CI log shows it whether the test passes or fails.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

// ---- The deterministic generator.

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15).max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    match std::env::var("FUZZ_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("FUZZ_SEED={s:?} is not a number"))
        }
        Err(_) => {
            // splitmix64 of the time and the process id.
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
            let mut z = (nanos as u64 ^ ((std::process::id() as u64) << 32)).wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }
}

// ---- The routes, from spin.toml.

struct Route {
    pattern: String,
    /// The method its component serves (what it answers other methods with 405 for).
    method: String,
}

/// The public HTTP routes of spin.toml that the app's HTTP process serves (private ones are only
/// reachable by service chaining; the saga worker's probe is served by the worker's process).
fn manifest_routes() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).expect("spin.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("spin.toml parses");
    let listed = std::process::Command::new(repo_root().join("infra/app-components"))
        .arg("http")
        .output()
        .expect("infra/app-components runs");
    assert!(listed.status.success(), "infra/app-components http: {listed:?}");
    let served: Vec<String> = String::from_utf8_lossy(&listed.stdout).lines().map(str::to_string).collect();
    let triggers = manifest["trigger"]["http"].as_array().expect("HTTP triggers");
    triggers
        .iter()
        .filter(|t| t["component"].as_str().is_some_and(|c| served.iter().any(|s| s == c)))
        .filter_map(|t| t["route"].as_str().map(str::to_string))
        .collect()
}

/// `pattern` with every `:param` segment as `value(name)` and a trailing `/...` as `tail`.
fn fill(pattern: &str, mut value: impl FnMut(&str) -> Vec<u8>, tail: &[u8]) -> Vec<u8> {
    let mut path = Vec::new();
    for segment in pattern.trim_start_matches('/').split('/') {
        if segment == "..." {
            path.extend_from_slice(tail);
            continue;
        }
        path.push(b'/');
        match segment.strip_prefix(':') {
            Some(name) => path.extend(value(name)),
            None => path.extend_from_slice(segment.as_bytes()),
        }
    }
    if path.is_empty() {
        path.push(b'/');
    }
    path
}

// ---- The population the run works on, and what it holds.

struct Population {
    items: Vec<String>,
    users: Vec<String>,
    orders: Vec<String>,
}

impl Population {
    fn set_up(app: &App) -> Population {
        let items: Vec<String> = [(1, 1000), (3, 500), (7, 100), (1000, 50), (i64::MAX / 4, 10), (0, 5)]
            .iter()
            .map(|(price, stock)| app.new_item(*price, *stock))
            .collect();
        let users: Vec<String> = [1_000_000, 10_000, 100, 0, i64::MAX - 5, 1_000_000_000]
            .iter()
            .map(|credit| app.new_user(*credit))
            .collect();
        let mut orders = Vec::new();
        for i in 0..12 {
            let item = |k: usize| items[k % items.len()].as_str();
            let lines: Vec<(&str, i64)> = match i % 4 {
                0 => vec![(item(0), 1), (item(1), 2)],
                1 => vec![(item(i), 1 + i as i64)],
                2 => vec![],
                _ => vec![(item(2), 1), (item(3), 1), (item(2), 3)],
            };
            orders.push(app.new_order(&users[i % users.len()], &lines));
        }
        Population { items, users, orders }
    }

    fn sagas(&self) -> Vec<String> {
        self.orders.iter().flat_map(|o| (0..3).map(move |a| format!("{o}.0.{a}"))).collect()
    }
}

fn sql_list(ids: &[String]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    format!("ARRAY[{}]::text[]", quoted.join(","))
}

/// Per item: (stock, units held by reservations); per user: (credit, charged). From Postgres,
/// the truth; i128, as stock and held units together may pass 2^63.
struct Holdings {
    items: BTreeMap<String, (i128, i128)>,
    users: BTreeMap<String, (i128, i128)>,
}

impl Holdings {
    fn read(pop: &Population) -> Holdings {
        let items = sql_list(&pop.items);
        let users = sql_list(&pop.users);
        let parse = |rows: Vec<String>| -> BTreeMap<String, (i128, i128)> {
            rows.iter()
                .map(|row| {
                    let f: Vec<&str> = row.split('|').collect();
                    let n = |s: &str| s.parse::<i128>().unwrap_or_else(|_| panic!("a number in {row:?}"));
                    (f[0].to_string(), (n(f[1]), n(f[2])))
                })
                .collect()
        };
        let items = parse(sql(&format!(
            "WITH held AS (SELECT u.it, sum(u.q) AS q FROM stock.reservations r \
               CROSS JOIN LATERAL unnest(r.items, r.quantities) AS u(it, q) \
               WHERE r.state = 'reserved' AND r.items && {items} GROUP BY u.it) \
             SELECT i.item_id, i.stock, coalesce(h.q, 0) FROM stock.items i LEFT JOIN held h ON h.it = i.item_id \
             WHERE i.item_id = ANY({items})"
        )));
        let users = parse(sql(&format!(
            "SELECT u.user_id, u.credit, coalesce((SELECT sum(c.amount) FROM payment.charges c \
               WHERE c.state = 'charged' AND c.user_id = u.user_id), 0) \
             FROM payment.users u WHERE u.user_id = ANY({users})"
        )));
        assert_eq!(items.len(), pop.items.len(), "every item of the population exists");
        assert_eq!(users.len(), pop.users.len(), "every user of the population exists");
        Holdings { items, users }
    }
}

// ---- Requests.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Class {
    /// A well-framed request: answered, never a 5xx but a JSON 503.
    Normal,
    /// A header value that is not UTF-8: Spin answers an empty 500 without calling the component
    /// (its request preparation refuses it), or an empty 404 for a path no route matches.
    NonUtf8Header,
    /// No `Host`, or one that is not a valid authority (or disagrees with an absolute URI):
    /// Spin does not answer a routed path (it closes the connection); never a 5xx.
    Host,
    /// Invalid HTTP/1.1 framing, each on its own connection: answered with a 4xx or closed.
    Framing,
}

struct Req {
    /// Its number in the run.
    n: usize,
    /// The route it was made from.
    route: Option<usize>,
    /// What it tries, when not made from a route.
    what: String,
    class: Class,
    method: Vec<u8>,
    target: Vec<u8>,
    /// The header fields, in order (`Host` included).
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body as sent (chunked framing included).
    body: Vec<u8>,
    body_note: String,
    /// The whole request, for the framing cases built by hand.
    raw: Option<Vec<u8>>,
    /// The status it must get (regression cases).
    expect: Option<u16>,
}

impl Req {
    fn new(n: usize, class: Class, method: &[u8], target: Vec<u8>) -> Req {
        Req {
            n,
            route: None,
            what: String::new(),
            class,
            method: method.to_vec(),
            target,
            headers: Vec::new(),
            body: Vec::new(),
            body_note: String::new(),
            raw: None,
            expect: None,
        }
    }

    fn header(&mut self, name: &[u8], value: &[u8]) {
        self.headers.push((name.to_vec(), value.to_vec()));
    }

    /// `content` as the body, chunked in pieces of `chunk` bytes, with chunk extensions and a
    /// trailer if asked.
    fn chunked(&mut self, content: &[u8], chunk: usize, ext: bool, trailer: bool) {
        let mut framed = Vec::new();
        for piece in content.chunks(chunk.max(1)) {
            framed.extend_from_slice(format!("{:x}", piece.len()).as_bytes());
            if ext {
                framed.extend_from_slice(b";ext=1");
            }
            framed.extend_from_slice(b"\r\n");
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
        }
        framed.extend_from_slice(b"0\r\n");
        if trailer {
            framed.extend_from_slice(b"x-trailer: 1\r\n");
        }
        framed.extend_from_slice(b"\r\n");
        self.header(b"Transfer-Encoding", b"chunked");
        self.body_note = format!("chunked in pieces of {chunk} of {} bytes in all", content.len());
        self.body = framed;
    }

    fn bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    fn is_head(&self) -> bool {
        self.method == b"HEAD"
    }

    fn method_name(&self) -> String {
        let m = String::from_utf8_lossy(&self.method).into_owned();
        if m.len() > 12 { format!("{}…", &m[..12.min(m.len())]) } else { m }
    }

    /// The path as the app reads its parameters: no scheme and authority, no query or fragment.
    fn path(&self) -> String {
        let target = String::from_utf8_lossy(&self.target).into_owned();
        // An absolute URI (the scheme in any case): the path after the authority.
        let target = match target.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) {
            true => target[7..].find('/').map_or(String::new(), |i| target[7 + i..].to_string()),
            false => target,
        };
        target.split(['?', '#']).next().unwrap_or_default().to_string()
    }

    fn timeout(&self, routes: &[Route]) -> Duration {
        let checkout = self.route.is_some_and(|r| routes[r].pattern.starts_with("/orders/checkout/"));
        if checkout { CHECKOUT_TIMEOUT } else { TIMEOUT }
    }

    /// The request, exactly enough to send it again: the head as a byte string (long runs
    /// shortened, with their length), and the body's start.
    fn show(&self, routes: &[Route]) -> String {
        let origin = match self.route {
            Some(r) => format!("made from route {}", routes[r].pattern),
            None => self.what.clone(),
        };
        let mut out = format!("request #{} ({:?}, {origin})\n", self.n, self.class);
        let bytes = self.bytes();
        let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").map_or(bytes.len(), |i| i + 4);
        for line in bytes[..head_end].split_inclusive(|b| *b == b'\n') {
            out.push_str(&format!("    b\"{}\"\n", shorten(line, 300)));
        }
        let body = &bytes[head_end..];
        if !body.is_empty() {
            let note = if self.body_note.is_empty() { String::new() } else { format!(", {}", self.body_note) };
            out.push_str(&format!("    body: {} bytes{note}: b\"{}\"\n", body.len(), shorten(body, 200)));
        }
        out
    }
}

/// `bytes` escaped, at most `max` bytes of it, with the length when shortened.
fn shorten(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        escape(bytes)
    } else {
        format!("{}…\" (+{} more bytes, {} in all) b\"", escape(&bytes[..max]), bytes.len() - max, bytes.len())
    }
}

fn percent_encode(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| format!("%{b:02X}").into_bytes()).collect()
}

// ---- Generators.

struct Gen<'a> {
    routes: &'a [Route],
    pop: &'a Population,
    sagas: Vec<String>,
    host: String,
    drain_token: String,
    /// Keeps this run's `Idempotency-Key`s apart from earlier runs' (records live 24 h).
    run: String,
}

const ID_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~:";

/// Numbers at and past every boundary, and things that are almost numbers.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-0",
    "+1",
    "01",
    "007",
    "000000000000000000000000000000000000000000000000000000000000000000000000000001",
    "127",
    "128",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740992",
    "9007199254740993",
    "4611686018427387904",
    "4611686018427387903",
    "9223372036854775806",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "999",
    "1000",
    "1001",
    "999999",
    "1000000",
    "1000001",
    "1.0",
    "1.5",
    "0.0",
    ".5",
    "5.",
    "1e3",
    "1E3",
    "1e-3",
    "1e400",
    "9.223372036854775807e18",
    "0x10",
    "0b1",
    "0o7",
    "NaN",
    "nan",
    "inf",
    "Infinity",
    "-inf",
    "1_000",
    "1,000",
    "%31",
    "%2D1",
    "%2B1",
    "1%20",
    "%201",
    "%00",
    "1%00",
    "%EF%BC%91",
    "\u{661}\u{662}",
    "\u{ff11}",
    "١",
    "true",
    "null",
    "[]",
    "{}",
    "",
];

impl Gen<'_> {
    /// An id for the parameter `name`.
    fn id(&self, rng: &mut Rng, name: &str) -> Vec<u8> {
        let pop = self.pop;
        let own: &[String] = match name {
            "item_id" => &pop.items,
            "user_id" => &pop.users,
            "order_id" => &pop.orders,
            "saga_id" => &self.sagas,
            _ => &pop.items,
        };
        let any = [&pop.items[..], &pop.users[..], &pop.orders[..], &self.sagas[..]];
        match rng.below(100) {
            0..35 => rng.pick(own).clone().into_bytes(),
            35..40 => {
                let kind: &[String] = rng.pick::<&[String]>(&any);
                rng.pick(kind).clone().into_bytes()
            }
            40..50 => rng.below(21).to_string().into_bytes(),
            _ => self.odd_id(rng),
        }
    }

    fn odd_id(&self, rng: &mut Rng) -> Vec<u8> {
        let of_len = |rng: &mut Rng, n: usize| -> Vec<u8> { (0..n).map(|_| *rng.pick(ID_CHARS)).collect() };
        let some_pop = |rng: &mut Rng| rng.pick(&self.pop.orders).clone();
        match rng.below(24) {
            0 => Vec::new(),
            1 => of_len(rng, 1),
            2 => of_len(rng, 36),
            3 => of_len(rng, MAX_ID),
            4 => of_len(rng, MAX_ID + 1),
            5 => of_len(rng, MAX_ID - 1),
            6 => {
                let n = *rng.pick(&[1000, 4000, 20_000]);
                of_len(rng, n)
            }
            7 => rng
                .pick(&["%41%42", "%2F", "a%2Fb", "%2e%2e", "%2E", "%25", "%ZZ", "%", "%4", "%e2%82%ac"])
                .as_bytes()
                .to_vec(),
            8 => rng
                .pick(&["%00", "a%00b", "%0A", "%0D%0A", "%7F", "%1B%5B31m", "%09", "%20", "+", "%FF%FE"])
                .as_bytes()
                .to_vec(),
            9 => rng.pick(&["é", "日本語", "🦀", "\u{200b}", "ｉｄ", "a\u{301}", "\u{feff}x", "Ω"]).as_bytes().to_vec(),
            10 => {
                rng.pick(&["..", ".", "...", "~", ":", "-", "_", "a:b", "a.b.c", "-1", "::", "~~~"]).as_bytes().to_vec()
            }
            11 => rng
                .pick(&["'", "\"", "*", "[", "]", "{", "}", "\\", "|", "^", "`", "<x>", "$1", "@", "!", ";", ",", "="])
                .as_bytes()
                .to_vec(),
            12 => b"%27%20OR%201%3D1--".to_vec(),
            13 => format!("{}x", some_pop(rng)).into_bytes(),
            14 => format!("%20{}", some_pop(rng)).into_bytes(),
            15 => format!("{}%00", some_pop(rng)).into_bytes(),
            16 => some_pop(rng).to_uppercase().into_bytes(),
            17 => format!("{}/x", some_pop(rng)).into_bytes(),
            18 => format!("{}.99.99", some_pop(rng)).into_bytes(),
            19 => format!("{}.-1.0", some_pop(rng)).into_bytes(),
            20 => rng.pick(&["x.y.z", "0.0.0", "1..", "...."]).as_bytes().to_vec(),
            21 => percent_encode(some_pop(rng).as_bytes()),
            22 => percent_encode(&of_len(rng, 10)),
            _ => rng.pick(&["*", "?", "%3F", "%23", "%2A", "orders:plan:0", "stock:view:clock"]).as_bytes().to_vec(),
        }
    }

    /// A number for the parameter `name`.
    fn number(&self, rng: &mut Rng, name: &str) -> Vec<u8> {
        let small: usize = match name {
            "amount" | "quantity" => 10,
            "n" => 21,
            _ => 101,
        };
        let value = match rng.below(100) {
            0..45 => rng.below(small).to_string(),
            45..52 => (10 + rng.below(1000)).to_string(),
            52..56 => match rng.below(5) {
                0 => "9".repeat(1000),
                1 => format!("{}7", "0".repeat(2000)),
                2 => "1".repeat(20),
                3 => "9".repeat(*rng.pick(&[19, 20, 21, 38, 39, 40])),
                _ => "8".repeat(60_000),
            },
            _ => rng.pick(NUMBERS).to_string(),
        };
        // A batch of up to a million rows is a load test: counts past FUZZ_BATCH are sent only
        // where refused.
        let count = value.parse::<i64>().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit()));
        if name == "n" && count.is_some_and(|n| n > FUZZ_BATCH && n <= MAX_BATCH) {
            return rng.below(FUZZ_BATCH as usize).to_string().into_bytes();
        }
        value.into_bytes()
    }

    fn param(&self, rng: &mut Rng, name: &str) -> Vec<u8> {
        if name.ends_with("_id") || rng.chance(3) { self.id(rng, name) } else { self.number(rng, name) }
    }

    /// A method for a route served with `method`.
    fn method(&self, rng: &mut Rng, method: &str) -> Vec<u8> {
        if rng.chance(65) {
            return method.as_bytes().to_vec();
        }
        let long = "X".repeat(300);
        let others: [&str; 16] = [
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get", "post", "PoSt",
            "FOO", "M-SEARCH", "PROPFIND", &long,
        ];
        rng.pick(&others).as_bytes().to_vec()
    }

    /// Duplicate slashes, a trailing slash, a query, an encoded literal...
    fn decorate(&self, rng: &mut Rng, path: Vec<u8>) -> Vec<u8> {
        let mut path = path;
        for _ in 0..1 + rng.below(2) {
            match rng.below(14) {
                0 => path.insert(0, b'/'),
                1 => {
                    let slashes: Vec<usize> =
                        path.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(i, _)| i).collect();
                    let at = *rng.pick(&slashes);
                    path.insert(at, b'/');
                }
                2 => path.push(b'/'),
                3 | 4 => {
                    let pad = "x".repeat(*rng.pick(&[10, 1000, 8000]));
                    let queries: [&str; 10] =
                        ["?", "?a=1", "?a=1&a=2", "?x=%ZZ", "?%00", "??", "?amount=5&item_id=0", "?q=é", "?&&&=", &pad];
                    let q = rng.pick(&queries);
                    if !q.starts_with('?') {
                        path.extend_from_slice(b"?q=");
                    }
                    path.extend_from_slice(q.as_bytes());
                }
                5 => path.extend_from_slice(b"#frag"),
                6 => {
                    // The first letter of the first segment, percent-encoded.
                    if path.len() > 1 && path[0] == b'/' && path[1].is_ascii_alphabetic() {
                        let encoded = percent_encode(&path[1..2]);
                        path.splice(1..2, encoded);
                    }
                }
                7 => {
                    let end = path.iter().skip(1).position(|b| *b == b'/').map_or(path.len(), |i| i + 1);
                    path[..end].make_ascii_uppercase();
                }
                8 => path.splice(0..0, b"/.".iter().copied()).for_each(drop),
                9 => path.splice(0..0, b"/x/..".iter().copied()).for_each(drop),
                10 => path.splice(0..0, format!("http://{}", self.host).into_bytes()).for_each(drop),
                11 => path.extend_from_slice(b"/extra"),
                12 => path.extend_from_slice(b"/%2e%2e/%2e%2e"),
                _ => path.splice(0..0, b"/".iter().copied()).for_each(drop),
            }
        }
        path
    }

    /// Zero or more odd header fields.
    fn headers(&self, rng: &mut Rng, req: &mut Req) {
        for _ in 0..rng.below(4) {
            match rng.below(16) {
                0 => {
                    let types: [&[u8]; 8] = [
                        b"application/json",
                        b"text/plain",
                        b"application/x-www-form-urlencoded",
                        b"multipart/form-data; boundary=x",
                        b"",
                        b"application/json; charset=utf-16",
                        "é/ü".as_bytes(),
                        b"*/*",
                    ];
                    req.header(b"Content-Type", rng.pick::<&[u8]>(&types));
                }
                1..4 => {
                    let key = match rng.below(10) {
                        0..4 => format!("fz-{}-{}", self.run, req.n),
                        4..7 => format!("fz-{}-shared-{}", self.run, rng.below(4)),
                        7 => String::new(),
                        8 => format!("fz-{}-{}", self.run, "k".repeat(*rng.pick(&[200, 256, 1000]))),
                        _ => rng.pick(&["a b", "ключ", "k\t1", " ", "~"]).to_string(),
                    };
                    let name: &[u8] = if rng.chance(20) { b"IDEMPOTENCY-KEY" } else { b"Idempotency-Key" };
                    req.header(name, key.as_bytes());
                }
                4 | 5 => {
                    let wrong = format!("{} ", self.drain_token);
                    let upper = self.drain_token.to_uppercase();
                    let long = "t".repeat(10_000);
                    let tokens: [&str; 8] = ["", "guess", &wrong, &upper, "null", &long, "é", &self.drain_token];
                    req.header(b"x-saga-drain-token", rng.pick(&tokens).as_bytes());
                }
                6 | 7 => {
                    let names: [&[u8]; 10] = [
                        b"spin-path-match-item-id",
                        b"spin-path-match-user-id",
                        b"spin-path-match-amount",
                        b"spin-path-match-order-id",
                        b"spin-full-url",
                        b"spin-path-info",
                        b"spin-matched-route",
                        b"spin-component-route",
                        b"spin-client-addr",
                        b"spin-base-path",
                    ];
                    let values = [
                        rng.pick(&self.pop.users).clone(),
                        "500".into(),
                        "/stock/add/0/1".into(),
                        "http://evil.example/x".into(),
                        "9223372036854775807".into(),
                    ];
                    let name: &[u8] = rng.pick::<&[u8]>(&names);
                    req.header(name, rng.pick(&values).as_bytes());
                }
                8 => {
                    let size = *rng.pick(&[8 * 1024, 64 * 1024]);
                    req.header(b"x-big", &vec![b'a'; size]);
                }
                9 => {
                    for i in 0..50 {
                        req.header(format!("x-many-{i}").as_bytes(), b"v");
                    }
                }
                10 => {
                    req.header(b"x-twice", b"1");
                    req.header(b"x-twice", b"2");
                }
                11 => req.header(b"x-utf8", "héllo 日本 🦀".as_bytes()),
                12 => {
                    let pairs: [(&[u8], &[u8]); 6] = [
                        (b"Connection", b"close"),
                        (b"Connection", b"keep-alive"),
                        (b"Expect", b"100-continue"),
                        (b"Accept-Encoding", b"gzip, br"),
                        (b"Upgrade", b"websocket"),
                        (b"Range", b"bytes=0-1"),
                    ];
                    let (n, v) = rng.pick(&pairs);
                    req.header(n, v);
                }
                13 => req.header(b"x-request-id", b"forged-request-id"),
                14 => req.header(b"x-!#$%&'*+.^_`|~", b"odd but valid name"),
                _ => req.header(b"Cookie", &vec![b'c'; *rng.pick(&[10, 4000])]),
            }
        }
    }

    /// A body (or none), with its framing header.
    fn body(&self, rng: &mut Rng, req: &mut Req) {
        let content: Vec<u8> = match rng.below(100) {
            0..45 => return,
            45..55 => Vec::new(),
            55..75 => rng
                .pick(&[
                    "{\"amount\": \"x\"}",
                    "{\"amount\": -1}",
                    "{\"amount\": 1e999}",
                    "[1, 2, 3]",
                    "null",
                    "\"str\"",
                    "{\"items\": [[\"0\", 1]]}",
                    "{",
                    "\u{feff}{}",
                    "{\"a\":",
                    "{\"user_id\": {\"$ne\": null}}",
                ])
                .as_bytes()
                .to_vec(),
            75..80 => "[".repeat(*rng.pick(&[1000, 100_000])).into_bytes(),
            80..88 => (0..1 + rng.below(4000)).map(|_| rng.next() as u8).collect(),
            88..92 => vec![0u8; 1 + rng.below(100)],
            _ => {
                let size = *rng.pick(&[MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, 3 * MAX_BODY]);
                vec![b'b'; size]
            }
        };
        if rng.chance(25) {
            // Chunked: chunks of one size, sometimes with extensions and a trailer.
            let chunk = *rng.pick(&[1usize, 7, 1000, 65536]);
            let (ext, trailer) = (rng.chance(20), rng.chance(20));
            req.chunked(&content, chunk, ext, trailer);
        } else {
            req.header(b"Content-Length", content.len().to_string().as_bytes());
            req.body = content;
        }
    }

    /// A request made from a route.
    fn routed(&self, rng: &mut Rng, n: usize) -> Req {
        let r = rng.below(self.routes.len());
        let route = &self.routes[r];
        let tail: Vec<u8> = (0..rng.below(3)).flat_map(|_| [vec![b'/'], self.id(rng, "tail")].concat()).collect();
        let path = fill(&route.pattern, |name| self.param(rng, name), &tail);
        let path = if rng.chance(25) { self.decorate(rng, path) } else { path };
        let method = self.method(rng, &route.method);
        let mut req = Req::new(n, Class::Normal, &method, path);
        req.route = Some(r);
        req.header(b"Host", self.host.as_bytes());
        self.headers(rng, &mut req);
        if method != b"GET" || rng.chance(10) {
            self.body(rng, &mut req);
        }
        req
    }

    /// A path no route was written for.
    fn unrouted(&self, rng: &mut Rng, n: usize) -> Req {
        let long = format!("/{}", "a".repeat(20_000));
        let paths: [&str; 14] = [
            "/",
            "/stock",
            "/stock/",
            "/orders/saga",
            "/payment/charge/x/y/1",
            "/stock/reserve/x",
            "/.well-known/spin/health",
            "/.well-known/spin/info",
            "/.well-known/spin/other",
            "/nope",
            "*",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/orders/checkout",
            &long,
        ];
        let path = rng.pick(&paths).as_bytes().to_vec();
        let method = self.method(rng, "GET");
        let mut req = Req::new(n, Class::Normal, &method, path);
        req.what = "a path no route was written for".into();
        req.header(b"Host", self.host.as_bytes());
        self.headers(rng, &mut req);
        req
    }

    /// A route's request with a header value that is not UTF-8.
    fn non_utf8_header(&self, rng: &mut Rng, n: usize) -> Req {
        let mut req = self.routed(rng, n);
        req.class = Class::NonUtf8Header;
        let values: [&[u8]; 4] = [b"\xff\xfe", b"caf\xe9", b"\xc3\x28", b"ok \x80"];
        let names: [&[u8]; 4] = [b"x-bytes", b"Idempotency-Key", b"x-saga-drain-token", b"Content-Type"];
        let at = rng.below(req.headers.len() + 1).max(1);
        req.headers.insert(at, (rng.pick(&names).to_vec(), rng.pick(&values).to_vec()));
        req
    }

    /// A route's request without a usable `Host`.
    fn host_case(&self, rng: &mut Rng, n: usize) -> Req {
        let mut req = self.routed(rng, n);
        req.class = Class::Host;
        req.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(b"host"));
        match rng.below(6) {
            0 => {}
            1 => req.headers.insert(0, (b"Host".to_vec(), b"a b".to_vec())),
            2 => req.headers.insert(0, (b"Host".to_vec(), b"".to_vec())),
            3 => req.headers.insert(0, (b"Host".to_vec(), b"\xff".to_vec())),
            4 => {
                // An absolute URI naming another authority than the Host header.
                req.headers.insert(0, (b"Host".to_vec(), self.host.as_bytes().to_vec()));
                req.target.splice(0..0, b"http://elsewhere.example:1".iter().copied());
            }
            _ => req.headers.insert(0, (b"Host".to_vec(), b"evil.example".to_vec())),
        }
        req
    }

    /// Invalid HTTP/1.1, by hand.
    fn framing(&self, rng: &mut Rng, n: usize) -> Req {
        let item = rng.pick(&self.pop.items).clone();
        let host = format!("Host: {}\r\n", self.host);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "two Content-Length that disagree",
                format!("POST /stock/add/fz-junk/1 HTTP/1.1\r\n{host}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
                    .into_bytes(),
            ),
            (
                "Content-Length and chunked",
                format!(
                    "POST /stock/add/fz-junk/1 HTTP/1.1\r\n{host}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                )
                .into_bytes(),
            ),
            (
                "a chunk size that is not hex",
                format!("POST /payment/create_user HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
                    .into_bytes(),
            ),
            (
                "a transfer coding other than chunked",
                format!("POST /payment/create_user HTTP/1.1\r\n{host}Transfer-Encoding: gzip\r\n\r\n").into_bytes(),
            ),
            (
                "a negative Content-Length",
                format!("POST /payment/create_user HTTP/1.1\r\n{host}Content-Length: -1\r\n\r\n").into_bytes(),
            ),
            (
                "a Content-Length past u64",
                format!("POST /payment/create_user HTTP/1.1\r\n{host}Content-Length: 99999999999999999999999\r\n\r\n")
                    .into_bytes(),
            ),
            ("a method with '='", format!("G=T /stock/find/{item} HTTP/1.1\r\n{host}\r\n").into_bytes()),
            ("a space in the path", format!("GET /stock/find/a b HTTP/1.1\r\n{host}\r\n").into_bytes()),
            (
                "a control byte in the path",
                [b"GET /stock/find/\x01", item.as_bytes(), b" HTTP/1.1\r\n", host.as_bytes(), b"\r\n"].concat(),
            ),
            ("HTTP/1.2", format!("GET /stock/find/{item} HTTP/1.2\r\n{host}\r\n").into_bytes()),
            ("HTTP/2.0 on HTTP/1", format!("GET /stock/find/{item} HTTP/2.0\r\n{host}\r\n").into_bytes()),
            ("no version", format!("GET /stock/find/{item}\r\n{host}\r\n").into_bytes()),
            ("a garbage request line", b"\x16\x03\x01\x00\xa5garbage\r\n\r\n".to_vec()),
            ("a header line without ':'", format!("GET /stock/find/{item} HTTP/1.1\r\n{host}oops\r\n\r\n").into_bytes()),
            ("a space in a header name", format!("GET /stock/find/{item} HTTP/1.1\r\n{host}X Y: 1\r\n\r\n").into_bytes()),
            (
                "an obs-fold continuation line",
                format!("GET /stock/find/{item} HTTP/1.1\r\n{host}X-Fold: a\r\n b\r\n\r\n").into_bytes(),
            ),
            (
                "a NUL in a header value",
                [b"GET /payment/find_user/0 HTTP/1.1\r\n", host.as_bytes(), b"X: a\x00b\r\n\r\n"].concat(),
            ),
            (
                "a DEL in a header value",
                [b"GET /payment/find_user/0 HTTP/1.1\r\n", host.as_bytes(), b"X: a\x7fb\r\n\r\n"].concat(),
            ),
            (
                "a 500 kB header",
                [b"GET /stock/find/x HTTP/1.1\r\n".to_vec(), host.clone().into_bytes(), b"X-Huge: ".to_vec(), vec![b'h'; 500_000], b"\r\n\r\n".to_vec()]
                    .concat(),
            ),
            (
                "120 headers",
                format!(
                    "GET /stock/find/x HTTP/1.1\r\n{host}{}\r\n",
                    (0..120).map(|i| format!("X-{i}: 1\r\n")).collect::<String>()
                )
                .into_bytes(),
            ),
            ("a 70 kB path", format!("GET /stock/find/{} HTTP/1.1\r\n{host}\r\n", "p".repeat(70_000)).into_bytes()),
            (
                "bare LF line endings",
                format!("GET /stock/find/{item} HTTP/1.1\nHost: {}\n\n", self.host).into_bytes(),
            ),
            ("leading empty lines", format!("\r\n\r\nGET /stock/find/{item} HTTP/1.1\r\n{host}\r\n").into_bytes()),
            ("HTTP/1.0 without Host", format!("GET /stock/find/{item} HTTP/1.0\r\n\r\n").into_bytes()),
            (
                "a body longer than its Content-Length (the rest is a second request)",
                format!(
                    "POST /payment/create_user HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\nPOST /stock/add/fz-junk/1 HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n"
                )
                .into_bytes(),
            ),
        ];
        let (what, bytes) = rng.pick(&cases);
        let mut req = Req::new(n, Class::Framing, b"", Vec::new());
        req.what = what.to_string();
        req.raw = Some(bytes.clone());
        req.method = bytes.split(|b| *b == b' ').next().unwrap_or_default().to_vec();
        req
    }

    fn request(&self, rng: &mut Rng, n: usize) -> Req {
        match rng.below(100) {
            0..3 => self.framing(rng, n),
            3..5 => self.non_utf8_header(rng, n),
            5..7 => self.host_case(rng, n),
            7..10 => self.unrouted(rng, n),
            _ => self.routed(rng, n),
        }
    }
}

// ---- Checking answers.

/// What one request's exchange gave.
struct Exchange {
    outcome: Outcome,
    took: Duration,
}

/// The changes of stock or credit the fuzz made and the app confirmed: per entity, (request
/// number, signed amount).
#[derive(Default)]
struct Ledger {
    changes: HashMap<String, Vec<(usize, i128)>>,
}

impl Ledger {
    fn total(&self, id: &str) -> i128 {
        self.changes.get(id).map_or(0, |c| c.iter().map(|(_, a)| a).sum())
    }

    /// The requests that changed `id`, for a report.
    fn show(&self, id: &str) -> String {
        let changes = self.changes.get(id).map(Vec::as_slice).unwrap_or_default();
        changes.iter().map(|(n, a)| format!("#{n}: {a:+}")).collect::<Vec<_>>().join(", ")
    }
}

/// Parses a 2xx answer of a stock or credit change: `(entity, signed amount)` from the path, as
/// the app reads it (by position: `spin_kit::route::from_path`).
fn change_of(pattern: &str, path: &str) -> Option<(String, String, i128)> {
    let sign = match pattern {
        "/stock/add/:item_id/:amount" | "/payment/add_funds/:user_id/:amount" => 1,
        "/stock/subtract/:item_id/:amount" | "/payment/pay/:user_id/:amount" => -1,
        _ => return None,
    };
    let mut segments = path.trim_start_matches('/').split('/');
    let (_, _, id, amount) = (segments.next()?, segments.next()?, segments.next()?, segments.next()?);
    Some((id.to_string(), amount.to_string(), sign))
}

/// Checks one exchange; `Err` says what is wrong.
fn check(req: &Req, result: &Exchange, routes: &[Route], ledger: &mut Ledger, pop: &Population) -> Result<(), String> {
    let limit = req.timeout(routes);
    let reply = match &result.outcome {
        Outcome::Reply(reply) => reply,
        Outcome::TimedOut { partial } => {
            return Err(format!("no answer within {limit:?} (a hang); had: b\"{}\"", shorten(partial, 200)));
        }
        Outcome::NoConnection(e) => return Err(format!("could not connect: {e}")),
        Outcome::Garbled { why, partial } => {
            return Err(format!("an answer that is not HTTP ({why}): b\"{}\"", shorten(partial, 300)));
        }
        Outcome::Closed { partial } => {
            return match req.class {
                // Spin closes the connection of a request it will not route to a component.
                Class::Framing | Class::Host if partial.is_empty() => Ok(()),
                _ => Err(format!("the connection closed without an answer; had: b\"{}\"", shorten(partial, 200))),
            };
        }
    };
    if result.took > limit {
        return Err(format!("answered after {:?} (the limit is {limit:?})", result.took));
    }
    let status = reply.status;
    if let Some(expected) = req.expect.filter(|e| *e != status) {
        return Err(format!("{status}, not {expected}: {}", shorten(&reply.body, 300)));
    }
    let from_component = reply.header("x-request-id").is_some();
    let text = reply.body_text();
    let show = || format!("{status} {}", shorten(&reply.body, 300));
    if req.class == Class::NonUtf8Header {
        // Spin's request preparation refuses it before the component: an empty 500; or the
        // router's empty 404; or hyper's empty 4xx for a request it refuses first.
        if !(matches!(status, 500 | 404 | 400 | 414 | 431) && reply.body.is_empty() && !from_component) {
            return Err(format!("a header value that is not UTF-8 got {}, not Spin's empty 500 (or 404)", show()));
        }
        return Ok(());
    }
    if status >= 500 {
        let json: Option<Value> = serde_json::from_str(&text).ok();
        let deliberate = status == 503 && json.as_ref().is_some_and(|v| v["error"].is_string());
        if !deliberate {
            return Err(format!("a server error: {}", show()));
        }
    }
    // (A 2xx to CONNECT opens a tunnel: no body, no length.)
    let tunnel = req.method == b"CONNECT" && (200..300).contains(&status);
    if !req.is_head() && !tunnel && reply.content_length.is_none() && status != 204 && status != 304 {
        return Err(format!("an answer without Content-Length: {}", show()));
    }
    // A replay (Idempotency-Key) answers the first request's body, with the first's request id.
    let replayed = reply.header("idempotent-replayed").as_deref() == Some("true");
    // Every component answers JSON, but for /metrics's 2xx: Prometheus's text format, said so.
    let metrics_text = status < 400
        && reply.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
        && text.starts_with("# HELP ");
    if from_component && !req.is_head() && !metrics_text {
        let json: Value =
            serde_json::from_str(&text).map_err(|e| format!("a component's answer is not JSON ({e}): {}", show()))?;
        if status >= 400 {
            let id = reply.header("x-request-id");
            if !json["error"].is_string()
                || !json["message"].is_string()
                || !json["request_id"].is_string()
                || (!replayed && json["request_id"].as_str() != id.as_deref())
            {
                return Err(format!("an error without its JSON body (error, message, request_id): {}", show()));
            }
        }
    }
    // A change of stock or credit the app confirmed goes in the ledger.
    if (200..300).contains(&status) && req.method == b"POST" && !replayed {
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let shaped = json.get("stock").is_some() || json.get("credit").is_some();
        let change = req.route.and_then(|r| change_of(&routes[r].pattern, &req.path()));
        match (shaped, change) {
            (false, None) => {}
            (true, None) | (false, Some(_)) => {
                return Err(format!("an answer the fuzz cannot explain: {}", show()));
            }
            (true, Some((id, amount, sign))) => {
                let valid = market_core::parse_id("id", &id).is_ok();
                let Ok(amount) = market_core::parse_non_negative("amount", &amount) else {
                    return Err(format!("a 2xx for the amount {amount:?}, which the app should refuse: {}", show()));
                };
                if !valid {
                    return Err(format!("a 2xx for the id {id:?}, which the app should refuse: {}", show()));
                }
                if json.get("user_id").is_some_and(|user| user.as_str() != Some(id.as_str())) {
                    return Err(format!("a credit change of user {id} answered for another: {}", show()));
                }
                if pop.items.contains(&id) || pop.users.contains(&id) {
                    ledger.changes.entry(id).or_default().push((req.n, sign * amount as i128));
                }
            }
        }
    }
    Ok(())
}

// ---- Regression cases: inputs that once found a bug, sent first in every run.

fn regressions(generator: &Gen, n: &mut usize) -> Vec<Req> {
    let mut cases = Vec::new();
    let mut case = |what: &str, path: &str, size: usize, chunk: usize, expect: u16| {
        let mut req = Req::new(*n, Class::Normal, b"POST", path.as_bytes().to_vec());
        req.what = format!("regression: {what}");
        req.header(b"Host", generator.host.as_bytes());
        req.header(b"Idempotency-Key", format!("fz-{}-{}", generator.run, *n).as_bytes());
        req.chunked(&vec![b'r'; size], chunk, false, false);
        req.expect = Some(expect);
        cases.push(req);
        *n += 1;
    };
    // A keyed request's body, read to fingerprint it, was collected frame by frame, each frame in
    // a 16 KiB buffer of its own: 1 MiB in 1-byte chunks took 16 GiB and trapped the instance
    // (an empty 500), and a body of any size was read whole before its size was checked. Read
    // piece by piece, a megabyte of 1-byte chunks took 7 s: a body may come in at most 16 Ki
    // pieces (spin_kit::body::MAX_BODY_FRAMES).
    case("1 MiB in 1-byte chunks, with a key", "/payment/create_user", MAX_BODY, 1, 400);
    case("1 MiB in 1 KiB chunks, with a key", "/payment/create_user", MAX_BODY, 1024, 200);
    case("1 MiB + 1 in 1 KiB chunks, with a key", "/payment/create_user", MAX_BODY + 1, 1024, 400);
    case("3 MiB in 7-byte chunks, with a key", "/stock/item/create/1", 3 * MAX_BODY, 7, 400);
    case("1 MiB + 1 in 1-byte chunks, with a key, to a checkout", "/orders/checkout/fz-none", MAX_BODY + 1, 1, 400);
    cases
}

// ---- The run.

#[test]
fn fuzzed_requests_get_no_server_error_no_hang_and_lose_no_stock_or_money() {
    let seed = seed();
    let count: usize = std::env::var("FUZZ_REQUESTS").ok().map_or(DEFAULT_REQUESTS, |s| {
        s.trim().parse().unwrap_or_else(|_| panic!("FUZZ_REQUESTS={s:?} is not a number"))
    });
    report!("fuzz: seed {seed:#x} (FUZZ_SEED={seed:#x} repeats these requests), {count} requests, {THREADS} threads");

    let app = App::start();
    let addr = app.base.trim_start_matches("http://").to_string();

    // The routes and their methods: a GET that a component answers 405 names the method.
    let routes: Vec<Route> = manifest_routes()
        .into_iter()
        .map(|pattern| {
            let path = fill(&pattern, |_| b"fz-probe".to_vec(), b"/fz-probe");
            let probe = Req {
                headers: vec![(b"Host".to_vec(), addr.as_bytes().to_vec())],
                ..Req::new(0, Class::Normal, b"GET", path)
            };
            let method = match raw_http::exchange(&addr, &probe.bytes(), false, TIMEOUT) {
                Outcome::Reply(r) if r.status == 405 => {
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    let message = body["message"].as_str().unwrap_or_default().to_string();
                    message.rsplit(' ').next().unwrap_or("POST").to_string()
                }
                Outcome::Reply(_) => "GET".to_string(),
                other => panic!("GET {pattern}: no answer: {other:?}"),
            };
            Route { pattern, method }
        })
        .collect();
    assert!(!routes.is_empty(), "spin.toml has no public HTTP route");
    report!(
        "fuzz: {} routes: {}",
        routes.len(),
        routes.iter().map(|r| format!("{} {}", r.method, r.pattern)).collect::<Vec<_>>().join(", ")
    );

    let pop = Population::set_up(&app);
    let before = Holdings::read(&pop);
    let stuck_before: HashSet<String> = stuck_sagas().into_iter().collect();
    let drain_token =
        std::env::var("SPIN_VARIABLE_SAGA_DRAIN_TOKEN").unwrap_or_else(|_| manifest_default("saga_drain_token"));
    let generator = Gen {
        routes: &routes,
        pop: &pop,
        sagas: pop.sagas(),
        host: addr.clone(),
        drain_token,
        run: format!("{seed:x}-{}", SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis()),
    };
    let mut n = 0;
    let mut requests = regressions(&generator, &mut n);
    let mut rng = Rng::new(seed);
    for _ in 0..count {
        requests.push(generator.request(&mut rng, n));
        n += 1;
    }

    let started = Instant::now();
    let results: Vec<Exchange> = in_parallel(THREADS, &requests, |req| {
        let t = Instant::now();
        let outcome = raw_http::exchange(&addr, &req.bytes(), req.is_head(), req.timeout(&routes));
        Exchange { outcome, took: t.elapsed() }
    });
    let took = started.elapsed();

    // Every answer.
    let mut ledger = Ledger::default();
    let mut failures: Vec<String> = Vec::new();
    let mut by_method: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_class: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_route: Vec<(usize, usize, usize)> = vec![(0, 0, 0); routes.len()];
    for (req, result) in requests.iter().zip(&results) {
        *by_method.entry(req.method_name()).or_default() += 1;
        *by_class.entry(format!("{:?}", req.class)).or_default() += 1;
        let status = match &result.outcome {
            Outcome::Reply(r) if r.status == 503 => "503".to_string(),
            Outcome::Reply(r) if r.status == 500 && req.class == Class::NonUtf8Header => "500 (Spin: not UTF-8)".into(),
            Outcome::Reply(r) if r.status == 500 => "500".to_string(),
            Outcome::Reply(r) => format!("{}xx", r.status / 100),
            Outcome::Closed { .. } => "closed".into(),
            Outcome::TimedOut { .. } => "timed out".into(),
            Outcome::Garbled { .. } => "garbled".into(),
            Outcome::NoConnection(_) => "no connection".into(),
        };
        *by_status.entry(status).or_default() += 1;
        if let Some(r) = req.route {
            by_route[r].0 += 1;
            if let Outcome::Reply(reply) = &result.outcome {
                if reply.header("x-request-id").is_some() {
                    by_route[r].1 += 1;
                }
                if (200..300).contains(&reply.status) {
                    by_route[r].2 += 1;
                }
            }
        }
        if let Err(why) = check(req, result, &routes, &mut ledger, &pop) {
            failures.push(format!("{why}\n{}", req.show(&routes)));
        }
    }
    report!("fuzz: {} requests in {took:.1?}", requests.len());
    report!("fuzz: by method: {by_method:?}");
    report!("fuzz: by answer: {by_status:?}");
    report!("fuzz: by class: {by_class:?}");
    for (r, (sent, reached, ok)) in by_route.iter().enumerate() {
        report!(
            "fuzz:   {} {}: {sent} sent, {reached} reached its component, {ok} 2xx",
            routes[r].method,
            routes[r].pattern
        );
    }
    let mut slowest: Vec<(Duration, &Req)> = results.iter().map(|r| r.took).zip(&requests).collect();
    slowest.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
    for (took, req) in slowest.iter().take(3) {
        let first_line = req.show(&routes).lines().nth(1).unwrap_or_default().trim().to_string();
        report!("fuzz: slow: #{} took {took:.1?}: {}", req.n, shorten(first_line.as_bytes(), 120));
    }
    let repeat = format!("FUZZ_SEED={seed:#x} FUZZ_REQUESTS={count}");
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(25).collect();
        panic!(
            "{} of {} requests failed ({repeat} repeats them):\n\n{}",
            failures.len(),
            requests.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    // Every route reached its component (by the default count, each gets about 150 requests).
    for (r, (sent, reached, _)) in by_route.iter().enumerate().filter(|_| count >= DEFAULT_REQUESTS / 3) {
        assert!(*reached > 0, "route {} was never reached in {sent} requests ({repeat})", routes[r].pattern);
    }

    // Every saga the fuzz may have started is finished, none of the population's is stuck.
    let touched: HashSet<String> = pop.orders.iter().cloned().chain((0..=20).map(|i| i.to_string())).collect();
    let deadline = Instant::now() + SAGA_LIMIT;
    loop {
        let active: Vec<String> = redis_cli(&["-n", "1", "ZRANGE", "orders:sagas:active", "0", "-1"])
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let ours: Vec<&String> = active.iter().filter(|s| touched.contains(order_of(s))).collect();
        if ours.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "sagas still running after {SAGA_LIMIT:?}: {ours:?} ({repeat})");
        std::thread::sleep(Duration::from_millis(250));
    }
    app.wait_until_sagas_finish(&pop.orders, SAGA_LIMIT);
    let stuck: Vec<String> =
        stuck_sagas().into_iter().filter(|s| !stuck_before.contains(s) && touched.contains(order_of(s))).collect();
    assert!(stuck.is_empty(), "sagas left stuck: {stuck:?} ({repeat})");

    // Stock and money conserved: per item, stock + held = before + the changes the app confirmed.
    let after = Holdings::read(&pop);
    let mut breaches = Vec::new();
    // What `id` holds (free + set aside) is what it held before plus the changes confirmed.
    let mut conserved = |[kind, free_name, aside_name]: [&str; 3], id: &str, (free, aside), (free0, aside0)| {
        let changed = ledger.total(id);
        if free + aside != free0 + aside0 + changed {
            breaches.push(format!(
                "{kind} {id}: {free_name} {free} + {aside_name} {aside} != {free0} + {aside0} before + {changed} added by the fuzz ({})",
                ledger.show(id)
            ));
        }
    };
    for (item, &now) in &after.items {
        conserved(["item", "stock", "held"], item, now, before.items[item]);
    }
    for (user, &now) in &after.users {
        conserved(["user", "credit", "charged"], user, now, before.users[user]);
    }
    for (item, (stock, _)) in &after.items {
        let (shown, _) = app.stock_of(item);
        if i128::from(shown) != *stock {
            breaches.push(format!("item {item}: find answers stock {shown}, Postgres holds {stock}"));
        }
    }
    // Every order of the population: paid once, by its saga, for what it holds; or not at all.
    breaches.extend(pop.orders.iter().filter_map(|o| order_breach(&app, o)));
    if !breaches.is_empty() {
        // The requests that named a breached entity, with their answers.
        let named: Vec<String> = requests
            .iter()
            .zip(&results)
            .filter(|(req, _)| {
                breaches
                    .iter()
                    .any(|b| b.split(' ').nth(1).is_some_and(|id| req.path().contains(id.trim_end_matches(':'))))
            })
            .map(|(req, result)| {
                let answer = match &result.outcome {
                    Outcome::Reply(r) => format!("{} {}", r.status, shorten(&r.body, 200)),
                    other => format!("{other:?}"),
                };
                format!("{}    answer: {answer}", req.show(&routes))
            })
            .collect();
        panic!(
            "{} breaches ({repeat}):\n{}\n\nthe requests that named them:\n{}",
            breaches.len(),
            breaches.join("\n"),
            named.join("\n")
        );
    }

    // And the app still serves a normal checkout.
    let item = app.new_item(3, 5);
    let user = app.new_user(100);
    let order = app.new_order(&user, &[(&item, 2)]);
    let paid = app.post(&format!("/orders/checkout/{order}"));
    assert_eq!(paid.status, 200, "a normal checkout after the fuzz: {paid:?}");
    assert_eq!(app.order(&order)["paid"], true);
    assert_eq!((app.stock_of(&item).0, app.credit_of(&user)), (3, 94), "the checkout took 2 units and 6 credit");
    report!(
        "fuzz: conserved: {} items, {} users, {} orders; the fuzz changed the stock of {} and the credit of {}",
        pop.items.len(),
        pop.users.len(),
        pop.orders.len(),
        ledger.changes.keys().filter(|k| pop.items.contains(k)).count(),
        ledger.changes.keys().filter(|k| pop.users.contains(k)).count()
    );
}

#[test]
fn routes_are_filled_segment_by_segment_and_a_wildcard_takes_the_tail() {
    let mut n = 0;
    let mut value = |name: &str| {
        n += 1;
        format!("{name}{n}").into_bytes()
    };
    assert_eq!(fill("/stock/add/:item_id/:amount", &mut value, b""), b"/stock/add/item_id1/amount2");
    assert_eq!(fill("/static/...", &mut value, b"/a/b"), b"/static/a/b");
    assert_eq!(fill("/static/...", &mut value, b""), b"/static");
    assert_eq!(fill("/...", &mut value, b""), b"/");
    assert_eq!(fill("/orders/sagas/stuck", &mut value, b""), b"/orders/sagas/stuck");
    let change = change_of("/payment/pay/:user_id/:amount", "//payment/pay/u-1/007/");
    assert_eq!(change, Some(("u-1".to_string(), "007".to_string(), -1)));
    assert_eq!(change_of("/stock/find/:item_id", "/stock/find/x"), None);
    assert_eq!(order_of("o-1.0.2"), "o-1");
    assert_eq!(order_of("a.b.c.0.1"), "a.b.c");
}

/// The order of a saga id (`{order_id}.{generation}.{attempt}`).
fn order_of(saga: &str) -> &str {
    saga.rsplitn(3, '.').nth(2).unwrap_or(saga)
}

fn stuck_sagas() -> Vec<String> {
    redis_cli(&["-n", "1", "ZRANGE", "orders:sagas:stuck", "0", "-1"]).into_iter().filter(|s| !s.is_empty()).collect()
}

/// The default of an application variable in spin.toml.
fn manifest_default(name: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).expect("spin.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("spin.toml parses");
    manifest["variables"][name]["default"]
        .as_str()
        .unwrap_or_else(|| panic!("variable {name} has a default"))
        .to_string()
}

/// What is wrong with an order of the population, if anything: a paid order has exactly one
/// charge (its total) and one reservation (its lines), by the saga that paid it; an unpaid one
/// has neither, unless a compensation was refused for an overflow (nothing lost: the units or
/// the money stay held, on record).
fn order_breach(app: &App, order: &str) -> Option<String> {
    let rows = sql(&format!(
        "SELECT o.paid, o.total_cost, coalesce(o.paid_by_saga, ''), o.items::text, \
           coalesce((SELECT json_agg(json_build_array(r.saga_id, r.items, r.quantities))::text FROM stock.reservations r \
             WHERE r.saga_id LIKE o.order_id || '.%' AND r.state = 'reserved'), '[]'), \
           coalesce((SELECT json_agg(json_build_array(c.saga_id, c.amount))::text FROM payment.charges c \
             WHERE c.saga_id LIKE o.order_id || '.%' AND c.state = 'charged'), '[]') \
         FROM orders.orders o WHERE o.order_id = '{order}'"
    ));
    let f: Vec<&str> = rows.first().map(|r| r.split('|').collect()).unwrap_or_default();
    if f.len() != 6 {
        return Some(format!("order {order}: not found as expected: {rows:?}"));
    }
    let (paid, total, by) = (f[0] == "t", f[1].parse::<i64>().unwrap_or(-1), f[2]);
    let json = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let (lines, reserved, charged) = (json(f[3]), json(f[4]), json(f[5]));
    let mut wanted: BTreeMap<String, i128> = BTreeMap::new();
    for line in lines.as_array().into_iter().flatten() {
        *wanted.entry(line[0].as_str().unwrap_or_default().to_string()).or_default() +=
            line[1].as_i64().unwrap_or(0) as i128;
    }
    let reserved = reserved.as_array().cloned().unwrap_or_default();
    let charged = charged.as_array().cloned().unwrap_or_default();
    let describe = || {
        format!(
            "order {order}: paid {paid} by {by:?}, total {total}, lines {lines}, reserved {reserved:?}, charged {charged:?}"
        )
    };
    if paid {
        let held: BTreeMap<String, i128> = reserved
            .first()
            .map(|r| {
                let items = r[1].as_array().cloned().unwrap_or_default();
                let quantities = r[2].as_array().cloned().unwrap_or_default();
                let mut held = BTreeMap::new();
                for (item, q) in items.iter().zip(&quantities) {
                    *held.entry(item.as_str().unwrap_or_default().to_string()).or_default() +=
                        q.as_i64().unwrap_or(0) as i128;
                }
                held
            })
            .unwrap_or_default();
        let ok = reserved.len() == 1
            && charged.len() == 1
            && reserved[0][0] == by
            && charged[0][0] == by
            && charged[0][1].as_i64() == Some(total)
            && held == wanted;
        return (!ok).then(describe);
    }
    if reserved.is_empty() && charged.is_empty() {
        return None;
    }
    // Held on record after a refused compensation (an overflow of the stock or credit it gives back).
    let saga = app.saga_of(order);
    let refused_for_overflow = saga["history"].as_array().into_iter().flatten().any(|e| {
        let step = e["step"].as_str().unwrap_or_default();
        let outcome = e["outcome"].as_str().unwrap_or_default();
        (step == "release_stock" || step == "refund_payment")
            && !outcome.starts_with("done")
            && outcome.contains("overflow")
    });
    (!refused_for_overflow).then(|| format!("{} — left held without a refused compensation; saga {saga}", describe()))
}
