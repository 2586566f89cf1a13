//! Parsing of path parameters: every endpoint refuses bad input the same way, with a 400.

use crate::ApiError;

/// Longest identifier accepted in a path (ids are UUIDs or small decimal numbers).
pub const MAX_ID_LEN: usize = 128;

/// Longest part of a refused value that an error message quotes.
const MAX_QUOTED: usize = 40;

/// `raw` as an error message quotes it: at most [`MAX_QUOTED`] characters, so that an answer
/// (kept for 24 h when the request has an `Idempotency-Key`) stays small whatever the input.
fn quoted(raw: &str) -> String {
    match raw.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{:?}… ({} bytes)", &raw[..end], raw.len()),
        None => format!("{raw:?}"),
    }
}

/// Parses a quantity, amount, price or credit: a non-negative integer that fits in `i64`.
pub fn parse_non_negative(name: &str, raw: &str) -> Result<i64, ApiError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!("{name} must be a non-negative integer, got {}", quoted(raw))));
    }
    raw.parse::<i64>()
        .map_err(|_| ApiError::BadRequest(format!("{name} is too large (at most {}), got {}", i64::MAX, quoted(raw))))
}

/// Parses a count bounded by `max` (e.g. how many entities a batch creates).
pub fn parse_count(name: &str, raw: &str, max: i64) -> Result<i64, ApiError> {
    let n = parse_non_negative(name, raw)?;
    if n > max {
        return Err(ApiError::BadRequest(format!("{name} must be at most {max}, got {n}")));
    }
    Ok(n)
}

/// Checks an entity id taken from the path: 1 to [`MAX_ID_LEN`] letters, digits or `-_.~:`,
/// so that it can be put back into a URL path (service calls) without escaping.
pub fn parse_id<'a>(name: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':');
    if raw.is_empty() || raw.len() > MAX_ID_LEN || !raw.bytes().all(url_safe) {
        return Err(ApiError::BadRequest(format!(
            "{name} must be 1 to {MAX_ID_LEN} letters, digits or '-', '_', '.', '~', ':'"
        )));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_zero_and_large_values() {
        assert_eq!(parse_non_negative("amount", "0"), Ok(0));
        assert_eq!(parse_non_negative("amount", "42"), Ok(42));
        assert_eq!(parse_non_negative("amount", "9223372036854775807"), Ok(i64::MAX));
    }

    #[test]
    fn refuses_negative_non_numeric_and_overflowing_values() {
        for raw in ["-1", "abc", "", "1.5", "+3", " 1", "9223372036854775808", "99999999999999999999999"] {
            let err = parse_non_negative("amount", raw).unwrap_err();
            assert_eq!(err.status(), 400, "{raw:?} should be refused");
        }
    }

    #[test]
    fn messages_quote_a_bounded_part_of_the_input() {
        let huge = "9".repeat(60_000);
        let message = parse_non_negative("amount", &huge).unwrap_err().message();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("60000 bytes"), "{message}");
        let message = parse_non_negative("amount", &"é".repeat(50)).unwrap_err().message();
        assert!(message.len() < 200, "{message}");
        assert!(parse_non_negative("amount", "x1").unwrap_err().message().ends_with("got \"x1\""));
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(parse_count("n", "10", 10), Ok(10));
        assert_eq!(parse_count("n", "11", 10).unwrap_err().status(), 400);
    }

    #[test]
    fn ids_must_be_short_printable_ascii() {
        assert_eq!(parse_id("item_id", "abc-123"), Ok("abc-123"));
        assert_eq!(parse_id("saga_id", "o-1.0.2"), Ok("o-1.0.2"));
        assert!(parse_id("item_id", "a/b").is_err());
        assert!(parse_id("item_id", "a%2F").is_err());
        assert!(parse_id("item_id", "").is_err());
        assert!(parse_id("item_id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(parse_id("item_id", "a b").is_err());
        assert!(parse_id("item_id", "é").is_err());
    }
}
