//! Hostile calltape archives and the reader invariants they test.
//!
//! - [`forge`] assembles archives byte by byte from frames whose CRCs are right but whose
//!   fields lie (counts, turn ranges, lanes, sample rates, zstd bombs), for regression tests.
//! - [`check`] runs every reader entry point on any input and panics only on a bug; the
//!   libFuzzer target (`format-spec/fuzz`) is a thin wrapper around it, and this crate's tests
//!   replay the committed corpus and regression inputs through it on `cargo test`.
//! - [`structured`] turns fuzzer bytes into archives that keep their frames and CRCs valid
//!   around mutated fields, so mutations reach the decoders instead of dying at a CRC.

pub mod cases;
pub mod check;
pub mod forge;
pub mod structured;
