//! What the replayer reads: opening a sample and stepping through every turn (transcript,
//! records, audio envelope and measured gap of each) fetches each byte of the file at most
//! once, give or take the gaps of coalesced requests: at most 1.1× the file, counted by the
//! source's byte counter. Then playing and exporting audio reads nothing more.

mod tui_support;

use std::path::PathBuf;

use calltape::tui::Harness;
use tui_support::*;

fn samples() -> Vec<PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/archives");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "calltape"))
        .collect();
    out.sort();
    out
}

#[test]
fn stepping_through_every_turn_reads_each_sample_about_once() {
    let samples = samples();
    assert!(!samples.is_empty(), "no samples in samples/archives");
    let mut report = Vec::new();
    for path in samples {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Harness::open(path.to_str().unwrap(), options(dir.path()), 120, 40).unwrap();
        h.settle();
        let turns = h.app.turns().len();
        assert!(turns > 0, "{}: no turns", path.display());
        h.press("g");
        for _ in 1..turns {
            h.press("j");
        }
        assert_eq!(
            h.app.selected,
            Some(turns - 1),
            "{}: stepped to the last turn",
            path.display()
        );
        // the last turn's records, the transcript and (with audio) its envelope were loaded
        let last = h.app.turns()[turns - 1].turn;
        assert!(h.app.turn_detail(last).is_some(), "{}", path.display());
        assert!(h.app.span.is_some(), "{}", path.display());
        let has_audio = !h.app.call.archive.header().tracks.is_empty();
        assert_eq!(h.app.energy.is_some(), has_audio, "{}", path.display());
        let len = h.app.call.source.len();
        let (requests, bytes) = h.app.call.source.stats();
        let ratio = bytes as f64 / len as f64;
        report.push(format!(
            "{}: {requests} requests, {bytes} of {len} bytes ({ratio:.3}x)",
            path.file_name().unwrap().to_string_lossy()
        ));
        assert!(
            ratio <= 1.1,
            "{} read {ratio:.2}x its size ({bytes} of {len} bytes in {requests} requests)",
            path.display()
        );

        // a WAV of the last turn (both tracks) comes from the cache: nothing more is read
        h.press("w");
        let written = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(written, usize::from(has_audio), "{}", path.display());
        let (_, after_wav) = h.app.call.source.stats();
        assert_eq!(
            after_wav,
            bytes,
            "{}: exporting audio re-read the file",
            path.display()
        );
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn the_first_view_of_a_long_call_takes_a_few_coalesced_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten_minutes.calltape");
    calltape_samples::synthetic::long_call(&path, 600);
    let mut h = Harness::open(path.to_str().unwrap(), options(dir.path()), 120, 40).unwrap();
    h.settle();
    assert!(h.app.span.is_some() && h.app.energy.is_some());
    let (from, to) = h.app.requested.span.unwrap();
    let control_chunks = h
        .app
        .call
        .archive
        .index
        .iter()
        .filter(|e| e.lane == 0 && e.overlaps(from, to))
        .count();
    let (requests, bytes) = h.app.call.source.stats();
    // one request per chunk before: the transcript alone spans this many control chunks
    assert!(control_chunks > 60, "{control_chunks} control chunks");
    assert!(
        requests <= 8,
        "{requests} requests ({bytes} bytes) for a first view over {control_chunks} control chunks"
    );
    assert!(bytes <= h.app.call.source.len());
}
