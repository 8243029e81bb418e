//! Validation of the identifiers and texts a community sends us.

use crate::error::ApiError;

/// The longest id (post, user, idempotency key) we accept, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// The longest tip message, in characters (Unicode scalar values).
pub const MAX_MESSAGE_CHARS: usize = 280;

/// A community's identifier for a user or a post: 1–128 bytes of printable text.
pub fn external_id(field: &'static str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(
            "empty_id",
            format!("{field} must not be empty"),
        ));
    }
    if value.len() > MAX_ID_LEN {
        return Err(ApiError::invalid(
            "id_too_long",
            format!("{field} must be at most {MAX_ID_LEN} bytes"),
        ));
    }
    if value.chars().any(|c| c.is_control()) || value.trim() != value {
        return Err(ApiError::invalid(
            "id_malformed",
            format!("{field} must not contain control characters or surrounding spaces"),
        ));
    }
    Ok(value.to_string())
}

/// An optional tip message: at most 280 characters, no control characters but newlines and tabs.
pub fn tip_message(value: &str) -> Result<String, ApiError> {
    if value.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::invalid(
            "message_too_long",
            format!("message must be at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(
            "message_malformed",
            "message must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(external_id("post_id", "42").unwrap(), "42");
        assert_eq!(external_id("post_id", "").unwrap_err().reason, "empty_id");
        assert_eq!(
            external_id("post_id", &"x".repeat(129)).unwrap_err().reason,
            "id_too_long"
        );
        assert_eq!(
            external_id("post_id", "a\nb").unwrap_err().reason,
            "id_malformed"
        );
        assert_eq!(
            external_id("post_id", " a").unwrap_err().reason,
            "id_malformed"
        );
    }

    #[test]
    fn messages() {
        assert!(tip_message(&"é".repeat(280)).is_ok());
        assert_eq!(
            tip_message(&"é".repeat(281)).unwrap_err().reason,
            "message_too_long"
        );
        assert!(tip_message("thanks!\nreally").is_ok());
        assert_eq!(
            tip_message("a\u{7}").unwrap_err().reason,
            "message_malformed"
        );
    }
}
