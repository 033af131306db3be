//! Reading calls for the replayer's commands and views: where an archive comes from (a local
//! file or any object-store URL, read in few coalesced ranged requests through one decoded-chunk
//! cache), a call's records and audio on the session clock, the errors the replayer reports,
//! and the units and progress bars every command shares.

pub mod call;
pub mod error;
pub mod progress;
pub mod safe_text;
pub mod source;
pub mod units;
