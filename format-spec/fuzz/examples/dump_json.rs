//! Prints calltape_format::dump::dump of each FILE as one JSON line (for differential tests
//! against python/calltape_reader.py):
//!
//!     cargo run --release --manifest-path format-spec/fuzz/Cargo.toml --example dump_json -- FILE...

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        println!("{}", calltape_format::dump::dump(&bytes));
    }
}
