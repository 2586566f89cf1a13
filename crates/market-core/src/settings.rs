//! Parsing of the settings a component reads from its variables. A value the component cannot
//! use is a deployment error ([`ApiError::Misconfigured`], 500), never guessed at: it is not the
//! client's input.

use crate::ApiError;

/// An on/off setting: exactly `"true"` or `"false"`.
pub fn parse_switch(name: &str, raw: &str) -> Result<bool, ApiError> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        other => {
            Err(ApiError::Misconfigured(format!("the variable {name} must be \"true\" or \"false\", not {other:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_true_or_false_and_nothing_else() {
        assert_eq!(parse_switch("admin_routes", "true"), Ok(true));
        assert_eq!(parse_switch("admin_routes", "false"), Ok(false));
        for odd in ["", "TRUE", "yes", "1", " true", "false\n"] {
            let err = parse_switch("admin_routes", odd).unwrap_err();
            assert_eq!((err.status(), err.code()), (500, "misconfigured"), "{odd:?}");
            assert!(err.public_message().contains("admin_routes"), "{err}");
        }
    }
}
