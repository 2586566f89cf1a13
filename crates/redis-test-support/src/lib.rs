//! Native tests of the services' Redis scripts against a real Redis: the one `./dev test`
//! starts (`infra/stores test-env` exports its address as `MARKET_TEST_REDIS`,
//! `redis://:<password>@127.0.0.1:<port>`).
//!
//! The scripts name their keys themselves (`orders:fwd:queue`, `stock:view:epoch`, ...), so tests
//! cannot keep apart by a key prefix. Each test takes a Redis logical database of its own
//! instead ([`TestRedis::claim`]): one of 2 to 15 (the app uses 0 and 1, and the same Redis may
//! be serving `./dev up` meanwhile), marked as taken by a holder key with a TTL, emptied when
//! taken and when given back (on drop). Taking and emptying are one script, so two tests (in
//! this process or another) never share a database; a holder that died lets go when its key
//! expires ([`HOLD_MS`]).
//!
//! Without `MARKET_TEST_REDIS` a test is skipped with a notice, or fails under `CI=true`, where
//! the Redis must be there.
//!
//! Replies come back as Spin's `spin:redis` `execute` gives them to a component: nested arrays
//! flattened, nil as `None`, integers as their decimal text ([`Reply::flat`]).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The variable that says where the test Redis is.
pub const REDIS_VAR: &str = "MARKET_TEST_REDIS";
/// The key that marks a database as taken (in that database).
pub const HOLDER_KEY: &str = "redis-test-support:holder";
/// How long a database stays taken without being given back (a test that died).
pub const HOLD_MS: u64 = 120_000;
/// The first database tests take: 0 and 1 are the app's.
const FIRST_DB: u32 = 2;

/// Takes the database if it is free (or already ours): empties it and marks it taken.
const TAKE: &str = "local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('FLUSHDB')
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1";

/// Gives the database back, empty, if it is still ours.
const GIVE_BACK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('FLUSHDB') end
return 1";

/// One RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Int(i64),
    Text(String),
    Status(String),
    Error(String),
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply as Spin's `execute` gives it: arrays flattened, nil as `None`, integers as text.
    pub fn flat(&self) -> Vec<Option<String>> {
        let mut out = Vec::new();
        self.flatten_into(&mut out);
        out
    }

    fn flatten_into(&self, out: &mut Vec<Option<String>>) {
        match self {
            Reply::Nil => out.push(None),
            Reply::Int(n) => out.push(Some(n.to_string())),
            Reply::Text(s) | Reply::Status(s) | Reply::Error(s) => out.push(Some(s.clone())),
            Reply::Array(items) => items.iter().for_each(|i| i.flatten_into(out)),
        }
    }

    /// A text, status or integer reply as text; `None` for anything else.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Int(n) => Some(n.to_string()),
            Reply::Text(s) | Reply::Status(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// An integer reply (or a text one that is a number).
    pub fn int(&self) -> Option<i64> {
        self.text()?.parse().ok()
    }
}

/// Every value of a flattened reply as text, nil as `""` (as `spin_kit::redis_store::reply_texts`).
pub fn texts(reply: &[Option<String>]) -> Vec<String> {
    reply.iter().map(|v| v.clone().unwrap_or_default()).collect()
}

/// A connection to the test Redis, on a database of this test's own.
pub struct TestRedis {
    reader: BufReader<TcpStream>,
    db: u32,
    token: String,
    /// How many script runs fell back from `EVALSHA` to `EVAL` (`NOSCRIPT`).
    pub eval_fallbacks: usize,
}

impl TestRedis {
    /// A database of this test's own, empty; `None` (with a notice on stderr) when no test Redis
    /// is configured, except under `CI=true`, where that fails the test.
    pub fn claim() -> Option<TestRedis> {
        let url = match std::env::var(REDIS_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let why = format!(
                    "{REDIS_VAR} is not set: no Redis to run the script tests against \
                     (`./dev test` sets it; by hand: `eval \"$(infra/stores test-env)\"` after `infra/stores up`)"
                );
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{why}");
                }
                eprintln!("skipped: {why}");
                return None;
            }
        };
        let (address, password) = parse_url(&url);
        let stream =
            TcpStream::connect(&address).unwrap_or_else(|e| panic!("cannot reach the test Redis at {address}: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("a read timeout");
        let mut redis = TestRedis { reader: BufReader::new(stream), db: 0, token: token(), eval_fallbacks: 0 };
        if let Some(password) = password {
            let reply = redis.cmd(&["AUTH", &password]);
            assert_eq!(reply, Reply::Status("OK".into()), "AUTH on the test Redis");
        }
        let databases = match redis.cmd(&["CONFIG", "GET", "databases"]) {
            Reply::Array(v) => v.get(1).and_then(Reply::int).unwrap_or(16) as u32,
            _ => 16,
        };
        assert!(databases > FIRST_DB, "the test Redis has {databases} databases; the tests need more than {FIRST_DB}");
        let started = Instant::now();
        loop {
            for db in FIRST_DB..databases {
                redis.select(db);
                let taken = redis.cmd(&["EVAL", TAKE, "1", HOLDER_KEY, &redis.token.clone(), &HOLD_MS.to_string()]);
                if taken == Reply::Int(1) {
                    redis.db = db;
                    return Some(redis);
                }
            }
            assert!(started.elapsed() < Duration::from_secs(60), "every test database of the test Redis stayed taken");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The database this test has.
    pub fn db(&self) -> u32 {
        self.db
    }

    fn select(&mut self, db: u32) {
        let reply = self.cmd(&["SELECT", &db.to_string()]);
        assert_eq!(reply, Reply::Status("OK".into()), "SELECT {db}");
    }

    /// Sends one command and reads its reply (an error reply is [`Reply::Error`]).
    pub fn cmd<S: AsRef<str>>(&mut self, args: &[S]) -> Reply {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref().as_bytes();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out).expect("write to the test Redis");
        self.read_reply()
    }

    /// Runs a script as the services do: `EVALSHA <sha1> 0 <argv...>`, then `EVAL <source> 0
    /// <argv...>` if Redis answers `NOSCRIPT`. The reply flattened as Spin gives it, or the text
    /// of an error reply.
    pub fn run_script<S: AsRef<str>>(
        &mut self,
        source: &str,
        sha1: &str,
        argv: &[S],
    ) -> Result<Vec<Option<String>>, String> {
        let call = |first: &str| {
            let mut call = vec![first.to_string(), "0".to_string()];
            call.extend(argv.iter().map(|a| a.as_ref().to_string()));
            call
        };
        let mut evalsha = vec!["EVALSHA".to_string()];
        evalsha.extend(call(sha1));
        match self.cmd(&evalsha) {
            Reply::Error(e) if e.starts_with("NOSCRIPT") => {
                self.eval_fallbacks += 1;
                let mut eval = vec!["EVAL".to_string()];
                eval.extend(call(source));
                match self.cmd(&eval) {
                    Reply::Error(e) => Err(e),
                    reply => Ok(reply.flat()),
                }
            }
            Reply::Error(e) => Err(e),
            reply => Ok(reply.flat()),
        }
    }

    /// The value of a key as text (`None` if it does not exist).
    pub fn get(&mut self, key: &str) -> Option<String> {
        self.cmd(&["GET", key]).text()
    }

    /// A key's time to live in ms (`-1` without one, `-2` when it does not exist).
    pub fn pttl(&mut self, key: &str) -> i64 {
        self.cmd(&["PTTL", key]).int().expect("PTTL answers an integer")
    }

    /// Whether a key exists.
    pub fn exists(&mut self, key: &str) -> bool {
        self.cmd(&["EXISTS", key]) == Reply::Int(1)
    }

    /// The keys of this test's database that match `pattern` (the holder key left out), sorted.
    pub fn keys(&mut self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> =
            self.cmd(&["KEYS", pattern]).flat().into_iter().flatten().filter(|k| k != HOLDER_KEY).collect();
        keys.sort();
        keys
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from the test Redis");
        assert!(line.ends_with("\r\n"), "the test Redis closed the connection (read {line:?})");
        line.truncate(line.len() - 2);
        line
    }

    fn read_reply(&mut self) -> Reply {
        let line = self.read_line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().expect("an integer reply")),
            "$" => {
                let len: i64 = rest.parse().expect("a bulk length");
                if len < 0 {
                    return Reply::Nil;
                }
                let mut bytes = vec![0u8; len as usize + 2];
                std::io::Read::read_exact(&mut self.reader, &mut bytes).expect("read a bulk reply");
                bytes.truncate(len as usize);
                Reply::Text(String::from_utf8(bytes).expect("UTF-8 replies"))
            }
            "*" => {
                let len: i64 = rest.parse().expect("an array length");
                if len < 0 {
                    return Reply::Nil;
                }
                Reply::Array((0..len).map(|_| self.read_reply()).collect())
            }
            _ => panic!("unexpected reply line {line:?}"),
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let token = self.token.clone();
        if self.db >= FIRST_DB && !std::thread::panicking() {
            self.cmd(&["EVAL", GIVE_BACK, "1", HOLDER_KEY, &token]);
        } else if self.db >= FIRST_DB {
            // A failed test: its data is left for a look until the next test takes the
            // database (at most HOLD_MS).
            eprintln!("redis-test-support: the failed test's keys are left in database {} for a look", self.db);
        }
    }
}

/// A token unique to this claim.
fn token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}:{}:{nanos}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// `host:port` and the password of `redis://[:password@]host[:port][/db]`.
fn parse_url(url: &str) -> (String, Option<String>) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let password = userinfo.and_then(|u| u.split_once(':').map(|(_, p)| p.to_string()).or(Some(u.to_string())));
    let host = hostpart.split(['/', '?']).next().unwrap_or(hostpart);
    let address = if host.contains(':') { host.to_string() } else { format!("{host}:6379") };
    (address, password.filter(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(parse_url("redis://:pw@127.0.0.1:46379"), ("127.0.0.1:46379".into(), Some("pw".into())));
        assert_eq!(parse_url("redis://127.0.0.1"), ("127.0.0.1:6379".into(), None));
        assert_eq!(parse_url("redis://h:1/3"), ("h:1".into(), None));
    }

    #[test]
    fn a_database_of_its_own_flattened_replies_and_the_noscript_fallback() {
        let Some(mut a) = TestRedis::claim() else { return };
        let Some(mut b) = TestRedis::claim() else { return };
        assert_ne!(a.db(), b.db());
        a.cmd(&["SET", "k", "a"]);
        assert_eq!(b.get("k"), None, "another test's database");
        assert_eq!(a.keys("*"), vec!["k".to_string()], "the holder key is not listed");
        drop(b);

        // A source Redis cannot have cached: EVALSHA finds nothing, EVAL runs it.
        let source = format!("-- {}\nreturn {{1, {{'x', false}}, 'y'}}", token());
        let unknown = "0000000000000000000000000000000000000000";
        let flat = vec![Some("1".to_string()), Some("x".to_string()), None, Some("y".to_string())];
        assert_eq!(a.run_script(&source, unknown, &[] as &[&str]), Ok(flat.clone()));
        assert_eq!(a.eval_fallbacks, 1);
        // Now cached under its SHA-1: EVALSHA runs it.
        let sha1 = a.cmd(&["SCRIPT", "LOAD", &source]).text().expect("a sha1");
        assert_eq!(a.run_script(&source, &sha1, &[] as &[&str]), Ok(flat));
        assert_eq!(a.eval_fallbacks, 1);
        assert!(a.run_script("return redis.call('NOSUCHCOMMAND')", unknown, &[] as &[&str]).is_err());
    }
}
