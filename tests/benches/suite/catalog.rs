//! The catalog: archives indexed per second from S3 on loopback (the in-process s3s-fs
//! server; small closed archives, the library's `index` — what `calltape index` runs — with
//! its 32 requests in flight), and `stats` over a synthetic catalog of calls × 10 turns,
//! overall and by agent.
//!
//! The index runs in a child process (this binary re-executed with
//! `--catalog-child <url> <catalog.sqlite>`) that is given the server's endpoint and keys in
//! its environment, the way a user's shell would give them to `calltape index`.

use std::process::Command;
use std::time::{Duration, Instant};

use calltape::catalog::indexer::{self, IndexOptions};
use calltape::catalog::query::Filter;
use calltape::catalog::{schema, stats};
use calltape_tests::s3_server::TestS3;
use futures::StreamExt as _;
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt as _;

use crate::table::Row;

/// The private flag that turns this binary into an indexing child.
pub const CHILD_FLAG: &str = "--catalog-child";

const GOAL_ARCHIVES_PER_S: f64 = 500.0;
/// Goal for `stats`, per million turns.
const GOAL_STATS_S_PER_M: f64 = 1.0;

/// The child: indexes `args[0]` into a fresh catalog at `args[1]`, prints
/// `indexed=N listed=N micros=N`.
pub fn child(args: &[String]) {
    let (url, db) = match args {
        [url, db, ..] => (url.clone(), std::path::PathBuf::from(db)),
        _ => panic!("{CHILD_FLAG} <url> <catalog.sqlite>"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut conn = schema::open_rw(&db).expect("catalog");
    let start = Instant::now();
    let report = rt
        .block_on(indexer::index(&mut conn, &[url], &IndexOptions::default()))
        .expect("index");
    let elapsed = start.elapsed();
    println!(
        "indexed={} listed={} damaged={} micros={}",
        report.indexed,
        report.listed,
        report.damaged,
        elapsed.as_micros()
    );
}

/// Archives per second of one child run over `url`.
fn index_once(url: &str, env: &[(String, String)], db: &std::path::Path, n: usize) -> f64 {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .arg(CHILD_FLAG)
        .arg(url)
        .arg(db)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run the index child");
    assert!(
        out.status.success(),
        "index child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let get = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("index child reported no {key}: {line}"))
    };
    assert_eq!(get("indexed") as usize, n, "indexed every archive: {line}");
    assert_eq!(get("damaged"), 0, "{line}");
    n as f64 / (get("micros") as f64 / 1e6)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn index_row(quick: bool) -> Row {
    let n = if quick { 300 } else { 2000 };
    let runs = if quick { 3 } else { 5 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s3 = rt.block_on(TestS3::start());
    s3.create_bucket("bench");
    let store = s3.store("bench");
    rt.block_on(async {
        futures::stream::iter(0..n)
            .map(|i| {
                let store = &store;
                async move {
                    store
                        .put(
                            &StorePath::from(format!("calls/{i:06}.calltape")),
                            calltape_samples::synthetic::small_archive(i).into(),
                        )
                        .await
                        .expect("upload archive")
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
    });
    let env = s3.env();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rates: Vec<f64> = (0..runs)
        .map(|run| {
            index_once(
                "s3://bench/calls",
                &env,
                &dir.path().join(format!("c{run}.sqlite")),
                n,
            )
        })
        .collect();
    drop(s3);
    rates.sort_by(f64::total_cmp);
    let rate = rates[rates.len() / 2];
    Row::new(
        format!("catalog: archives indexed per second from S3 on loopback ({n} small archives, median of {runs} runs)"),
        format!(
            "{rate:.0}/s ({:.0}–{:.0})",
            rates[0],
            rates[rates.len() - 1]
        ),
        "",
    )
    .goal(
        format!("≥ {GOAL_ARCHIVES_PER_S:.0}/s"),
        rate >= GOAL_ARCHIVES_PER_S,
    )
}

fn stats_rows(quick: bool) -> Vec<Row> {
    let calls: i64 = if quick { 10_000 } else { 100_000 };
    let turns = calls * 10;
    let reps = if quick { 5 } else { 7 };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synthetic.sqlite");
    let start = Instant::now();
    calltape::catalog::synthetic::fill(&path, calls).expect("synthetic catalog");
    eprintln!(
        "  built a catalog of {turns} turns in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    let conn = schema::open_ro(&path).expect("catalog");
    let label = if quick {
        format!("{} k turns", turns / 1000)
    } else {
        format!("{} M turns", turns / 1_000_000)
    };
    let per_m = 1_000_000.0 / turns as f64;
    let mut rows = Vec::new();
    for by in [None, Some(stats::GroupBy::Agent)] {
        let t = median(
            (0..reps)
                .map(|_| {
                    let start = Instant::now();
                    let s =
                        stats::compute(&conn, &Filter::default(), by, 1500.0, None).expect("stats");
                    let elapsed = start.elapsed();
                    let counted: i64 = s.groups.iter().map(|g| g.turns).sum();
                    assert_eq!(counted, turns, "stats counted every turn");
                    elapsed
                })
                .collect(),
        );
        let s = t.as_secs_f64();
        let scaled = s * per_m;
        let cell = if quick {
            format!("{:.0} ms (≈ {scaled:.2} s per 1 M turns)", s * 1e3)
        } else {
            format!("{:.0} ms", s * 1e3)
        };
        let goal = if quick {
            format!("≤ {GOAL_STATS_S_PER_M:.0} s per 1 M turns (scaled)")
        } else {
            format!("≤ {GOAL_STATS_S_PER_M:.0} s")
        };
        rows.push(
            Row::new(
                format!(
                    "catalog: `stats`{} over {label}",
                    if by.is_some() { " --by agent" } else { "" }
                ),
                cell,
                "",
            )
            .goal(goal, scaled <= GOAL_STATS_S_PER_M),
        );
    }
    rows
}

pub fn rows(quick: bool) -> Vec<Row> {
    let mut rows = vec![index_row(quick)];
    rows.extend(stats_rows(quick));
    rows
}
