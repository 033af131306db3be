//! `calltape replay`: the terminal replayer. Data flows one way — terminal event → key map →
//! [`action::Action`] → [`update::update`] on the [`app::App`] → pure render functions per
//! screen region (`render/`). Loading, decoding and audio analysis run as background
//! [`jobs`]; the UI thread never waits on I/O.

pub mod action;
pub mod app;
/// Drives the app on a test backend; for this crate's tests only (feature `test-harness`).
#[cfg(feature = "test-harness")]
pub mod harness;
pub mod jobs;
pub mod keymap;
pub mod layout;
pub mod model;
pub mod opening;
pub mod player;
pub mod render;
pub use calltape_read::safe_text as sanitize;
pub mod terminal;
pub mod theme;
pub mod update;

pub use app::{App, Options};
#[cfg(feature = "test-harness")]
pub use harness::Harness;
pub use opening::{open_call, resolve_target, Follower, LoadedCall};
