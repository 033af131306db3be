//! Every bound the collector enforces, in one place: request body sizes, per-part sizes of
//! the recording upload, how much telemetry it holds in memory and for how many sessions,
//! and how long it waits for a session to complete.

use std::time::Duration;

/// Bounds on what a request may make the collector hold. All are configurable from the CLI.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest recording upload (the whole multipart body), bytes. Default 256 MiB.
    pub recording_body: u64,
    /// Largest OTLP request body, bytes, before and after gzip decompression. Default 8 MiB.
    pub otlp_body: u64,
    /// Largest `header` part (protobuf), bytes.
    pub header_part: u64,
    /// Largest `chat_history` part (JSON), bytes.
    pub chat_history_part: u64,
    /// Sessions held open at once (waiting for their recording or their telemetry). A
    /// request for a new session beyond it gets 503 with a retry hint.
    pub max_sessions: usize,
    /// Telemetry held for one session, bytes (protobuf size); more is dropped and counted.
    pub session_telemetry: usize,
    /// Telemetry held for all sessions together, bytes; beyond it requests get 503.
    pub total_telemetry: usize,
    /// After a session's recording arrived: how long to keep collecting the telemetry the
    /// agent flushes after the upload before the archive is written.
    pub linger: Duration,
    /// A session whose recording never comes is closed this long after its last telemetry.
    pub session_timeout: Duration,
    /// Archives assembled at once (each decodes Opus on one core).
    pub assembly_workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            recording_body: 256 << 20,
            otlp_body: 8 << 20,
            header_part: 1 << 20,
            chat_history_part: 32 << 20,
            max_sessions: 1_000,
            session_telemetry: 8 << 20,
            total_telemetry: 256 << 20,
            linger: Duration::from_secs(15),
            session_timeout: Duration::from_secs(600),
            assembly_workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(8),
        }
    }
}
