#![no_main]
//! `cargo +nightly fuzz run reader`: arbitrary bytes through calltape_format's dump, scan,
//! recover_to, Opener/open and read_chunk. See ../README.md.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    calltape_format_fuzz::check(data);
});
