//! `calltape collect`: a self-hosted observability endpoint for LiveKit Agents. Point an
//! agent's `LIVEKIT_OBSERVABILITY_URL` at it and every call lands in your own bucket as a
//! calltape archive, with no change to the agent's code.
//!
//! What LiveKit Agents (1.8.x) send, and where it goes:
//!
//! | request | handled by | becomes |
//! |---|---|---|
//! | `POST /observability/traces/otlp/v0` (OTLP protobuf, gzip) | [`otlp`] | `error` report events (spans with an error status) and one `otel_span` event per span |
//! | `POST /observability/logs/otlp/v0` | [`otlp`] | log records |
//! | `POST /observability/metrics/otlp/v0` | [`otlp`] | validated and counted, not archived (no per-call meaning) |
//! | `POST /observability/recordings/v0` (multipart: `header`, `chat_history`, `audio`) | [`recording`] | the session report, transcript and audio |
//!
//! Every request needs `Authorization: Bearer <JWT>` signed (HS256) with the agent's LiveKit
//! API secret and carrying the observability write grant ([`auth`]). Telemetry and the
//! recording of one call are joined by its job id in [`sessions`]; once the recording has
//! arrived (and a short linger for the telemetry flushed after it has passed), or when a
//! session's recording never comes (timeout), [`assemble`] turns it into a report-shaped
//! JSON and hands it to the SessionReport importer (`calltape_import::livekit`), so
//! `calltape collect` and `calltape import livekit` share one mapping. The archive is written
//! into the recorder's spool and uploaded by `calltape_recorder` (retries, verification,
//! crash recovery).

pub mod assemble;
pub mod auth;
pub mod body_guard;
pub mod limits;
pub mod otlp;
pub mod recording;
pub mod reply;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod status;

pub use limits::Limits;
pub use routes::{LOGS_PATH, METRICS_PATH, RECORDINGS_PATH, TRACES_PATH};
pub use server::{Collector, CollectorConfig};
pub use status::{StatusEvent, StatusSink};
