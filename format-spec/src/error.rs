//! The one error type of the format crate: what failed, and at which byte offset.

use thiserror::Error;

/// Everything that can go wrong while encoding or decoding an archive.
///
/// Offsets are absolute byte offsets in the archive file where known, so a user
/// can say "the chunk at byte 81 234 is damaged" instead of "bad file".
#[derive(Debug, Error)]
pub enum FormatError {
    #[error("not a calltape archive (the first bytes are not the calltape magic)")]
    NotAnArchive,
    #[error(
        "archive format version {major}.{minor} is newer than this reader (supports {supported}.x)"
    )]
    UnsupportedVersion { major: u8, minor: u8, supported: u8 },
    #[error("archive is truncated at byte {offset}: needed {needed} more bytes")]
    Truncated { offset: u64, needed: u64 },
    #[error("checksum mismatch in the {what} at byte {offset} (stored {stored:#010x}, computed {computed:#010x})")]
    BadChecksum {
        what: &'static str,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("{what} at byte {offset} is {len} bytes, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        offset: u64,
        len: u64,
        limit: u64,
    },
    /// A count read from the file (records, JSON values, …) over what a reader holds.
    #[error("{what} at byte {offset}: {count}, over the reader's limit of {limit} (the file is damaged or was not written by a calltape writer)")]
    TooMany {
        what: &'static str,
        offset: u64,
        count: u64,
        limit: u64,
    },
    #[error("malformed {what} at byte {offset}: {reason}")]
    Malformed {
        what: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("no valid footer: the archive was not closed (run recovery to read it)")]
    NoFooter,
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("the writer is already finished")]
    Finished,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl FormatError {
    pub(crate) fn malformed(what: &'static str, offset: u64, reason: impl Into<String>) -> Self {
        FormatError::Malformed {
            what,
            offset,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
