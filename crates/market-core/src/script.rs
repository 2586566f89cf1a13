//! A Redis Lua script as the services run it: its source (a `.lua` file next to the module that
//! owns it, loaded with `include_str!`) and its SHA-1, computed when the program is compiled.
//!
//! A script is run with `EVALSHA <sha1> 0 <argv...>`, which sends 40 bytes instead of the
//! source. A Redis that does not have the script cached (it was restarted, or never ran it)
//! answers `NOSCRIPT` without running anything; the caller then runs `EVAL <source> 0 <argv...>`,
//! which runs it and caches it for the next `EVALSHA` ([`is_noscript`] recognises that answer).
//! Every script takes its arguments in `ARGV` (no `KEYS`: the key names are fixed in the scripts,
//! one Redis, no cluster).

use crate::sha1;

/// A Lua script and its SHA-1 (the name Redis caches it under).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    source: &'static str,
    sha1: [u8; 40],
}

impl Script {
    /// The script of this source, its SHA-1 computed at compile time when used in a constant.
    pub const fn new(source: &'static str) -> Script {
        Script { source, sha1: sha1::hex(&sha1::digest(source.as_bytes())) }
    }

    /// The Lua source (what `EVAL` sends).
    pub const fn source(&self) -> &'static str {
        self.source
    }

    /// The SHA-1 of the source as 40 lower-case hex digits (what `EVALSHA` sends, and what
    /// Redis's `SCRIPT LOAD` answers).
    pub const fn sha1(&self) -> &str {
        match std::str::from_utf8(&self.sha1) {
            Ok(hex) => hex,
            Err(_) => panic!("hex digits are ASCII"),
        }
    }
}

/// Whether an error from running `EVALSHA` is Redis's `NOSCRIPT` answer (the script is not in
/// its cache, so it did not run).
///
/// Redis replies `-NOSCRIPT No matching script. Please use EVAL.`. A Wasm component does not see
/// that line: `spin:redis`'s `execute` turns an error reply into `error::other(<text>)`, where
/// the text is the host's `redis` crate error, formatted (`e.to_string()`, in Spin's
/// `factor-outbound-redis` as in our test host's `redis_host.rs`). With the `redis` crate 0.32
/// (Spin 4, the test host) that is `An error was signalled by the server - NoScriptError: No
/// matching script. Please use EVAL.`: the crate parses the `NOSCRIPT` code into its
/// `NoScriptError` kind and prints the kind's name, not the code; older versions (Spin 3) print
/// the same; a code the crate does not know is printed as sent (`NOSCRIPT: ...`). So any of the
/// code, the kind's name or Redis's message counts; none of them appears in any other error our
/// scripts or Redis give.
pub fn is_noscript(error: &str) -> bool {
    ["NOSCRIPT", "NoScriptError", "No matching script"].iter().any(|mark| error.contains(mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETURN_ONE: Script = Script::new("return 1");

    #[test]
    fn the_digest_is_the_sha1_of_the_source() {
        // `echo -n 'return 1' | sha1sum`, and what `SCRIPT LOAD 'return 1'` answers.
        assert_eq!(RETURN_ONE.sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert_eq!(RETURN_ONE.source(), "return 1");
    }

    #[test]
    fn the_digest_is_what_redis_script_load_answers() {
        let Some(mut redis) = redis_test_support::TestRedis::claim() else { return };
        for script in [RETURN_ONE, crate::idempotency::CLAIM] {
            let loaded = redis.cmd(&["SCRIPT", "LOAD", script.source()]);
            assert_eq!(loaded.text().as_deref(), Some(script.sha1()), "{}", script.source());
        }
        // Redis's own NOSCRIPT answer, as it sends it, is recognised.
        let unknown = redis.cmd(&["EVALSHA", &"0".repeat(40), "0"]);
        assert!(matches!(&unknown, redis_test_support::Reply::Error(e) if is_noscript(e)), "{unknown:?}");
    }

    #[test]
    fn noscript_is_recognised_as_every_host_reports_it() {
        for text in [
            // Redis's own line (a client that shows the reply as sent).
            "NOSCRIPT No matching script. Please use EVAL.",
            // Spin 4 and spin-test-host: `redis` 0.32's error, formatted.
            "An error was signalled by the server - NoScriptError: No matching script. Please use EVAL.",
            // A `redis` crate that does not know the code keeps it.
            "NOSCRIPT: No matching script. Please use EVAL.",
        ] {
            assert!(is_noscript(text), "{text}");
        }
        for text in [
            "An error was signalled by the server - ResponseError: user_script:1: Script attempted to access nonexistent global variable 'x'",
            "Broken pipe (os error 32)",
            "OOM command not allowed when used memory > 'maxmemory'.",
            "",
        ] {
            assert!(!is_noscript(text), "{text}");
        }
    }
}
