//! The recorder's error type: what failed, on which URL, path or session, and what to do.

use std::path::PathBuf;

use thiserror::Error;

/// Everything the recorder's fallible calls can return. Recording calls (`Session::event`,
/// `Session::audio`, …) never fail: they drop and count instead, see [`crate::SessionStatus`].
#[derive(Debug, Error)]
pub enum RecorderError {
    #[error(
        "invalid session id {id:?}: {reason}; use 1 to 128 bytes of A-Z a-z 0-9 '.' '_' ':' '-'"
    )]
    InvalidSessionId { id: String, reason: &'static str },

    #[error("invalid session info for {session_id:?}: {reason}")]
    InvalidSessionInfo { session_id: String, reason: String },

    #[error(
        "no destination configured: call RecorderBuilder::destination(\"s3://bucket/prefix\") \
         (or file:///dir, gs://, az://, memory://) or RecorderBuilder::store(..)"
    )]
    NoDestination,

    #[error("invalid destination URL {url:?}: {reason}")]
    InvalidDestination { url: String, reason: String },

    #[error(
        "cannot set up the object store for {url}: {source}; check the URL and the store \
         settings (for S3: AWS_REGION, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP, or RecorderBuilder::store_option)"
    )]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },

    #[error(
        "spool directory {}: {action} failed: {source}; make sure it exists, is writable by \
         this process and has free space (RecorderBuilder::spool_dir)", path.display()
    )]
    Spool {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "session {session_id:?} is already recording in this recorder; session ids must be unique"
    )]
    DuplicateSession { session_id: String },

    #[error("the recorder is shutting down and takes no new sessions")]
    ShuttingDown,

    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        setting: &'static str,
        reason: String,
    },

    #[error("invalid redaction rule {pattern:?}: {source}")]
    InvalidRedactionRule {
        pattern: String,
        #[source]
        source: regex::Error,
    },

    #[error("invalid key template {template:?}: {reason}")]
    InvalidKeyTemplate { template: String, reason: String },

    #[error(
        "the session's background writer for {session_id:?} stopped unexpectedly; its spool \
         file is recovered and uploaded on the next recorder start"
    )]
    WriterLost { session_id: String },

    #[error("Recorder::build must run inside a tokio runtime")]
    NoRuntime,
}
