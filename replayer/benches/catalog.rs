//! Catalog throughput: archives indexed per second from the in-process S3 server (2000 small
//! archives, one tail GET each, 32 in flight), and `stats` over a synthetic catalog of
//! 1 000 000 turns (100 000 calls × 10 turns), overall and `--by agent`.
//!
//! `cargo bench -p calltape --bench catalog` (set `CALLTAPE_BENCH_ARCHIVES` to change the
//! archive count). The index numbers are also printed as archives/s.

use std::time::{Duration, Instant};

use calltape::catalog::indexer::{self, IndexOptions};
use calltape::catalog::query::Filter;
use calltape::catalog::{schema, stats};
use calltape_format::*;
use calltape_tests::s3_server::TestS3;
use criterion::{criterion_group, criterion_main, Criterion};
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;
use rusqlite::params;

const MS: u64 = 1_000_000;

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
    let mut w = ArchiveWriter::new(Vec::new(), header).unwrap();
    for turn in 1..=4u32 {
        let t0 = u64::from(turn) * 10_000 * MS;
        let e2e = 600 + (i as u64 * 37 + u64::from(turn) * 101) % 1500;
        let recs = vec![
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
            w.write(&TimedRecord::new(t0 + k as u64 * MS, r)).unwrap();
        }
    }
    w.finish().unwrap().0
}

fn index_from_s3(c: &mut Criterion) {
    let n: usize = std::env::var("CALLTAPE_BENCH_ARCHIVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3 = rt.block_on(TestS3::start());
    s3.create_bucket("bench");
    let store = s3.store("bench");
    rt.block_on(async {
        for i in 0..n {
            store
                .put(
                    &StorePath::from(format!("calls/{i:06}.calltape")),
                    small_archive(i).into(),
                )
                .await
                .unwrap();
        }
    });
    for (k, v) in s3.env() {
        // SAFETY: set before any other thread of this benchmark reads the environment
        unsafe { std::env::set_var(k, v) };
    }
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("index");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(criterion::Throughput::Elements(n as u64));
    let mut run = 0;
    group.bench_function(format!("s3_{n}_archives"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                run += 1;
                let path = dir.path().join(format!("c{run}.sqlite"));
                let mut conn = schema::open_rw(&path).unwrap();
                let start = Instant::now();
                let report = rt
                    .block_on(indexer::index(
                        &mut conn,
                        &["s3://bench/calls".to_string()],
                        &IndexOptions::default(),
                    ))
                    .unwrap();
                total += start.elapsed();
                assert_eq!(report.indexed as usize, n);
                eprintln!(
                    "  indexed {n} archives in {:.2}s: {:.0} archives/s",
                    report.seconds, report.archives_per_second
                );
            }
            total
        })
    });
    group.finish();
}

/// 100 000 calls × 10 turns over 4 agents and 30 days.
fn synthetic_catalog(path: &std::path::Path) {
    let conn = schema::open_rw(path).unwrap();
    conn.execute_batch("BEGIN").unwrap();
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
            .unwrap();
        let mut turn = conn
            .prepare(
                "INSERT INTO turns (sid, turn, speaker, start_ms, user_text, agent_text, interrupted,
                    errors, tool_calls, tool_errors, e2e_ms, e2e_valid, eou_ms, stt_ms, llm_ms,
                    tool_ms, tts_ms, rest_ms, flags)
                 VALUES (?1, ?2, 'user', 0, '', '', 0, 0, 0, 0, ?3, 1, ?4, ?5, ?6, NULL, ?7, ?8, '')",
            )
            .unwrap();
        for sid in 1..=100_000i64 {
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
            .unwrap();
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
                .unwrap();
            }
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn stats_over_a_million_turns(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.sqlite");
    let start = Instant::now();
    synthetic_catalog(&path);
    eprintln!(
        "  built a catalog of 1 000 000 turns in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    let conn = schema::open_ro(&path).unwrap();
    let mut group = c.benchmark_group("stats");
    group.sample_size(10);
    group.bench_function("1M_turns", |b| {
        b.iter(|| {
            let s = stats::compute(&conn, &Filter::default(), None, 1500.0, None).unwrap();
            assert_eq!(s.groups[0].turns, 1_000_000);
        })
    });
    group.bench_function("1M_turns_by_agent", |b| {
        b.iter(|| {
            let s = stats::compute(
                &conn,
                &Filter::default(),
                Some(stats::GroupBy::Agent),
                1500.0,
                None,
            )
            .unwrap();
            assert_eq!(s.groups.len(), 4);
        })
    });
    group.finish();
}

criterion_group!(benches, stats_over_a_million_turns, index_from_s3);
criterion_main!(benches);
