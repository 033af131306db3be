//! Session id validation: an id becomes a file name in the spool and part of an object key,
//! so only a safe alphabet is accepted.

use crate::error::RecorderError;

/// Longest accepted session id, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Checks that `id` is 1 to 128 bytes of `[A-Za-z0-9._:-]`, is not `.`, and holds no `..`.
/// Anything else (path separators, NUL, control characters, spaces, non-ASCII) is refused,
/// so an id can never name a file outside the spool or a surprising object key.
pub fn validate_session_id(id: &str) -> Result<(), RecorderError> {
    let fail = |reason| {
        Err(RecorderError::InvalidSessionId {
            id: id.chars().take(160).collect(),
            reason,
        })
    };
    if id.is_empty() {
        return fail("it is empty");
    }
    if id.len() > MAX_SESSION_ID_LEN {
        return fail("it is longer than 128 bytes");
    }
    if id.bytes().any(|b| b == b'/' || b == b'\\') {
        return fail("it contains a path separator");
    }
    if id.bytes().any(|b| b == 0) {
        return fail("it contains a NUL byte");
    }
    if id.chars().any(char::is_control) {
        return fail("it contains a control character");
    }
    if id == "." || id.contains("..") {
        return fail("it is '.' or contains '..'");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return fail("it contains a character outside A-Z a-z 0-9 . _ : -");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_ids() {
        for id in [
            "call-1",
            "RM_abc.123:xyz",
            "a",
            "550e8400-e29b-41d4-a716-446655440000",
            &"x".repeat(128),
        ] {
            validate_session_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }

    #[test]
    fn refuses_unsafe_ids() {
        for id in [
            "",
            ".",
            "..",
            "a/../b",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            "tab\there",
            "a b",
            "é",
            "x..y",
            &"x".repeat(129),
        ] {
            let err = validate_session_id(id).expect_err(id);
            let msg = err.to_string();
            assert!(msg.contains("invalid session id"), "{msg}");
        }
    }

    #[test]
    fn error_says_what_is_allowed() {
        let msg = validate_session_id("a/b").unwrap_err().to_string();
        assert!(
            msg.contains("path separator") && msg.contains("A-Z a-z 0-9"),
            "{msg}"
        );
    }
}
