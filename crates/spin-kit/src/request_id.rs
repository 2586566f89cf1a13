//! One id per request, to find a request's log lines from its answer (`x-request-id`, and the
//! `request_id` of an error body); a request chained from another component keeps its caller's
//! (see [`crate::request_context::for_request`]).

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// Random keys drawn once per instance (from the host's randomness, as every `HashMap`'s).
    static KEYS: RandomState = RandomState::new();
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// A new id: 16 hex digits, a keyed hash of this instance's request count and the time, so ids
/// of different instances (whose keys differ) and of one instance (whose count grows) differ.
pub fn new() -> String {
    format!("{:016x}", random_u64())
}

/// 64 bits that differ from call to call and from instance to instance (not for secrets): the
/// keyed hash behind [`new`], also used for new trace ids.
pub fn random_u64() -> u64 {
    let count = COUNT.with(|c| {
        c.set(c.get().wrapping_add(1));
        c.get()
    });
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let mut h = KEYS.with(|k| k.build_hasher());
    h.write_u64(count);
    h.write_u128(nanos);
    h.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_16_hex_digits_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| super::new()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
