//! `Idempotency-Key` semantics, shared by every mutating endpoint.
//!
//! A retry with the same key gets the first response without the work being done again; the
//! same key with a different request — another method, path or body; the query string is not
//! part of a request's identity — is refused (422); a retry while the first is still running
//! is refused (409, retry later). Records expire after [`DONE_TTL_SECONDS`]; a claim whose request
//! never finished (its server died) expires after [`PENDING_TTL_SECONDS`], after which the key
//! can be used again. Server errors (5xx) are not recorded: the request may simply be retried.
//!
//! This module is the pure part (records, the decision, and the script that claims a key);
//! `spin-kit` does the Redis I/O.

use crate::ApiError;
use crate::script::Script;
use crate::sha256::{Sha256, hex};
use serde::{Deserialize, Serialize};

/// How long a finished request's response is kept: 24 h.
pub const DONE_TTL_SECONDS: i64 = 24 * 60 * 60;
/// How long a claim of a running request holds the key.
pub const PENDING_TTL_SECONDS: i64 = 60;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// ARGV: the key, a pending record ([`Record::Pending`], encoded), its TTL in seconds
/// ([`PENDING_TTL_SECONDS`]). Claims the key if it is free; returns what it held before (`""`
/// when it was free), in one atomic step.
pub const CLAIM: Script = Script::new(include_str!("idempotency/claim.lua"));

/// What is stored under a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Record {
    /// A request with this key is running.
    Pending { fingerprint: String },
    /// A request with this key finished with this response.
    Done { fingerprint: String, status: u16, body: String },
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// First use of the key: do the work (the key is now claimed).
    Execute,
    /// Answer with the recorded response.
    Replay { status: u16, body: String },
    /// Refuse with this error.
    Refuse(ApiError),
}

impl Record {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(raw: &str) -> Option<Record> {
        serde_json::from_str(raw).ok()
    }
}

/// Checks a key taken from the `Idempotency-Key` header.
pub fn check_key(key: &str) -> Result<&str, ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"
        )));
    }
    Ok(key)
}

/// Identifies a request: the same key may only be reused for the same method, path and body.
/// The query string is not part of it (no endpoint reads one; anything after a `?` in `path` is
/// ignored). A SHA-256 of the three, in hex: 64 characters whatever the request's size, so that
/// the record kept under a key for 24 h stays small.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let mut h = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes()] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    hex(&h.finish())
}

/// Decides from what the key held before this request claimed it (`None`: it was free).
pub fn decide(prior: Option<Record>, fingerprint: &str) -> Decision {
    match prior {
        None => Decision::Execute,
        Some(Record::Pending { fingerprint: fp }) | Some(Record::Done { fingerprint: fp, .. }) if fp != fingerprint => {
            Decision::Refuse(ApiError::Unprocessable(
                "this Idempotency-Key was used for another request (another method, path or body)".into(),
            ))
        }
        Some(Record::Pending { .. }) => Decision::Refuse(ApiError::Conflict(
            "a request with this Idempotency-Key is still running; retry later".into(),
        )),
        Some(Record::Done { status, body, .. }) => Decision::Replay { status, body },
    }
}

/// Whether a response is final and so recorded for replays (5xx are not: retry may succeed).
pub fn is_recorded(status: u16) -> bool {
    status < 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_key_executes_and_finished_key_replays() {
        assert_eq!(decide(None, "POST /a"), Decision::Execute);
        let done = Record::Done { fingerprint: "POST /a".into(), status: 201, body: "{}".into() };
        assert_eq!(decide(Some(done), "POST /a"), Decision::Replay { status: 201, body: "{}".into() });
    }

    #[test]
    fn key_reused_for_another_request_is_422_and_running_one_409() {
        let done = Record::Done { fingerprint: "POST /a".into(), status: 200, body: "{}".into() };
        match decide(Some(done), "POST /b") {
            Decision::Refuse(e) => assert_eq!(e.status(), 422),
            other => panic!("{other:?}"),
        }
        let pending = Record::Pending { fingerprint: "POST /a".into() };
        match decide(Some(pending.clone()), "POST /a") {
            Decision::Refuse(e) => assert_eq!(e.status(), 409),
            other => panic!("{other:?}"),
        }
        match decide(Some(pending), "POST /b") {
            Decision::Refuse(e) => assert_eq!(e.status(), 422),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fingerprints_are_method_path_and_body_in_a_fixed_size() {
        let fp = fingerprint("POST", "/payment/pay/a/1", b"");
        assert_eq!(fp.len(), 64);
        assert_eq!(fingerprint("POST", "/payment/pay/a/1?pad=xxxx", b""), fp, "the query is not part of it");
        assert_eq!(fingerprint("POST", &format!("/payment/pay/a/1?{}", "x".repeat(60_000)), b""), fp);
        assert_ne!(fingerprint("POST", "/payment/pay/a/1", b"{}"), fp, "the body is");
        assert_ne!(fingerprint("POST", "/payment/pay/a/2", b""), fp);
        assert_ne!(fingerprint("PUT", "/payment/pay/a/1", b""), fp);
        assert_ne!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/ab", b""),
            "parts cannot slide into each other"
        );
        assert_eq!(fingerprint("POST", &"/x".repeat(30_000), &[7; 100_000]).len(), 64);
    }

    #[test]
    fn records_round_trip_and_garbage_is_none() {
        let r = Record::Done { fingerprint: "POST /a".into(), status: 409, body: "{\"x\":1}".into() };
        assert_eq!(Record::decode(&r.encode()), Some(r));
        assert_eq!(Record::decode("nope"), None);
    }

    #[test]
    fn the_claim_script_takes_a_free_key_once_and_answers_what_it_held() {
        let Some(mut redis) = redis_test_support::TestRedis::claim() else { return };
        let mut claim = |key: &str, record: &Record| {
            let argv = [key.to_string(), record.encode(), PENDING_TTL_SECONDS.to_string()];
            let reply = redis.run_script(CLAIM.source(), CLAIM.sha1(), &argv).expect("CLAIM runs");
            redis_test_support::texts(&reply).concat()
        };
        let pending = Record::Pending { fingerprint: fingerprint("POST", "/a", b"") };
        assert_eq!(claim("stock:idem:k", &pending), "", "a free key is claimed");
        let other = Record::Pending { fingerprint: fingerprint("POST", "/b", b"") };
        assert_eq!(Record::decode(&claim("stock:idem:k", &other)), Some(pending.clone()), "held: the first claim");
        assert_eq!(claim("stock:idem:j", &other), "", "another key");
        let ttl = redis.pttl("stock:idem:k");
        assert!(ttl > 0 && ttl <= PENDING_TTL_SECONDS * 1000, "{ttl}");
    }

    #[test]
    fn keys_are_checked_and_5xx_not_recorded() {
        assert!(check_key("abc-123").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("a b").is_err());
        assert!(check_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(is_recorded(200) && is_recorded(409) && !is_recorded(503));
    }
}
