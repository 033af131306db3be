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
use calltape_format::*;
use calltape_tests::s3_server::TestS3;
use futures::StreamExt as _;
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt as _;
use rusqlite::params;

use crate::table::Row;

/// The private flag that turns this binary into an indexing child.
pub const CHILD_FLAG: &str = "--catalog-child";

const MS: u64 = 1_000_000;
const GOAL_ARCHIVES_PER_S: f64 = 500.0;
/// Goal for `stats`, per million turns.
const GOAL_STATS_S_PER_M: f64 = 1.0;

/// A small closed archive: four turns of control records, no audio (~2 KiB).
fn small_archive(i: usize) -> Vec<u8> {
    let header = Header {
        session_id: format!("bench-{i:06}"),
        started_at: "2026-11-21T10:00:00.000Z".into(),
        started_at_unix_ns: 1_795_255_200_000_000_000 + i as i64 * 60_000_000_000,
        agent: AgentInfo {
            name: format!("agent-{}", i % 4),
            version: "1.0".into(),
        },
        environment: Some("bench".into()),
        tags: Default::default(),
        tracks: Vec::new(),
    };
    let mut w = ArchiveWriter::new(Vec::new(), header).expect("writer");
    for turn in 1..=4u32 {
        let t0 = u64::from(turn) * 10_000 * MS;
        let e2e = 600 + (i as u64 * 37 + u64::from(turn) * 101) % 1500;
        let recs = [
            Record::TurnStart(TurnStart {
                turn,
                speaker: Speaker::User,
                attributes: Default::default(),
            }),
            Record::StageTiming(StageTiming::new(Some(turn), Stage::Vad, t0, t0 + 1500 * MS)),
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Eou,
                t0 + 1500 * MS,
                t0 + 1800 * MS,
            )),
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Playback,
                t0 + (1500 + e2e) * MS,
                t0 + (3000 + e2e) * MS,
            )),
            Record::TurnEnd(TurnEnd {
                turn,
                speaker: None,
                attributes: Default::default(),
            }),
        ];
        for (k, r) in recs.into_iter().enumerate() {
            w.write(&TimedRecord::new(t0 + k as u64 * MS, r))
                .expect("write record");
        }
    }
    w.finish().expect("finish archive").0
}

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

/// `calls` calls × 10 turns over 4 agents and 30 days (as in replayer/benches/catalog.rs).
fn synthetic_catalog(path: &std::path::Path, calls: i64) {
    let conn = schema::open_rw(path).expect("catalog");
    conn.execute_batch("BEGIN").expect("begin");
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    {
        let mut sess = conn
            .prepare(
                "INSERT INTO sessions (sid, location, session_id, started_at, started_at_unix_ns,
                    started_day, agent_name, agent_version, duration_ms, turns, records,
                    interruptions, errors, tool_calls, tool_errors, max_e2e_ms, size_bytes, indexed_at)
                 VALUES (?1, ?2, ?3, '2026-11-01T00:00:00Z', ?4, ?5, ?6, '1.0', 60000, 10, 100, 0, 0,
                    1, 0, ?7, 1000, 'now')",
            )
            .expect("prepare sessions");
        let mut turn = conn
            .prepare(
                "INSERT INTO turns (sid, turn, speaker, start_ms, user_text, agent_text, interrupted,
                    errors, tool_calls, tool_errors, e2e_ms, e2e_valid, eou_ms, stt_ms, llm_ms,
                    tool_ms, tts_ms, rest_ms, flags)
                 VALUES (?1, ?2, 'user', 0, '', '', 0, 0, 0, 0, ?3, 1, ?4, ?5, ?6, NULL, ?7, ?8, '')",
            )
            .expect("prepare turns");
        for sid in 1..=calls {
            let day = sid % 30;
            let rows: Vec<[f64; 6]> = (0..10)
                .map(|_| {
                    let eou = 200.0 + (next() % 400) as f64;
                    let stt = (next() % 100) as f64;
                    let llm = 300.0 + (next() % 1500) as f64;
                    let tts = 100.0 + (next() % 300) as f64;
                    let rest = (next() % 200) as f64;
                    [eou + stt + llm + tts + rest, eou, stt, llm, tts, rest]
                })
                .collect();
            let max = rows.iter().map(|r| r[0]).fold(0.0, f64::max);
            sess.execute(params![
                sid,
                format!("s3://bench/{sid}.calltape"),
                format!("syn-{sid:06}"),
                1_793_491_200_000_000_000i64 + day * 86_400_000_000_000,
                format!("2026-11-{:02}", day + 1),
                format!("agent-{}", sid % 4),
                max
            ])
            .expect("insert session");
            for (t, r) in rows.iter().enumerate() {
                turn.execute(params![
                    sid,
                    t as i64 + 1,
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5]
                ])
                .expect("insert turn");
            }
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
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
                            small_archive(i).into(),
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
    synthetic_catalog(&path, calls);
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
