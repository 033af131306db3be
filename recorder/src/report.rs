//! What the recorder tells its caller: per-session status, finish and upload reports, and the
//! recorder's health.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where an archive ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Stored and verified under the report's key; the spool copy is deleted.
    Uploaded,
    /// Still in the spool at `path` (the store failed, the deadline passed, or recording
    /// failed before the archive could be closed). It is uploaded by
    /// [`crate::Recorder::upload_pending`], the periodic retry, or the next recorder start.
    InSpool { path: PathBuf, reason: String },
}

/// The result of uploading one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    pub session_id: String,
    /// Object key (path inside the store, prefix included).
    pub key: String,
    /// Size of the archive in bytes.
    pub bytes: u64,
    /// The archive was rebuilt by recovery (crash, kill, full disk).
    pub recovered: bool,
    pub outcome: UploadOutcome,
}

impl UploadReport {
    pub fn is_uploaded(&self) -> bool {
        self.outcome == UploadOutcome::Uploaded
    }
}

/// What [`crate::Session::finish`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishReport {
    pub upload: UploadReport,
    /// Audio samples (per channel, all tracks) dropped because the queue or the memory budget
    /// was full, or the spool failed.
    pub dropped_samples: u64,
    /// Control records dropped for the same reasons.
    pub dropped_records: u64,
    /// The first recording error of the session (e.g. the spool disk filled up), if any.
    pub error: Option<String>,
}

/// Lifecycle of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Recording,
    /// `finish` was called (or the recorder is shutting down): new records are refused.
    Finishing,
    Finished,
}

/// A snapshot of one session's counters ([`crate::Session::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub session_id: String,
    pub state: SessionState,
    /// Recording failed (spool unwritable or full): records are now counted and dropped. A
    /// session whose spool file could not be created is degraded until the writer manages to
    /// create it (it tries once a second).
    pub degraded: bool,
    /// Records written to the spool archive so far (audio frames included).
    pub records_written: u64,
    pub dropped_samples: u64,
    pub dropped_records: u64,
    /// The first error of the session; later errors are only counted.
    pub error: Option<String>,
}

/// A problem the recorder hit in the background, handed to the `on_error` callback once per
/// session (or once per spool file for uploads) and kept as [`Health::last_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub session_id: Option<String>,
    pub message: String,
}

/// The `on_error` callback.
pub(crate) type IssueFn = dyn Fn(&Issue) + Send + Sync;

/// Where background problems go: counted, the last one kept for [`Health`], and each handed
/// to the `on_error` callback. Shared by the writer threads and the uploads.
pub(crate) struct Issues {
    count: AtomicU64,
    last: Mutex<Option<String>>,
    on_error: Option<Arc<IssueFn>>,
}

impl Issues {
    pub(crate) fn new(on_error: Option<Arc<IssueFn>>) -> Self {
        Issues {
            count: AtomicU64::new(0),
            last: Mutex::new(None),
            on_error,
        }
    }

    /// Counts a problem, keeps it as the last error and tells the `on_error` callback.
    pub(crate) fn report(&self, session_id: Option<&str>, message: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        if let Some(f) = &self.on_error {
            f(&Issue {
                session_id: session_id.map(str::to_string),
                message,
            });
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn last(&self) -> Option<String> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A snapshot of the recorder ([`crate::Recorder::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub open_sessions: usize,
    /// Bytes held by all sessions, against the memory budget: queued records and audio, and
    /// the open chunks of their archives.
    pub queued_bytes: usize,
    pub memory_budget: usize,
    /// Problems reported so far (each session's first error, failed uploads, …).
    pub errors: u64,
    pub last_error: Option<String>,
}

/// What [`crate::Recorder::shutdown`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sessions finished by the shutdown (or finishing while it ran), with their outcome.
    pub sessions: Vec<FinishReport>,
    /// Other spool archives uploaded (or tried) while shutting down.
    pub pending: Vec<UploadReport>,
    /// Sessions that did not close within the deadline: their spool files stay and are
    /// recovered and uploaded on the next start.
    pub timed_out: Vec<String>,
}
