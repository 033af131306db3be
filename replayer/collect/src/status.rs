//! What the collector tells its operator: one JSON object per line on stdout with `--json`
//! (listening, each session written, stopped), and running counters for `/healthz`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// One status line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StatusEvent {
    Listening {
        addr: String,
        destination: String,
        spool: String,
    },
    SessionWritten {
        session_id: String,
        reason: &'static str,
        /// The object key, or empty while the archive waits in the spool.
        key: String,
        uploaded: bool,
        turns: u64,
        spans: usize,
        logs: usize,
        warnings: usize,
        audio_seconds: f64,
    },
    SessionFailed {
        session_id: String,
        reason: &'static str,
        error: String,
    },
    Stopped {
        sessions_written: u64,
        sessions_failed: u64,
        left_in_spool: usize,
    },
}

/// Counters shown by `/healthz`.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub refused: AtomicU64,
    pub spans: AtomicU64,
    pub logs: AtomicU64,
    pub metric_points: AtomicU64,
    pub recordings: AtomicU64,
    pub sessions_written: AtomicU64,
    pub sessions_failed: AtomicU64,
    pub telemetry_dropped: AtomicU64,
    pub telemetry_late: AtomicU64,
    pub telemetry_unattributed: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: usize) {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": g(&self.requests),
            "refused": g(&self.refused),
            "spans": g(&self.spans),
            "logs": g(&self.logs),
            "metric_points": g(&self.metric_points),
            "recordings": g(&self.recordings),
            "sessions_written": g(&self.sessions_written),
            "sessions_failed": g(&self.sessions_failed),
            "telemetry_dropped": g(&self.telemetry_dropped),
            "telemetry_late": g(&self.telemetry_late),
            "telemetry_unattributed": g(&self.telemetry_unattributed),
        })
    }
}

/// Where status lines go: stdout as JSON lines, or nowhere (the structured logs still say it).
#[derive(Debug, Clone, Copy)]
pub struct StatusSink {
    pub json: bool,
}

impl StatusSink {
    pub fn emit(&self, event: &StatusEvent) {
        if !self.json {
            return;
        }
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
