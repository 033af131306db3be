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
use calltape_tests::s3_server::TestS3;
use criterion::{criterion_group, criterion_main, Criterion};
use object_store::path::Path as StorePath;
use object_store::ObjectStoreExt;

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
                    calltape_samples::synthetic::small_archive(i).into(),
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

fn stats_over_a_million_turns(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.sqlite");
    let start = Instant::now();
    calltape::catalog::synthetic::fill(&path, 100_000).unwrap();
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
