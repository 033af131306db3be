#![no_main]
//! `cargo +nightly fuzz run reader`: arbitrary bytes through every reader entry point
//! (`calltape_hostile::check`). See ../README.md.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    calltape_hostile::check::check(data);
});
