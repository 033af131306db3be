//! The Parquet catalog (`index --parquet`, `catalog compact`) over the sample archives on a
//! local destination: incremental runs write only what changed and never touch old parts,
//! concurrent indexers both land and compact leaves one row per archive, an interrupted run
//! is invisible (or finished by the next), damaged archives land in `damaged`, and an
//! unusable destination fails before anything is indexed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use arrow_array::{Array, StringArray};
use calltape_catalog::indexer::IndexOptions;
use calltape_catalog::parquet::{self, manifest, Dest, ROLL_FORWARD_AFTER_SECS};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/archives")
}

/// A copy of the sample archives in a fresh directory (4 intact calls, 1 damaged).
fn corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(samples()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn deep() -> IndexOptions {
    IndexOptions {
        deep: true,
        ..Default::default()
    }
}

/// Every `.parquet` file under `root/<table>` (relative paths), sorted.
fn parts(root: &Path, table: &str) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.insert(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&root.join(table), root, &mut out);
    out
}

/// The `location` column of every row of `table` (what an engine globbing the table sees).
fn locations(root: &Path, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for rel in parts(root, table) {
        let bytes = bytes::Bytes::from(std::fs::read(root.join(&rel)).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let col = b.column_by_name("location").unwrap();
            let s = col.as_any().downcast_ref::<StringArray>().unwrap();
            out.extend((0..s.len()).map(|i| s.value(i).to_string()));
        }
    }
    out.sort();
    out
}

fn files_with_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    [
        "sessions",
        "turns",
        "tool_calls",
        "errors",
        "usage",
        "damaged",
    ]
    .iter()
    .flat_map(|t| parts(root, t))
    .map(|rel| {
        let b = std::fs::read(root.join(&rel)).unwrap();
        (rel, b)
    })
    .collect()
}

async fn dest(dir: &Path) -> Dest {
    parquet::open_dest(dir.to_str().unwrap()).await.unwrap()
}

#[tokio::test]
async fn second_run_writes_only_the_changed_archive_and_keeps_old_parts() {
    let src = corpus();
    let out = tempfile::tempdir().unwrap();
    let d = dest(out.path()).await;
    let targets = vec![src.path().display().to_string()];
    let first = parquet::index(&d, &targets, &deep()).await.unwrap();
    assert_eq!((first.listed, first.indexed, first.damaged), (5, 4, 1));
    assert_eq!(locations(out.path(), "sessions").len(), 4);
    let damaged = locations(out.path(), "damaged");
    assert_eq!(damaged.len(), 1);
    assert!(
        damaged[0].ends_with("crash_truncated.calltape"),
        "{damaged:?}"
    );
    let before = files_with_bytes(out.path());

    // nothing changed: nothing written, not even a manifest
    let again = parquet::index(&d, &targets, &deep()).await.unwrap();
    assert_eq!((again.indexed, again.unchanged), (0, 5));
    assert!(again.parts.is_empty() && again.manifest.is_none());
    assert_eq!(files_with_bytes(out.path()), before);

    // one archive rewritten: only it is read, into new parts; old parts are byte-identical
    let changed = src.path().join("slow_llm.calltape");
    let bytes = std::fs::read(&changed).unwrap();
    std::fs::remove_file(&changed).unwrap();
    std::fs::write(&changed, bytes).unwrap();
    let third = parquet::index(&d, &targets, &deep()).await.unwrap();
    assert_eq!((third.indexed, third.unchanged), (1, 4));
    let after = files_with_bytes(out.path());
    for old in &before {
        assert!(after.contains(old), "{} was rewritten or removed", old.0);
    }
    let new_sessions: Vec<_> = after
        .iter()
        .filter(|(rel, _)| rel.starts_with("sessions/") && !before.iter().any(|(r, _)| r == rel))
        .collect();
    assert_eq!(new_sessions.len(), 1);
    // the superseded rows stay until compact, which keeps the newest per archive
    assert_eq!(locations(out.path(), "sessions").len(), 5);
    let day = third.parts[0].split("day=").nth(1).unwrap()[..10].to_string();
    let c = parquet::compact(&d, &day).await.unwrap();
    assert!(!c.parts_removed.is_empty());
    let sessions = locations(out.path(), "sessions");
    assert_eq!(sessions.len(), 4, "{sessions:?}");
    assert_eq!(parts(out.path(), "sessions").len(), 1);
    assert_eq!(
        sessions
            .iter()
            .filter(|l| l.ends_with("slow_llm.calltape"))
            .count(),
        1
    );
}

#[tokio::test]
async fn concurrent_indexers_both_land_and_compact_keeps_one_row_per_archive() {
    let src = corpus();
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (dest(out.path()).await, dest(out.path()).await);
    let targets = vec![src.path().display().to_string()];
    let opts = deep();
    let (ra, rb) = tokio::join!(
        parquet::index(&a, &targets, &opts),
        parquet::index(&b, &targets, &opts)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((ra.indexed, rb.indexed), (4, 4));
    let names: BTreeSet<_> = ra.parts.iter().chain(&rb.parts).collect();
    assert_eq!(
        names.len(),
        ra.parts.len() + rb.parts.len(),
        "part names collide"
    );
    let state = manifest::load(&a).await.unwrap();
    assert_eq!(state.manifests, 2);
    assert_eq!(state.entries.len(), 5);
    // every part readable; each archive twice until compacted
    assert_eq!(locations(out.path(), "sessions").len(), 8);
    let day = ra.parts.iter().find(|p| p.starts_with("turns/")).unwrap();
    let day = day.split("day=").nth(1).unwrap()[..10].to_string();
    parquet::compact(&a, &day).await.unwrap();
    let sessions = locations(out.path(), "sessions");
    let distinct: BTreeSet<_> = sessions.iter().collect();
    assert_eq!((sessions.len(), distinct.len()), (4, 4));
}

/// Moves every committed part and manifest of `root` into the run's staging folder, as a run
/// interrupted after (`with_manifest`) or before its commit point would have left them.
fn uncommit(root: &Path, with_manifest: bool) -> String {
    let manifests: Vec<_> = std::fs::read_dir(root.join("_manifest"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(manifests.len(), 1);
    let run = manifests[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let staging = root.join("_staging").join(&run);
    for t in [
        "sessions",
        "turns",
        "tool_calls",
        "errors",
        "usage",
        "damaged",
    ] {
        for rel in parts(root, t) {
            let to = staging.join(&rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::rename(root.join(&rel), &to).unwrap();
        }
    }
    if with_manifest {
        std::fs::rename(&manifests[0], staging.join("manifest.json")).unwrap();
    } else {
        std::fs::remove_file(&manifests[0]).unwrap();
    }
    run
}

fn age(dir: &Path, by: Duration) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            age(&p, by);
        } else {
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(SystemTime::now() - by).unwrap();
        }
    }
}

#[tokio::test]
async fn a_run_interrupted_before_its_commit_is_invisible_and_one_after_it_is_finished() {
    let src = corpus();
    let targets = vec![src.path().display().to_string()];

    // interrupted before the staged manifest: no table sees its parts, the next run redoes it
    let out = tempfile::tempdir().unwrap();
    let d = dest(out.path()).await;
    parquet::index(&d, &targets, &deep()).await.unwrap();
    uncommit(out.path(), false);
    assert!(locations(out.path(), "sessions").is_empty());
    assert!(locations(out.path(), "turns").is_empty());
    let redo = parquet::index(&d, &targets, &deep()).await.unwrap();
    assert_eq!((redo.indexed, redo.rolled_forward), (4, 0));
    assert_eq!(locations(out.path(), "sessions").len(), 4);

    // interrupted after it: the next run (once the commit is old enough) publishes the parts
    // and the manifest, and then finds nothing left to index
    let out = tempfile::tempdir().unwrap();
    let d = dest(out.path()).await;
    parquet::index(&d, &targets, &deep()).await.unwrap();
    let committed = locations(out.path(), "turns");
    let run = uncommit(out.path(), true);
    assert!(locations(out.path(), "turns").is_empty());
    // too recent: its run may still be publishing, so it is left alone
    let early = parquet::index(&d, &[], &deep()).await.unwrap();
    assert_eq!(early.rolled_forward, 0);
    age(
        &out.path().join("_staging").join(&run),
        Duration::from_secs(ROLL_FORWARD_AFTER_SECS as u64 + 60),
    );
    let next = parquet::index(&d, &targets, &deep()).await.unwrap();
    assert_eq!(
        (next.rolled_forward, next.indexed, next.unchanged),
        (1, 0, 5)
    );
    assert_eq!(locations(out.path(), "turns"), committed);
    assert!(!out.path().join("_staging").join(&run).exists());
}

#[tokio::test]
async fn an_unusable_destination_fails_before_indexing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("catalog");
    let err = parquet::open_dest(under_file.to_str().unwrap())
        .await
        .err()
        .expect("a destination under a file cannot be used");
    assert!(
        err.to_string()
            .contains("cannot create the Parquet destination"),
        "{err}"
    );
    assert!(!under_file.exists());
}

#[tokio::test]
async fn an_unreachable_object_store_fails_before_indexing_with_a_hint() {
    // a port nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // only this test reads the AWS settings: the others use local destinations and sources
    for (k, v) in [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ] {
        std::env::set_var(k, v);
    }
    let err = parquet::open_dest("s3://calltape-nowhere/catalog")
        .await
        .err()
        .expect("nothing listens there");
    let msg = err.to_string();
    assert!(
        msg.starts_with("s3://calltape-nowhere/catalog: cannot write to the Parquet destination"),
        "{msg}"
    );
    assert!(msg.contains("is the endpoint reachable?"), "{msg}");
}

#[tokio::test]
async fn merged_manifests_keep_what_was_indexed() {
    let src = corpus();
    let out = tempfile::tempdir().unwrap();
    let d = dest(out.path()).await;
    let targets = vec![src.path().display().to_string()];
    parquet::index(&d, &targets, &deep()).await.unwrap();
    let force = IndexOptions {
        force: true,
        ..deep()
    };
    parquet::index(&d, &targets, &force).await.unwrap();
    let before = manifest::load(&d).await.unwrap();
    assert_eq!(before.manifests, 2);
    assert_eq!(manifest::merge(&d).await.unwrap(), 2);
    let after = manifest::load(&d).await.unwrap();
    assert_eq!(after.manifests, 1);
    assert_eq!(after.entries, before.entries);
    // and the next run still finds nothing to do
    let again = parquet::index(&d, &targets, &deep()).await.unwrap();
    assert_eq!((again.indexed, again.unchanged), (0, 5));
}

#[tokio::test]
async fn compact_refuses_a_malformed_day() {
    let out = tempfile::tempdir().unwrap();
    let d = dest(out.path()).await;
    let err = parquet::compact(&d, "2026-13-45").await.err().unwrap();
    assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
}
