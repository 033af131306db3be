//! The fuzz targets' checks on `cargo test`: every committed seed and regression input
//! (format-spec/fuzz/seeds, format-spec/fuzz/regressions) through the same bodies the
//! libFuzzer targets run, and a proptest of structure-aware edits to the seed archives.

use std::path::{Path, PathBuf};

use calltape_hostile::{check, structured};
use proptest::prelude::*;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(sub)
}

/// Inputs of the `structured` target are named `structured-*` in regressions/.
fn replay(path: &Path, structured_input: bool) {
    let bytes = std::fs::read(path).unwrap();
    let name = path.display().to_string();
    let run = || {
        if structured_input {
            check::exercise(&structured::build(&bytes));
        } else {
            check::check(&bytes);
        }
    };
    if std::panic::catch_unwind(run).is_err() {
        panic!("{name} fails the fuzz checks (reproduce with the fuzz target, see fuzz/README.md)");
    }
}

#[test]
fn regression_inputs_pass_the_fuzz_checks() {
    let all = files(&fuzz_dir("regressions"));
    assert!(all.len() >= 6, "regression inputs missing");
    for p in &all {
        let structured_input = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("structured-"));
        replay(p, structured_input);
    }
}

#[test]
fn reader_seed_corpus_passes_the_fuzz_checks() {
    let all = files(&fuzz_dir("seeds/reader"));
    assert!(!all.is_empty(), "seeds/reader is empty");
    for p in &all {
        replay(p, false);
    }
}

#[test]
fn structured_seed_corpus_passes_the_fuzz_checks() {
    let all = files(&fuzz_dir("seeds/structured"));
    assert!(!all.is_empty(), "seeds/structured is empty");
    for p in &all {
        replay(p, true);
    }
}

#[test]
fn every_seed_archive_reads_clean() {
    for (i, seed) in structured::seeds().iter().enumerate() {
        let d = calltape_format::dump::dump(seed);
        assert!(d["damage"].is_null(), "seed {i}: {}", d["damage"]);
        // and an empty edit list rebuilds an archive that reads as cleanly
        let rebuilt = structured::build(&[i as u8]);
        let d = calltape_format::dump::dump(&rebuilt);
        assert!(d["damage"].is_null(), "seed {i} rebuilt: {}", d["damage"]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn structured_edits_never_break_a_reader_invariant(
        edits in proptest::collection::vec(any::<u8>(), 0..96)
    ) {
        check::exercise(&structured::build(&edits));
    }
}
