//! The calltape replayer and CLI as a library: archive sources (file or object store),
//! call reading, the terminal UI, the catalog and exports; the importers are the
//! `calltape-import` crate. The `calltape` binary
//! (main.rs) only parses arguments and dispatches to [`cli`].

pub mod call;
pub mod catalog;
pub mod cli;
pub mod error;
pub mod export;
pub mod source;
pub mod tui;
