//! Errors the replayer and CLI report: what failed, on which file or URL, and what to do.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppError {
    #[error("cannot use '{location}': {reason}")]
    BadLocation { location: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {source}")]
    Format {
        location: String,
        #[source]
        source: calltape_format::FormatError,
    },
    #[error("{location}: {message}{hint}")]
    Store {
        location: String,
        message: String,
        hint: &'static str,
    },
    #[error("{0}")]
    Usage(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("{0}")]
    Other(String),
    /// Whoever read our output went away (`calltape ls | head`): stop quietly, successfully.
    #[error("stdout was closed")]
    StdoutClosed,
}

impl AppError {
    pub fn store(location: &str, e: object_store::Error) -> AppError {
        let hint = match &e {
            object_store::Error::NotFound { .. } => {
                " (no object at that key: check the bucket and path)"
            }
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or your cloud credentials)"
            }
            _ => "",
        };
        let message = e.to_string();
        let hint = if hint.is_empty()
            && (message.contains("connect")
                || message.contains("error sending request")
                || message.contains("dns")
                || message.contains("timed out"))
        {
            " (is the endpoint reachable? for S3-compatible servers set AWS_ENDPOINT_URL and AWS_ALLOW_HTTP=true)"
        } else {
            hint
        };
        AppError::Store {
            location: location.to_string(),
            message,
            hint,
        }
    }

    /// Process exit code for this error (1 = failure; see `calltape verify` for 3).
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage(_) => 2,
            AppError::StdoutClosed => 0,
            _ => 1,
        }
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;
