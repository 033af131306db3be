//! What the recorder reports, as read-only Python objects: upload and finish reports, session
//! status, the recorder's health, shutdown reports and background issues.

use calltape_recorder as rec;
use pyo3::prelude::*;

/// `None` or the quoted string, as Python's repr shows them.
fn opt(v: &Option<String>) -> String {
    v.as_ref().map_or("None".into(), |s| format!("{s:?}"))
}

/// `True` / `False`.
fn flag(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Where one archive went: uploaded under `key`, or still in the spool at `spool_path`.
#[pyclass(module = "calltape._calltape", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct UploadReport {
    /// The session the archive belongs to.
    pub session_id: String,
    /// Object key (path inside the store, prefix included); empty when not uploaded.
    pub key: String,
    /// Size of the archive in bytes.
    pub bytes: u64,
    /// The archive was rebuilt by crash recovery.
    pub recovered: bool,
    /// Stored and verified (the spool copy is deleted).
    pub uploaded: bool,
    /// Where the archive waits when it was not uploaded.
    pub spool_path: Option<String>,
    /// Why it was not uploaded (it is retried later, never lost).
    pub reason: Option<String>,
}

#[pymethods]
impl UploadReport {
    fn __repr__(&self) -> String {
        match &self.spool_path {
            None => format!(
                "UploadReport(session_id={:?}, key={:?}, bytes={}, recovered={}, uploaded=True)",
                self.session_id,
                self.key,
                self.bytes,
                flag(self.recovered)
            ),
            Some(p) => format!(
                "UploadReport(session_id={:?}, uploaded=False, spool_path={p:?}, reason={:?})",
                self.session_id,
                self.reason.as_deref().unwrap_or("")
            ),
        }
    }
}

impl From<rec::UploadReport> for UploadReport {
    fn from(r: rec::UploadReport) -> Self {
        let (uploaded, spool_path, reason) = match r.outcome {
            rec::UploadOutcome::Uploaded => (true, None, None),
            rec::UploadOutcome::InSpool { path, reason } => {
                (false, Some(path.display().to_string()), Some(reason))
            }
        };
        UploadReport {
            session_id: r.session_id,
            key: r.key,
            bytes: r.bytes,
            recovered: r.recovered,
            uploaded,
            spool_path,
            reason,
        }
    }
}

/// What `await session.finish()` returns.
#[pyclass(module = "calltape._calltape", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct FinishReport {
    /// Where the archive went.
    pub upload: UploadReport,
    /// Audio samples (per channel, all tracks) dropped: queue or memory budget full, spool failed.
    pub dropped_samples: u64,
    /// Control records dropped for the same reasons.
    pub dropped_records: u64,
    /// The session's first recording error, if any.
    pub error: Option<String>,
}

#[pymethods]
impl FinishReport {
    fn __repr__(&self) -> String {
        format!(
            "FinishReport(upload={}, dropped_samples={}, dropped_records={}, error={})",
            self.upload.__repr__(),
            self.dropped_samples,
            self.dropped_records,
            opt(&self.error)
        )
    }
}

impl From<rec::FinishReport> for FinishReport {
    fn from(r: rec::FinishReport) -> Self {
        FinishReport {
            upload: r.upload.into(),
            dropped_samples: r.dropped_samples,
            dropped_records: r.dropped_records,
            error: r.error,
        }
    }
}

/// A snapshot of one session's counters (`session.status()`).
#[pyclass(module = "calltape._calltape", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct SessionStatus {
    pub session_id: String,
    /// `"recording"`, `"finishing"` or `"finished"`.
    pub state: String,
    /// Recording failed (spool unwritable or full): records are now counted and dropped.
    pub degraded: bool,
    /// Records written to the spool archive so far (audio frames included).
    pub records_written: u64,
    pub dropped_samples: u64,
    pub dropped_records: u64,
    /// The session's first error.
    pub error: Option<String>,
}

#[pymethods]
impl SessionStatus {
    fn __repr__(&self) -> String {
        format!(
            "SessionStatus(session_id={:?}, state={:?}, degraded={}, records_written={}, \
             dropped_samples={}, dropped_records={}, error={})",
            self.session_id,
            self.state,
            flag(self.degraded),
            self.records_written,
            self.dropped_samples,
            self.dropped_records,
            opt(&self.error)
        )
    }
}

impl From<rec::SessionStatus> for SessionStatus {
    fn from(s: rec::SessionStatus) -> Self {
        SessionStatus {
            session_id: s.session_id,
            state: match s.state {
                rec::SessionState::Recording => "recording",
                rec::SessionState::Finishing => "finishing",
                rec::SessionState::Finished => "finished",
            }
            .into(),
            degraded: s.degraded,
            records_written: s.records_written,
            dropped_samples: s.dropped_samples,
            dropped_records: s.dropped_records,
            error: s.error,
        }
    }
}

/// A snapshot of the recorder (`recorder.health()`).
#[pyclass(module = "calltape._calltape", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct Health {
    pub open_sessions: usize,
    /// Bytes held by all sessions (queued records and audio, and their open chunks), against
    /// the memory budget.
    pub queued_bytes: usize,
    pub memory_budget: usize,
    /// Problems reported so far (each session's first error, failed uploads, ...).
    pub errors: u64,
    pub last_error: Option<String>,
}

#[pymethods]
impl Health {
    fn __repr__(&self) -> String {
        format!(
            "Health(open_sessions={}, queued_bytes={}, memory_budget={}, errors={}, last_error={})",
            self.open_sessions,
            self.queued_bytes,
            self.memory_budget,
            self.errors,
            opt(&self.last_error)
        )
    }
}

impl From<rec::Health> for Health {
    fn from(h: rec::Health) -> Self {
        Health {
            open_sessions: h.open_sessions,
            queued_bytes: h.queued_bytes,
            memory_budget: h.memory_budget,
            errors: h.errors,
            last_error: h.last_error,
        }
    }
}

/// What `await recorder.shutdown(deadline)` returns.
#[pyclass(module = "calltape._calltape", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct ShutdownReport {
    /// Sessions finished by the shutdown, with their outcome.
    pub sessions: Vec<FinishReport>,
    /// Other spool archives uploaded (or tried) while shutting down.
    pub pending: Vec<UploadReport>,
    /// Sessions that did not close within the deadline (recovered on the next start).
    pub timed_out: Vec<String>,
}

#[pymethods]
impl ShutdownReport {
    fn __repr__(&self) -> String {
        format!(
            "ShutdownReport(sessions={}, pending={}, timed_out={:?})",
            self.sessions.len(),
            self.pending.len(),
            self.timed_out
        )
    }
}

impl From<rec::ShutdownReport> for ShutdownReport {
    fn from(r: rec::ShutdownReport) -> Self {
        ShutdownReport {
            sessions: r.sessions.into_iter().map(Into::into).collect(),
            pending: r.pending.into_iter().map(Into::into).collect(),
            timed_out: r.timed_out,
        }
    }
}

/// A problem the recorder hit in the background, handed to `on_error`.
#[pyclass(module = "calltape._calltape", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct Issue {
    /// The session concerned, if any.
    pub session_id: Option<String>,
    pub message: String,
}

#[pymethods]
impl Issue {
    fn __repr__(&self) -> String {
        format!(
            "Issue(session_id={}, message={:?})",
            opt(&self.session_id),
            self.message
        )
    }
}

impl From<&rec::Issue> for Issue {
    fn from(i: &rec::Issue) -> Self {
        Issue {
            session_id: i.session_id.clone(),
            message: i.message.clone(),
        }
    }
}
