//! What a call means: the rules every view of a call shares (SPEC.md §7 "Turn membership",
//! §9 "Latency breakdown" and "Speech heard in the audio").
//!
//! - [`turns`]: which turn a record belongs to, and when a turn ends;
//! - [`classify`]: what counts as an error, a tool failure, an interruption or an overlap;
//! - [`latency`]: the latency breakdown of a turn, its parts and flags, and the thresholds
//!   (slow, mismatched) every view applies;
//! - [`activity`]: speech found in the audio itself and the response gap heard there;
//! - [`stats`]: nearest-rank percentiles.
//!
//! The summary builder (and so the writer, recovery and the recorder), the replayer's views,
//! the catalog, the exports, the importers and the Python package take these rules from here;
//! none derives them itself.

pub mod activity;
pub mod classify;
pub mod latency;
pub mod stats;
pub mod turns;

pub use activity::{MeasuredGap, Segment};
pub use classify::{ErrorInfo, ErrorOrigin, Mark};
pub use latency::{Latency, LatencyFlag, Part};
pub use turns::TurnTimeline;
