//! Records a real-time voice-agent call into a calltape archive (see `format-spec/SPEC.md`)
//! without slowing the agent, and uploads it to an object store.
//!
//! # Model
//!
//! - A [`Recorder`] per process: destination URL (`s3://bucket/prefix`, `gs://…`, `az://…`,
//!   `file:///dir`, `memory://`), spool directory, flush interval, memory budget, upload
//!   deadline and retries, redaction, key layout — all on [`Recorder::builder`].
//! - A [`Session`] per call ([`Recorder::start_session`]). Its recording methods (`turn_start`,
//!   `transcript`, `transcript_in`, `stage`, `tool_call`, `state`, `event`, `log`, `usage`,
//!   `audio`, `end`, `record`) are synchronous and **never block**: they build the record,
//!   charge it to the memory budget and push it onto the session's bounded queue.
//! - A few writer threads serve every session ([`RecorderBuilder::writer_threads`], one per
//!   CPU, at most 4, by default). They redact, place audio on the clock, compress and append
//!   chunks to `<spool>/<session-id>.calltape.part`. A thread looks at its sessions every
//!   tenth of the flush interval (at most 50 ms) while any of them has something queued or a
//!   chunk open, and sleeps otherwise: a session's queue rings its thread when work arrives,
//!   so an idle call costs next to nothing. Each chunk closes once the session's own time
//!   (its clock, or with a manual clock the times of its records) passes the chunk's start
//!   plus the flush interval.
//! - [`Session::finish`] closes the archive, uploads it and returns a [`FinishReport`] (the key,
//!   or the spool path and why it is still there). [`Recorder::shutdown`] does that for every
//!   open session within a deadline. A new recorder recovers and uploads whatever a crash left.
//!
//! # Time
//!
//! Every time is **session nanoseconds** (since the session start; session time 0 is the
//! header's `started_at`). Methods on `Session` stamp "now" from the session clock; the same
//! methods on [`Session::at`]`(t)` use the time you give — for timings measured elsewhere,
//! importers and simulations. Audio timestamps are the capture time of the frame's first
//! sample: frames are laid end to end while they agree with the clock (within
//! [`RecorderBuilder::audio_tolerance`], 40 ms); a pause in delivery longer than that stays
//! silence in the archive (`first_sample` jumps), and slow drift between a device's sample
//! count and the clock is corrected and noted as an `audio_drift_corrected` event (`samples`:
//! silence inserted when > 0, overlapping samples cut when < 0). If frames reach you in bursts,
//! pass their capture times with `at(t)`.
//!
//! # Recording a call deterministically (simulations, importers)
//!
//! Use [`SessionInfo::manual_clock`] and a fixed [`SessionInfo::started_at`], and give every
//! call an explicit time with [`Session::at`]. The clock then only moves with your timestamps
//! and chunks close by the times of the records, in call order, never by when the writer ran,
//! so the same calls give the same archive bytes however fast they run. Give audio times that match its sample count
//! (`first_sample × 1e9 / sample_rate`) and it lands sample-exact. A simulation that records
//! faster than real time should `session.drained().await` now and then (say every simulated
//! second) so the queues never exceed the memory budget and nothing is dropped.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use calltape_recorder::{Recorder, SessionInfo, Speaker, Stage, UploadOutcome};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dest = tempfile::tempdir()?;
//! let spool = tempfile::tempdir()?;
//! let recorder = Recorder::builder()
//!     .destination(format!("file://{}", dest.path().display()))
//!     .spool_dir(spool.path())
//!     .redact_pii(true)
//!     .build()
//!     .await?;
//!
//! const MS: u64 = 1_000_000;
//! let session = recorder.start_session(
//!     SessionInfo::new("call-42")
//!         .agent("front-desk", "1.0.0")
//!         .environment("staging")
//!         .track(Speaker::User, 16_000, 1) // track 1
//!         .track(Speaker::Agent, 16_000, 1) // track 2
//!         .started_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_200))
//!         .manual_clock(),
//! )?;
//!
//! session.at(0).turn_start(1, Speaker::User);
//! for i in 0..50u64 {
//!     // 1 s of user speech in 20 ms frames, stamped with their capture times
//!     session.at(i * 20 * MS).audio(1, &[0i16; 320]);
//! }
//! session.at(1_000 * MS).transcript(Speaker::User, "My card is 4111 1111 1111 1111", true);
//! let mut llm = session.at(1_100 * MS).stage(1, Stage::Llm);
//! llm.first_token_at(1_400 * MS);
//! llm.end_at(1_700 * MS);
//! session.at(1_750 * MS).transcript(Speaker::Agent, "Thanks, booked.", true);
//! session.at(2_000 * MS).turn_end(1);
//! session.at(2_000 * MS).end("agent_hangup", Some("resolved"));
//!
//! let report = session.finish().await?;
//! assert_eq!(report.upload.outcome, UploadOutcome::Uploaded);
//! assert_eq!(report.upload.key, "2026/11/21/call-42.calltape");
//!
//! let mut file = std::fs::File::open(dest.path().join(&report.upload.key))?;
//! let archive = calltape_format::open(&mut file)?;
//! assert_eq!(archive.summary.turns[0].user_text, "My card is [CARD]");
//! recorder.shutdown(Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```
//!
//! In a live agent, drop the `at(..)`: `session.event("interruption", attrs)`,
//! `session.audio(1, &frame)`, and time stages with a guard:
//! `let mut llm = session.stage(turn, Stage::Llm); …; llm.first_token(); …; llm.end();`
//! (a dropped guard records too).
//!
//! A transcript, event or log belongs to the turn open when it is recorded (the latest
//! `turn_start`). Text that arrives after the next turn began (a late final transcript, the
//! agent's words recorded once its reply is done) is tied to its turn with
//! `session.transcript_in(turn, speaker, text, is_final)`.
//!
//! # Guarantees
//!
//! - **Hot path**: no await, no I/O, no lock shared with I/O (the queue's lock is held by the
//!   writer only to swap the queue out); one allocation (the record; a queue grows only past
//!   its largest batch so far).
//!   Over the memory budget or with a full queue, audio is dropped and counted (a `dropped`
//!   record, unit `samples`, is written once there is room); control records have a reserve
//!   (1/8 of the budget) and, if even that overflows, are counted (`dropped`, unit `records`).
//! - **Crashes**: closed chunks are on disk (and `sync_data`'d by default, once per writer
//!   tick: with several files due, one `syncfs` of the spool's filesystem commits them all,
//!   else the file's `fdatasync`); a kill at any moment loses at most the flush interval (default 1 s) plus
//!   one writer tick (a tenth of the flush interval, 5–50 ms) plus the time the writer
//!   thread waits for a CPU and the disk's sync takes: a chunk closes on the first tick after
//!   its end, not at its end. Measured on a loaded 2-core VM (issue 17): up to 1.27 s in 100
//!   kills with the default 1 s, so plan for about 1.3 s. The next recorder on the same spool
//!   recovers such files (flagged *recovered* in the footer, and with object metadata
//!   `calltape-recovered: true` where the store keeps metadata) and uploads them.
//! - **Broken or full disk**: a full or unwritable spool never panics or blocks the agent; the
//!   first error is reported once (the [`RecorderBuilder::on_error`] callback,
//!   [`Session::status`], [`Recorder::health`]). A session whose spool file cannot be created
//!   drops and counts what it records and tries again once a second; once the file exists,
//!   the counts go into the archive (`dropped`, reason `spool_unavailable`). A session whose
//!   writes fail mid-call (a full disk) cuts its file back to the last whole frame, keeps the
//!   chunk it could not write, and drops and counts what it records meanwhile; it tries again
//!   once a second while records come in, and at its close. Once a write succeeds it goes on
//!   in the same file: the kept chunk first, then a `spool_unavailable` event (`from_ns`,
//!   `to_ns`: the session times of the failure and of the resumption, `error`), the `dropped`
//!   records (reason `spool_unavailable`), and the call. If the file cannot even be cut back,
//!   or its sync fails, the session stops writing for good (counts in its status and finish
//!   report only). A spool file holding a valid prefix is never set aside while its recovery fails for an I/O
//!   reason (a full disk): it stays as `.part` and is recovered and uploaded at the next scan
//!   (retry interval, [`Recorder::upload_pending`], shutdown, next start) once space is back.
//!   Only a file without even a valid header is set aside as `.part.unreadable` (an empty one
//!   is removed).
//! - **Uploads**: `put` below 8 MiB, multipart above (aborted on failure), exponential backoff
//!   within the upload deadline; the spool copy is deleted only after the object is verified
//!   (HEAD size, and the last 256 KiB — footer, index and summary — compared by CRC32C). When
//!   the store is down, archives wait in the spool for the periodic retry,
//!   [`Recorder::upload_pending`] or the next start. Key layout: `prefix/YYYY/MM/DD/<id>.calltape`
//!   (UTC session start) by default, see [`KeyLayout`]. An object never appears half written:
//!   a multipart upload is only completed whole. If the store goes down mid-upload, the abort
//!   fails too and the store keeps the parts already sent. On S3 the recorder cleans up its
//!   own: after an archive is uploaded whole it aborts every other incomplete upload of that
//!   key (earlier attempts, including one whose "create" response was lost), and at start it
//!   aborts the incomplete uploads of archive keys (`*.calltape`) under its prefix that are
//!   older than the upload deadline (no live upload of a recorder with the same settings is).
//!   Keys outside the prefix are never touched. Second line of defence: a bucket lifecycle
//!   rule, e.g. `{"Rules": [{"ID": "calltape-incomplete-uploads", "Status": "Enabled",
//!   "Filter": {"Prefix": "<prefix>/"}, "AbortIncompleteMultipartUpload":
//!   {"DaysAfterInitiation": 1}}]}` (`aws s3api put-bucket-lifecycle-configuration`).
//! - **Session ids**: 1–128 bytes of `[A-Za-z0-9._:-]`, no `..` ([`validate_session_id`]).
//!
//! With the `tracing` feature, `Recorder::tracing_layer()` puts log events of a session's
//! spans into its archive.

mod clock;
mod config;
mod deadline;
mod error;
mod keys;
mod queue;
mod recorder;
pub mod redact;
mod report;
mod session;
mod session_id;
mod spool;
mod stale_uploads;
#[cfg(feature = "tracing")]
pub mod tracing_layer;
mod upload;
mod upload_failure;
mod writer;

pub use calltape_format::{
    AgentInfo, Attributes, Record, Speaker, Stage, StageTiming, ToolCall, Transcript, TurnEnd,
    TurnId, TurnStart, Usage,
};
pub use clock::ClockMode;
pub use config::{RecorderBuilder, RetryPolicy};
pub use error::RecorderError;
pub use keys::{KeyContext, KeyLayout};
pub use recorder::Recorder;
pub use redact::{RedactionRule, Redactor};
pub use report::{
    FinishReport, Health, Issue, SessionState, SessionStatus, ShutdownReport, UploadOutcome,
    UploadReport,
};
pub use session::{At, LogLevel, Session, SessionInfo, StageGuard, TrackSpec};
pub use session_id::{validate_session_id, MAX_SESSION_ID_LEN};
#[cfg(feature = "tracing")]
pub use tracing_layer::CalltapeLayer;
pub use upload::{CONTENT_TYPE, RECOVERED_METADATA};
