//! Access tokens of the marketplace: the [`Claims`] a token carries, issuing tokens as JWTs
//! signed with Ed25519 (`alg: EdDSA`, [`Issuer`], which only the login component holds), and
//! verifying them with the public key alone ([`Verifier`], every component that acts for a
//! user). Free of Spin types; the clock is the caller's (`now`, Unix seconds), so expiry is
//! tested without waiting. Names the revocation list's keys ([`revocation_key`]); reading it and
//! the HTTP mapping of [`TokenError`] belong to the components' shared glue, not here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Who issues the tokens (the `iss` claim every verifier requires).
pub const ISSUER: &str = "marketplace-accounts";

/// What a token says: whose it is, what it may do, and when it stops counting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id (the subject).
    pub sub: String,
    /// The token's own id, for revocation.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds: from then on the token is refused.
    pub exp: u64,
    /// The issuer, [`ISSUER`].
    pub iss: String,
    /// Whether the user holds the admin role.
    #[serde(default)]
    pub admin: bool,
}

/// Why a token was refused. Every kind is the client's (401); none says more than that to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT of ours: bad encoding, another algorithm (`none` included), a bad signature,
    /// another key, another issuer, or claims missing.
    Invalid(String),
    /// Signed by us, but past its `exp`.
    Expired,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Invalid(why) => write!(f, "invalid token: {why}"),
            TokenError::Expired => write!(f, "the token has expired"),
        }
    }
}

impl std::error::Error for TokenError {}

/// A key that cannot be used (a deployment error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unusable token key: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

/// Issues tokens: holds the Ed25519 private key.
pub struct Issuer {
    key: EncodingKey,
    public_key: [u8; 32],
}

impl Issuer {
    /// From the 32-byte Ed25519 seed (the secret).
    pub fn from_seed(seed: &[u8]) -> Result<Issuer, KeyError> {
        let seed: [u8; 32] =
            seed.try_into().map_err(|_| KeyError(format!("a seed is 32 bytes, not {}", seed.len())))?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = signing.to_pkcs8_der().map_err(|e| KeyError(e.to_string()))?;
        Ok(Issuer { key: EncodingKey::from_ed_der(der.as_bytes()), public_key: signing.verifying_key().to_bytes() })
    }

    /// From the seed as configured: 32 bytes in URL-safe base64 without padding (43 characters).
    pub fn from_seed_text(text: &str) -> Result<Issuer, KeyError> {
        Issuer::from_seed(&decode_key("seed", text)?)
    }

    /// The public key that verifies this issuer's tokens (32 bytes).
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// A token for `claims`; an error only if the key cannot sign.
    pub fn issue(&self, claims: &Claims) -> Result<String, KeyError> {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &self.key).map_err(|e| KeyError(e.to_string()))
    }
}

/// Verifies tokens with the public key only.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    /// From the 32-byte Ed25519 public key.
    pub fn from_public_key(public_key: &[u8]) -> Result<Verifier, KeyError> {
        let key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| KeyError(format!("a public key is 32 bytes, not {}", public_key.len())))?;
        ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|e| KeyError(e.to_string()))?;
        // EdDSA only, whatever the token's header says; expiry is checked against the caller's
        // clock below, not the library's.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.required_spec_claims = ["sub", "exp", "iss"].iter().map(|c| c.to_string()).collect();
        validation.set_issuer(&[ISSUER]);
        Ok(Verifier { key: DecodingKey::from_ed_der(&key), validation })
    }

    /// From the public key as configured: 32 bytes in URL-safe base64 without padding.
    pub fn from_public_key_text(text: &str) -> Result<Verifier, KeyError> {
        Verifier::from_public_key(&decode_key("public key", text)?)
    }

    /// The claims of `token` if it is ours and not expired at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// The Redis key (database of the variable `auth_revocations_address`) under which the accounts
/// service lists a revoked token's id until the token would have expired. The accounts service
/// writes it (logout); every component that checks tokens reads it ([`TOKEN_CHECK`]).
pub fn revocation_key(jti: &str) -> String {
    format!("accounts:revoked:{jti}")
}

/// The digest [`issued_key`] names a token by: SHA-256 of the whole token (header, claims and
/// signature), in hex.
pub fn token_digest(token: &str) -> String {
    let mut digest = market_core::sha256::Sha256::new();
    digest.update(token.as_bytes());
    market_core::sha256::hex(&digest.finish())
}

/// The Redis key under which the login component lists a token it issued, until the token
/// expires: a component that finds it there has the accounts service's word that exactly this
/// token (its digest covers the signature) is ours, and reads its claims without checking the
/// signature again ([`claims_of_issued`]). Only the login component writes it.
pub fn issued_key(token: &str) -> String {
    format!("accounts:issued:{}", token_digest(token))
}

/// What the accounts service's lists say of a token, in one call per request: ARGV its `jti`
/// and [`token_digest`]; reply `revoked`, `issued` or `unknown` ([`ListedAs`]).
pub const TOKEN_CHECK: market_core::Script = market_core::Script::new(include_str!("redis_scripts/token_check.lua"));

/// [`TOKEN_CHECK`]'s reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedAs {
    Revoked,
    Issued,
    Unknown,
}

impl ListedAs {
    pub fn parse(reply: &str) -> ListedAs {
        match reply {
            "revoked" => ListedAs::Revoked,
            "issued" => ListedAs::Issued,
            _ => ListedAs::Unknown,
        }
    }
}

/// The claims a token carries, read without checking its signature: for a token the login
/// component listed as issued ([`issued_key`]), and to find the `jti` to look up. Our issuer and
/// expiry at `now` are checked.
pub fn claims_of_issued(token: &str, now: u64) -> Result<Claims, TokenError> {
    let invalid = |why: &str| TokenError::Invalid(why.to_string());
    let payload = token.split('.').nth(1).ok_or_else(|| invalid("not a JWT"))?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid("claims are not base64url"))?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| invalid("claims are not ours"))?;
    if claims.iss != ISSUER {
        return Err(invalid("another issuer"));
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// `bytes` as a key is configured: URL-safe base64 without padding.
pub fn key_text(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_key(what: &str, text: &str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|e| KeyError(format!("the {what} is not URL-safe base64 without padding: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            sub: "user-1".into(),
            jti: "token-1".into(),
            iat: NOW,
            exp: NOW + 3600,
            iss: ISSUER.into(),
            admin: false,
        }
    }

    fn pair(seed: u8) -> (Issuer, Verifier) {
        let issuer = Issuer::from_seed(&[seed; 32]).expect("issuer");
        let verifier = Verifier::from_public_key(&issuer.public_key()).expect("verifier");
        (issuer, verifier)
    }

    fn b64(bytes: &[u8]) -> String {
        key_text(bytes)
    }

    #[test]
    fn an_issued_tokens_claims_are_read_and_its_digest_covers_the_signature() {
        let (issuer, _) = pair(1);
        let token = issuer.issue(&claims()).expect("token");
        assert_eq!(claims_of_issued(&token, NOW), Ok(claims()));
        assert_eq!(claims_of_issued(&token, NOW + 3600), Err(TokenError::Expired));
        assert!(matches!(claims_of_issued("garbage", NOW), Err(TokenError::Invalid(_))));
        let (other, _) = pair(2);
        let forged = other.issue(&claims()).expect("token");
        assert_ne!(issued_key(&token), issued_key(&forged), "same claims, another signature");
        assert_eq!(issued_key(&token).len(), "accounts:issued:".len() + 64);
        assert_eq!(ListedAs::parse("issued"), ListedAs::Issued);
    }

    #[test]
    fn keys_are_configured_as_url_safe_base64() {
        let issuer = Issuer::from_seed_text(&key_text(&[7; 32])).expect("issuer");
        let verifier = Verifier::from_public_key_text(&key_text(&issuer.public_key())).expect("verifier");
        let token = issuer.issue(&claims()).expect("token");
        assert_eq!(verifier.verify(&token, NOW), Ok(claims()));
        assert!(Issuer::from_seed_text("not base64!").is_err());
        assert!(Verifier::from_public_key_text(&key_text(&[1; 31])).is_err());
    }

    #[test]
    fn a_token_it_issued_verifies_to_its_claims() {
        let (issuer, verifier) = pair(1);
        let token = issuer.issue(&claims()).expect("token");
        assert_eq!(verifier.verify(&token, NOW), Ok(claims()));
        assert!(token.starts_with(&b64(br#"{"typ":"JWT","alg":"EdDSA"}"#)), "{token}");
    }

    #[test]
    fn an_expired_token_is_refused_from_its_exp_on() {
        let (issuer, verifier) = pair(1);
        let token = issuer.issue(&claims()).expect("token");
        assert!(verifier.verify(&token, NOW + 3599).is_ok());
        assert_eq!(verifier.verify(&token, NOW + 3600), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_of_another_key_is_refused() {
        let (other, _) = pair(2);
        let (_, verifier) = pair(1);
        let token = other.issue(&claims()).expect("token");
        assert!(matches!(verifier.verify(&token, NOW), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let (issuer, verifier) = pair(1);
        let token = issuer.issue(&claims()).expect("token");
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged.sub = "user-2".into();
        forged.admin = true;
        let payload = b64(serde_json::to_string(&forged).expect("json").as_bytes());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert!(matches!(verifier.verify(&tampered, NOW), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn alg_none_and_an_hmac_keyed_with_the_public_key_are_refused() {
        let (issuer, verifier) = pair(1);
        let payload = b64(serde_json::to_string(&claims()).expect("json").as_bytes());
        let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(matches!(verifier.verify(&none, NOW), Err(TokenError::Invalid(_))));
        // The classic confusion: HS256 with the public key as the shared secret.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(&issuer.public_key()),
        )
        .expect("hs256");
        assert!(matches!(verifier.verify(&hs, NOW), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn another_issuer_garbage_and_bad_keys_are_refused() {
        let (issuer, verifier) = pair(1);
        let mut foreign = claims();
        foreign.iss = "someone-else".into();
        let token = issuer.issue(&foreign).expect("token");
        assert!(matches!(verifier.verify(&token, NOW), Err(TokenError::Invalid(_))));
        for garbage in ["", "a.b.c", "not a token", "....", "eyJhbGciOiJFZERTQSJ9.e30."] {
            assert!(matches!(verifier.verify(garbage, NOW), Err(TokenError::Invalid(_))), "{garbage:?}");
        }
        assert!(Issuer::from_seed(&[1; 31]).is_err());
        assert!(Verifier::from_public_key(&[1; 33]).is_err());
    }
}
