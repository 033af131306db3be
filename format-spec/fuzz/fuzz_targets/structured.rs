#![no_main]
//! `cargo +nightly fuzz run structured`: the input is a seed choice and edits to an archive's
//! fields (`calltape_hostile::structured`), reassembled with valid frames and CRCs, then
//! through every reader entry point. See ../README.md.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    calltape_hostile::check::exercise(&calltape_hostile::structured::build(data));
});
