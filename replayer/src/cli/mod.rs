//! One module per subcommand: its arguments (clap) and its `run`, which returns the exit code.

pub mod catalog;
pub mod collect;
pub mod diff;
pub mod export;
pub mod import;
pub mod index;
pub mod inspect;
pub mod ls;
pub mod recover;
pub mod replay;
pub mod sql;
pub mod stats;
pub mod verify;
