//! Every command on an object-store URL, against the in-process S3 server: inspect, verify and
//! export read ranges of the object; index lists a prefix and is incremental.

mod cli_support;

use calltape_tests::s3_server::TestS3;
use cli_support::*;
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;

/// The archive of `spec` padded past 256 KiB with an extension frame (readers skip it): the
/// in-process server (s3s-fs) fails a suffix range longer than the object, which real S3
/// answers with the whole object, and `ArchiveSource` opens with a 256 KiB suffix GET.
fn big_archive(spec: &CallSpec) -> Vec<u8> {
    let mut w = calltape_format::ArchiveWriter::new(Vec::new(), header(spec)).unwrap();
    let filler: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    w.write_extension_frame(200, &filler).unwrap();
    for r in records(spec) {
        w.write(&r).unwrap();
    }
    w.finish().unwrap().0
}

fn json_of_env(args: &[&str], env: &[(String, String)]) -> serde_json::Value {
    let out = run(args, env);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn put(s3: &TestS3, bucket: &str, key: &str, bytes: Vec<u8>) {
    s3.store(bucket)
        .put(&StorePath::from(key), bytes.into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_archive_commands_work_on_s3_urls() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let mut spec = three_turn_call("s3-call-1");
    spec.audio = true;
    let bytes = big_archive(&spec);
    put(&s3, "calls", "2026/11/s3-call-1.calltape", bytes.clone()).await;
    let cut = bytes[..bytes.len() - 2000].to_vec();
    put(&s3, "calls", "2026/11/cut.calltape", cut).await;
    let env = s3.env();
    let url = "s3://calls/2026/11/s3-call-1.calltape";

    let out = run(&["inspect", url, "--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["header"]["session_id"], "s3-call-1");
    assert_eq!(v["read_from"], "footer");

    assert_eq!(code(&run(&["verify", url], &env)), 0);
    assert_eq!(
        code(&run(&["verify", "s3://calls/2026/11/cut.calltape"], &env)),
        3
    );
    let out = run(
        &["inspect", "s3://calls/2026/11/cut.calltape", "--json"],
        &env,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["read_from"], "scan");

    // the WAV from S3 equals the WAV from the local file
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.calltape");
    std::fs::write(&local, &bytes).unwrap();
    let (a, b) = (dir.path().join("s3.wav"), dir.path().join("local.wav"));
    let out = run(
        &[
            "export",
            url,
            "--wav",
            s(&a),
            "--transcript",
            s(&dir.path().join("t.srt")),
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&["export", s(&local), "--wav", s(&b)]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // recover from S3 to a local file
    let rec = dir.path().join("rec.calltape");
    let out = run(
        &["recover", "s3://calls/2026/11/cut.calltape", "-o", s(&rec)],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(code(&run(&["verify", s(&rec)], &[])), 0);
    // and from S3 to S3 (the copy is over 256 KiB: see big_archive)
    let v = json_of_env(
        &[
            "recover",
            "s3://calls/2026/11/cut.calltape",
            "-o",
            "s3://calls/recovered/cut.calltape",
            "--json",
        ],
        &env,
    );
    assert_eq!(v["output"], "s3://calls/recovered/cut.calltape");
    assert_eq!(
        code(&run(&["verify", "s3://calls/recovered/cut.calltape"], &env)),
        0
    );
    let again = run(
        &[
            "recover",
            "s3://calls/2026/11/cut.calltape",
            "-o",
            "s3://calls/recovered/cut.calltape",
        ],
        &env,
    );
    assert_eq!(
        code(&again),
        2,
        "an existing object is not replaced without --force"
    );

    let out = run(&["inspect", "s3://calls/missing.calltape"], &env);
    assert_ne!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no object at that key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_an_s3_prefix_incrementally() {
    let s3 = TestS3::start().await;
    s3.create_bucket("fleet");
    for i in 0..20 {
        let id = format!("fleet-{i:03}");
        let mut spec = three_turn_call(&id);
        spec.agent = if i % 2 == 0 {
            "even".into()
        } else {
            "odd".into()
        };
        put(
            &s3,
            "fleet",
            &format!("prod/{id}.calltape"),
            archive_bytes(&spec),
        )
        .await;
    }
    put(
        &s3,
        "fleet",
        "prod/zz-garbage.calltape",
        b"not an archive".to_vec(),
    )
    .await;
    put(
        &s3,
        "fleet",
        "other/elsewhere.calltape",
        archive_bytes(&three_turn_call("elsewhere")),
    )
    .await;
    put(&s3, "fleet", "prod/readme.txt", b"skip me".to_vec()).await;
    let env = s3.env();
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("c.sqlite");
    let c = s(&catalog);

    let out = run(
        &["index", "s3://fleet/prod", "--catalog", c, "--json"],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["listed"].as_u64(),
            v["indexed"].as_u64(),
            v["damaged"].as_u64()
        ),
        (Some(21), Some(20), Some(1))
    );
    assert_eq!(
        v["damaged_archives"][0]["location"],
        "s3://fleet/prod/zz-garbage.calltape"
    );

    let out = run(
        &["index", "s3://fleet/prod", "--catalog", c, "--json"],
        &env,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["indexed"].as_u64(),
            v["unchanged"].as_u64(),
            v["damaged"].as_u64()
        ),
        (Some(0), Some(21), Some(0))
    );

    // a changed object is re-read, a new one added
    let mut spec = three_turn_call("fleet-003");
    spec.turns.truncate(1);
    spec.agent = "odd".into();
    put(
        &s3,
        "fleet",
        "prod/fleet-003.calltape",
        archive_bytes(&spec),
    )
    .await;
    put(
        &s3,
        "fleet",
        "prod/fleet-new.calltape",
        archive_bytes(&three_turn_call("fleet-new")),
    )
    .await;
    let out = run(
        &[
            "index",
            "s3://fleet/prod",
            "--catalog",
            c,
            "--json",
            "--deep",
        ],
        &env,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // --deep re-reads everything indexed shallow before; the damaged one stays skipped
    assert_eq!(
        (v["indexed"].as_u64(), v["unchanged"].as_u64()),
        (Some(21), Some(1))
    );

    let ls = run(
        &[
            "ls",
            "--catalog",
            c,
            "--json",
            "--agent",
            "odd",
            "--limit",
            "100",
        ],
        &env,
    );
    let v: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 10);
    assert!(v["sessions"][0]["location"]
        .as_str()
        .unwrap()
        .starts_with("s3://fleet/prod/fleet-"));

    // replaying by session id resolves to the URL, and the URL opens
    let loc = calltape::catalog::resolve_session(Some(&catalog), "fleet-01").unwrap_err();
    assert!(loc.to_string().contains("several"));
    let loc = calltape::catalog::resolve_session(Some(&catalog), "fleet-017")
        .unwrap()
        .unwrap();
    assert_eq!(loc, "s3://fleet/prod/fleet-017.calltape");
    // (opening that small object with `verify` would need the 256 KiB suffix GET that s3s-fs
    // refuses on objects shorter than the suffix: see big_archive)
    let tools = run(
        &[
            "sql",
            "--catalog",
            c,
            "--json",
            "SELECT count(*) AS n FROM tool_calls WHERE is_error",
        ],
        &env,
    );
    let v: serde_json::Value = serde_json::from_slice(&tools.stdout).unwrap();
    assert_eq!(
        v[0]["n"], 20,
        "one failing lookup_order per three-turn call (fleet-003 now has one turn)"
    );
}

/// A server that refuses a suffix range longer than the object (s3s-fs does; real S3 returns
/// the whole object) still opens small archives: the source falls back to HEAD + range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_archives_open_even_where_long_suffix_ranges_are_refused() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let spec = three_turn_call("s3-small-1");
    let mut w = calltape_format::ArchiveWriter::new(Vec::new(), header(&spec)).unwrap();
    for r in records(&spec) {
        w.write(&r).unwrap();
    }
    let bytes = w.finish().unwrap().0;
    assert!(bytes.len() < 256 * 1024);
    put(&s3, "calls", "small.calltape", bytes).await;
    let v = json_of_env(
        &["inspect", "s3://calls/small.calltape", "--json"],
        &s3.env(),
    );
    assert_eq!(v["header"]["session_id"], "s3-small-1");
    assert_eq!(v["read_from"], "footer");
}
