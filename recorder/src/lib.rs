//! calltape recorder (placeholder docs, rewritten below)

mod clock;
mod config;
mod error;
mod keys;
mod queue;
mod recorder;
pub mod redact;
mod report;
mod session;
mod session_id;
mod spool;
mod upload;

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
pub use upload::{CONTENT_TYPE, RECOVERED_METADATA};
