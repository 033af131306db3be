//! The replayer over damaged, live and sample archives: a truncated file opens with what
//! could be recovered and says so; a spool file being written is followed as chunks land;
//! each committed sample opens on its worst turn.

mod tui_support;

use std::io::Write;
use std::path::Path;

use calltape::tui::Harness;
use calltape_format::ArchiveWriter;
use tui_support::*;

#[test]
fn damaged_archive_opens_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_to(dir.path(), "cut.calltape", &truncated_bytes());
    let mut h = Harness::open(path.to_str().unwrap(), options(dir.path()), 120, 40).unwrap();
    h.settle();
    let s = h.screen();
    insta::assert_snapshot!("damaged_notice", s);
    assert!(
        s.contains("⚠ DAMAGED archive (not closed: no footer)"),
        "{s}"
    );
    assert!(
        s.contains("#2 U"),
        "the turns before the cut are shown: {s}"
    );
}

#[test]
fn garbage_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_to(
        dir.path(),
        "junk.calltape",
        b"this is not an archive at all",
    );
    let err = Harness::open(path.to_str().unwrap(), options(dir.path()), 120, 40)
        .err()
        .expect("garbage must not open");
    assert!(err.to_string().contains("not a calltape archive"), "{err}");
}

#[test]
fn a_session_id_without_catalog_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-catalog.sqlite");
    let err = calltape::tui::resolve_target("sess-123", Some(&missing)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not a file, a URL or a session id in the catalog"),
        "{msg}"
    );
    assert!(msg.contains("calltape index"), "{msg}");
}

#[test]
fn a_session_id_opens_through_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.sqlite");
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/archives");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_calltape"))
        .arg("index")
        .arg("--catalog")
        .arg(&catalog)
        .arg(&samples)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the full id, and an unambiguous prefix of it
    for id in ["sess-slow-llm-7f3a", "sess-slow"] {
        let location = calltape::tui::resolve_target(id, Some(&catalog)).unwrap();
        assert!(
            location.to_string().ends_with("slow_llm.calltape"),
            "{id}: {location}"
        );
    }
    let err = calltape::tui::resolve_target("sess-", Some(&catalog)).unwrap_err();
    assert!(
        err.to_string().contains("sess-"),
        "an ambiguous prefix names candidates: {err}"
    );
}

#[test]
fn follows_a_recording_as_chunks_land() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("live.calltape.part");
    // one writer; snapshot its bytes after turn 2 and after turn 4 (each a prefix of the next)
    let mut w = ArchiveWriter::new(Vec::new(), header()).unwrap();
    let mut cuts = Vec::new();
    for r in all_records() {
        if (r.time_ns == 8_100 * MS || r.time_ns == 19_250 * MS)
            && matches!(r.record, calltape_format::Record::TurnEnd(_))
        {
            w.write(&r).unwrap();
            w.flush_chunks().unwrap();
            cuts.push(w.get_ref().len());
            continue;
        }
        w.write(&r).unwrap();
    }
    let (full, _) = w.finish().unwrap();
    std::fs::write(&spool, &full[..cuts[0]]).unwrap();
    let mut h = Harness::follow(&spool, options(dir.path()), 120, 40).unwrap();
    h.settle();
    let first = h
        .screen()
        .replace(&dir.path().display().to_string(), "<tmp>");
    insta::assert_snapshot!("follow_first", first);
    assert!(first.contains("● LIVE"), "{first}");
    assert!(first.contains("#2 U") && !first.contains("#3 U"), "{first}");

    append(&spool, &full[cuts[0]..cuts[1]]);
    assert!(h.poll_follow().unwrap());
    h.settle();
    let second = h.screen();
    assert!(second.contains("#4 U"), "{second}");
    assert!(
        second.contains("▶    #4"),
        "the newest turn stays selected: {second}"
    );

    append(&spool, &full[cuts[1]..]);
    assert!(h.poll_follow().unwrap());
    h.settle();
    let done = h.screen();
    assert!(done.contains("■ recording closed"), "{done}");
    assert!(done.contains("#5 U"), "{done}");
    assert!(!h.poll_follow().unwrap());
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    // a partly written frame must wait for the rest
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).unwrap();
    f.write_all(&bytes[half..]).unwrap();
}

fn sample(name: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/archives")
        .join(format!("{name}.calltape"));
    assert!(
        p.exists(),
        "sample {} is missing: the samples are committed (samples/archives)",
        p.display()
    );
    Some(p)
}

fn sample_screen(name: &str, keys: &str) -> Option<String> {
    let path = sample(name)?;
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::open(path.to_str().unwrap(), options(dir.path()), 120, 40).unwrap();
    h.settle();
    h.press(keys);
    Some(h.screen())
}

#[test]
fn sample_slow_llm() {
    if let Some(s) = sample_screen("slow_llm", "") {
        insta::assert_snapshot!("sample_slow_llm", s);
    }
}

#[test]
fn sample_barge_in() {
    if let Some(s) = sample_screen("barge_in", "k") {
        insta::assert_snapshot!("sample_barge_in", s);
        assert!(s.contains('✂'));
    }
}

#[test]
fn sample_misheard() {
    if let Some(s) = sample_screen("misheard", "") {
        insta::assert_snapshot!("sample_misheard", s);
    }
}

#[test]
fn sample_tool_failure() {
    if let Some(s) = sample_screen("tool_failure", "2") {
        insta::assert_snapshot!("sample_tool_failure", s);
    }
}

#[test]
fn sample_crash_truncated() {
    if let Some(s) = sample_screen("crash_truncated", "") {
        insta::assert_snapshot!("sample_crash_truncated", s);
        assert!(s.contains("DAMAGED"));
    }
}

/// The State tab diffs a turn against the one before it. Opening a sample on turn 3 loads
/// turns 2 and 3; stepping back to turn 2 must load turn 1 too, not wait for it forever.
#[test]
fn the_state_diff_of_a_turn_loaded_before_its_previous_one_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/archives/barge_in.calltape");
    let mut h = Harness::open(path.to_str().unwrap(), options(dir.path()), 120, 40).unwrap();
    h.settle();
    assert!(h.screen().contains("▶!   #3"), "{}", h.screen());
    h.press("4");
    assert!(h.screen().contains("diff vs turn 2:"), "{}", h.screen());
    h.press("<BackTab><BackTab>k"); // focus the turns, one up
    let s = h.screen();
    assert!(s.contains("▶    #2"), "{s}");
    assert!(!s.contains("loading turn 1 to diff"), "{s}");
    assert!(
        s.contains("(no session snapshot in turn 1 to diff against)")
            || s.contains("diff vs turn 1:"),
        "{s}"
    );
}
