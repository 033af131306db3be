//! Inputs the fuzzer found (fuzz/regressions): every read path must survive them, and
//! whatever recovery writes from them must be a clean archive.

use std::io::Cursor;

use calltape_format::{
    dump::dump, open, open_or_scan, read_chunk, read_records, recover_to, Filter,
};

#[test]
fn fuzz_regressions_recover_to_clean_archives() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        seen += 1;
        let _ = dump(&bytes);
        if let Ok(a) = open(&mut Cursor::new(&bytes)) {
            for e in &a.index {
                let _ = read_chunk(&mut Cursor::new(&bytes), e);
            }
            let _ = read_records(Cursor::new(&bytes), &a, Filter::all());
        }
        if let Ok((a, _)) = open_or_scan(&mut Cursor::new(&bytes)) {
            let _ = read_records(Cursor::new(&bytes), &a, Filter::all());
        }
        let mut out = Vec::new();
        if recover_to(&bytes[..], &mut out).is_ok() {
            let a = open(&mut Cursor::new(&out))
                .unwrap_or_else(|e| panic!("{name}: recovered file does not open: {e}"));
            for e in &a.index {
                read_chunk(&mut Cursor::new(&out), e).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            assert!(
                dump(&out)["damage"].is_null(),
                "{name}: recovered file dumps with damage: {}",
                dump(&out)["damage"]
            );
        }
    }
    assert!(
        seen >= 6,
        "regression inputs missing from {}",
        dir.display()
    );
}

#[test]
fn non_finite_floats_are_written_as_valid_json() {
    use calltape_format::*;
    let header = Header {
        session_id: "nan".into(),
        started_at: "2026-11-21T10:00:00Z".into(),
        started_at_unix_ns: 0,
        agent: AgentInfo::default(),
        environment: None,
        tags: Default::default(),
        tracks: vec![],
    };
    let mut w = ArchiveWriter::new(Vec::new(), header).unwrap();
    w.write(&TimedRecord::new(
        0,
        Record::Usage(Usage {
            stt_audio_seconds: f64::NAN,
            tts_audio_seconds: f64::INFINITY,
            ..Default::default()
        }),
    ))
    .unwrap();
    w.write(&TimedRecord::new(
        1,
        Record::Usage(Usage {
            stt_audio_seconds: f64::MAX,
            ..Default::default()
        }),
    ))
    .unwrap();
    w.write(&TimedRecord::new(
        2,
        Record::Usage(Usage {
            stt_audio_seconds: f64::MAX,
            ..Default::default()
        }),
    ))
    .unwrap();
    let bytes = w.finish().unwrap().0;
    let a = open(&mut Cursor::new(&bytes)).unwrap();
    assert_eq!(a.summary.totals.usage.stt_audio_seconds, f64::MAX);
    assert_eq!(
        read_chunk(&mut Cursor::new(&bytes), &a.index[0])
            .unwrap()
            .records
            .len(),
        3
    );
}
