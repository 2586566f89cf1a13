//! Passwords are stored as argon2id hashes (PHC strings: algorithm, parameters, salt and hash).
//!
//! Parameters: 19 MiB of memory, 2 passes, 1 lane: the first of OWASP's recommended argon2id
//! settings, and what one login request can afford in a serverless instance (the time it takes
//! under Spin is in docs/performance.md). A hash carries its own parameters, so a later change
//! of these still verifies the hashes stored before it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory, in KiB.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const PASSES: u32 = 2;
/// Lanes (parallelism).
pub const LANES: u32 = 1;
/// The salt's length in bytes (random per hash: the caller draws it).
pub const SALT_BYTES: usize = 16;

/// A hash of a password nobody has, with the same parameters: verified against when the
/// username is unknown, so that an unknown user costs what a wrong password costs.
pub const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZGVjb3ktc2FsdC0xMjM0NQ$6FWVluYh9vEA7tAF1l32YZDeij2XCbgIdw8CGEc7/8A";

fn hasher() -> Argon2<'static> {
    #[allow(clippy::unwrap_used)] // constant parameters within argon2's bounds (tested)
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` hashed with `salt`.
pub fn hash(password: &str, salt: &[u8; SALT_BYTES]) -> Result<String, String> {
    let salt = SaltString::encode_b64(salt).map_err(|e| e.to_string())?;
    hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` is the one `stored` (a PHC string) was made from. A stored value that is
/// not a PHC string matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Verifies `password` against the decoy hash: the same work as [`verify`] with a real one,
/// and always `false`.
pub fn verify_decoy(password: &str) -> bool {
    std::hint::black_box(verify(password, DECOY_HASH));
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_is_argon2id_with_the_parameters() {
        let stored = hash("correct horse battery", &[7; SALT_BYTES]).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert!(!verify("correct horse battery", "plaintext"));
        assert_ne!(stored, hash("correct horse battery", &[8; SALT_BYTES]).unwrap(), "salted");
    }

    #[test]
    fn the_decoy_is_a_real_hash_with_the_same_parameters() {
        let parsed = PasswordHash::new(DECOY_HASH).expect("a PHC string");
        let fresh = hash("x", &[1; SALT_BYTES]).unwrap();
        let fresh = PasswordHash::new(&fresh).unwrap();
        assert_eq!((parsed.algorithm, parsed.params.to_string()), (fresh.algorithm, fresh.params.to_string()));
        assert_eq!(parsed.hash.map(|h| h.len()), fresh.hash.map(|h| h.len()));
        assert!(!verify_decoy("anything"));
    }
}
