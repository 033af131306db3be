//! Time to first frame (connect + open + first render on TestBackend) of a generated two-hour
//! call, from local disk and from S3 on loopback; redraw time after a step; peak RSS of a
//! replay session. The archive (two 16 kHz tracks, ~30 control records/s) is generated once
//! in a child process and cached under target/.
//!
//! `cargo bench -p calltape --bench open`

use std::path::{Path, PathBuf};
use std::time::Duration;

use calltape::tui::action::Action;
use calltape::tui::{Harness, Options};
use criterion::{criterion_group, Criterion};

const HOURS2_S: u64 = 2 * 3600;

fn cache_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("calltape-bench").join("two_hours.calltape")
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn opts() -> Options {
    Options {
        color: false,
        player: None,
        ..Options::default()
    }
}

fn bench(c: &mut Criterion) {
    let path = cache_path();
    let target = path.to_str().unwrap().to_string();
    let mut g = c.benchmark_group("two_hour_call");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("first_frame_local", |b| {
        b.iter(|| {
            let mut h = Harness::open(&target, opts(), 120, 40).unwrap();
            h.screen()
        })
    });
    // S3 on loopback: the in-process test server over a directory holding the archive
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = rt.block_on(calltape_tests::s3_server::TestS3::start());
    s3.create_bucket("bench");
    std::fs::copy(&path, s3.root().join("bench").join("two_hours.calltape")).unwrap();
    for (k, v) in s3.env() {
        // SAFETY: single-threaded at this point of the benchmark (no other threads read env)
        unsafe { std::env::set_var(k, v) };
    }
    g.bench_function("first_frame_s3_loopback", |b| {
        b.iter(|| {
            let mut h = Harness::open("s3://bench/two_hours.calltape", opts(), 120, 40).unwrap();
            h.screen()
        })
    });
    let mut h = Harness::open(&target, opts(), 120, 40).unwrap();
    h.settle();
    g.bench_function("redraw_after_step", |b| {
        b.iter(|| {
            h.act(Action::NextTurn);
            h.app.outbox.clear();
            h.screen()
        })
    });
    g.bench_function("step_with_background_loads", |b| {
        b.iter(|| {
            h.act(Action::NextTurn);
            h.settle();
            h.screen()
        })
    });
    g.finish();
}

fn session_memory() {
    let path = cache_path();
    reset_peak_rss();
    let before = peak_rss_kib();
    let mut h = Harness::open(path.to_str().unwrap(), opts(), 120, 40).unwrap();
    h.settle();
    h.screen();
    // walk the call: every 10th turn with its loads, zoom out to the whole call, search it
    for _ in 0..72 {
        for _ in 0..10 {
            h.act(Action::NextTurn);
        }
        h.settle();
        h.screen();
    }
    h.press("-------");
    h.press("/answer 700<Enter>");
    h.screen();
    println!(
        "two_hour_call/session_peak_rss: {} MiB (peak RSS of the whole bench process after reset: {} MiB before the session)",
        peak_rss_kib() / 1024,
        before / 1024
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(p) = std::env::var("CALLTAPE_BENCH_GENERATE") {
        calltape_samples::synthetic::long_call(Path::new(&p), HOURS2_S);
        return;
    }
    let path = cache_path();
    if !path.exists() {
        eprintln!("generating a two-hour call at {} (once)…", path.display());
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .env("CALLTAPE_BENCH_GENERATE", &path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let size = std::fs::metadata(&path).unwrap().len();
    println!("archive: {} ({} MiB)", path.display(), size >> 20);
    session_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
