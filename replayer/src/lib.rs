//! The `calltape` binary as a library: its commands ([`cli`]), the terminal UI ([`tui`]) and
//! the exports ([`export`]). It is cut along its seams into crates: the read layer
//! (`calltape-read`: sources, calls, errors, units), the catalog (`calltape-catalog`) and the
//! importers (`calltape-import`); their modules are re-exported here under their old paths.
//! The `calltape` binary (main.rs) only parses arguments and dispatches to [`cli`].

pub use calltape_catalog as catalog;
pub use calltape_read::{call, error, safe_text, source};

pub mod cli;
pub mod export;
pub mod tui;
