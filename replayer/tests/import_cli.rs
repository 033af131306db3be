//! `calltape import` as a user runs it: the real binary imports the fixtures, and the
//! archives it writes pass `calltape verify` and show their breakdown in `inspect --json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calltape_tests::s3_server::TestS3;
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("import/tests/fixtures")
        .join(rel)
}

fn run(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_calltape"));
    cmd.args(args)
        .env_remove("CALLTAPE_CATALOG")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run calltape")
}

fn ok(args: &[&str]) -> Output {
    let out = run(args, &[]);
    assert!(
        out.status.success(),
        "calltape {args:?} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn inspect(path: &Path) -> Value {
    let out = ok(&["inspect", path.to_str().unwrap(), "--json"]);
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

#[test]
fn livekit_console_recording_imports_with_its_audio_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["session_report.json", "audio.ogg"] {
        std::fs::copy(fixture("livekit/console").join(f), dir.path().join(f)).unwrap();
    }
    let report = dir.path().join("session_report.json");
    let out = ok(&["import", "livekit", report.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3.0 s of audio"), "{stdout}");
    let archive = dir.path().join("session_report.calltape");
    assert!(archive.is_file(), "default output beside the report");
    assert!(
        !dir.path()
            .join(".session_report.calltape.importing")
            .exists(),
        "no staging file left"
    );
    ok(&["verify", archive.to_str().unwrap()]);
    let v = inspect(&archive);
    assert_eq!(v["header"]["session_id"], "AJ_console0001");
    assert_eq!(v["header"]["tracks"].as_array().unwrap().len(), 2);
    let t = &v["turns"][0];
    assert_eq!(t["latency"]["e2e_ns"], 500_000_000);
    assert_eq!(t["latency"]["reported_e2e_ns"], 500_000_000);
    assert_eq!(t["latency"]["eou_ns"], 200_000_000);
    assert_eq!(t["latency"]["llm_ttft_ns"], 150_000_000);
    assert_eq!(t["latency"]["tts_ttfb_ns"], 100_000_000);

    // an existing archive is not overwritten without --force
    let again = run(&["import", "livekit", report.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(2));
    ok(&[
        "import",
        "livekit",
        report.to_str().unwrap(),
        "--force",
        "--no-audio",
    ]);
    assert!(inspect(&archive)["header"]["tracks"]
        .as_array()
        .is_none_or(|t| t.is_empty()));
}

#[test]
fn every_fixture_imports_to_a_verified_archive() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("livekit", "livekit/normal.json", 3),
        ("livekit", "livekit/interrupted.json", 3),
        ("livekit", "livekit/tools.json", 2),
        ("livekit", "livekit/missing_metrics.json", 3),
        ("livekit", "livekit/newer_sdk.json", 2),
        ("pipecat", "pipecat/call.whisk", 4),
        ("pipecat", "pipecat/tail-session.jsonl", 4),
    ];
    for (i, (kind, rel, turns)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("{i}.calltape"));
        let o = ok(&[
            "import",
            kind,
            fixture(rel).to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("warning: [no_audio]"), "{rel}: {stderr}");
        ok(&["verify", out.to_str().unwrap()]);
        let v = inspect(&out);
        assert_eq!(
            v["turns"].as_array().unwrap().len(),
            *turns as usize,
            "{rel}"
        );
    }
    // odd metrics are reported on stderr
    let out = dir.path().join("odd.calltape");
    let o = ok(&[
        "import",
        "livekit",
        fixture("livekit/missing_metrics.json").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("[absurd_metric]"), "{stderr}");
    assert!(stderr.contains("[negative_metric]"), "{stderr}");
}

#[test]
fn unreadable_input_fails_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("report.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = run(&["import", "livekit", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("report.json"), "{stderr}");
    assert!(!dir.path().join("report.calltape").exists());
    let wav = dir.path().join("x.mp3");
    std::fs::write(&wav, b"ID3\x03junk").unwrap();
    let out = run(
        &[
            "import",
            "livekit",
            fixture("livekit/normal.json").to_str().unwrap(),
            "--audio",
            wav.to_str().unwrap(),
            "-o",
            dir.path().join("y.calltape").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither OGG/Opus nor WAV"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_uploads_to_an_object_store() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let env = s3.env();
    let report = fixture("livekit/console/session_report.json");
    let out = run(
        &[
            "import",
            "livekit",
            report.to_str().unwrap(),
            "--to",
            "s3://calls/imported/",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = StorePath::from("imported/AJ_console0001.calltape");
    let bytes = s3
        .store("calls")
        .get(&key)
        .await
        .expect("object uploaded under the session id")
        .bytes()
        .await
        .unwrap();
    let scan = calltape_format::scan(std::io::Cursor::new(&bytes[..])).unwrap();
    assert!(scan.report.intact);
    assert_eq!(scan.summary.turns.len(), 1);
    assert_eq!(scan.summary.totals.audio_frames.get(&2), Some(&144_000));
}
