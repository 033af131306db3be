//! The replayer over a slow link: the in-process S3 server behind the fault proxy in delay
//! mode (a fixed time added to every response), measuring the time until a 10-minute call's
//! transcript is in the TUI model (open + the first view's jobs run as the real TUI runs
//! them: concurrently, on a tokio runtime), and the requests and bytes the first view of a
//! 2-hour call takes until every one of its jobs is done.
//!
//! ```text
//! cargo bench -p calltape-tests --bench slow_link            # 10-minute and 2-hour calls
//! cargo bench -p calltape-tests --bench slow_link -- --quick # 10-minute call only
//! ```
//!
//! Each measurement runs in a child process (this binary re-executed with `--child`), so every
//! run starts with a fresh S3 client. Prints one line per figure; the figures are copied into
//! BENCHMARKS.md by hand.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use calltape::tui::jobs::{JobResult, JobRunner};
use calltape::tui::{open_call, resolve_target, update, App, Options};
use calltape_tests::fault_proxy::FaultProxy;
use calltape_tests::s3_server::TestS3;

const CHILD_FLAG: &str = "--child";

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("calltape-bench")
}

/// The bench suite's cached call (same generator, same file name), generated when missing.
fn cached_call(name: &str, seconds: u64) -> PathBuf {
    let path = cache_dir().join(name);
    let opens = std::fs::File::open(&path)
        .ok()
        .is_some_and(|mut f| calltape_format::open(&mut f).is_ok());
    if !opens {
        eprintln!("  generating a {seconds} s call at {}…", path.display());
        calltape_samples::synthetic::long_call(&path, seconds);
    }
    path
}

/// The child: opens `url` as the TUI does and runs the first view's jobs concurrently;
/// prints `transcript_us`, `view_us` and the request and byte counts at each point.
fn child(url: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let opts = Options {
        color: false,
        player: None,
        ..Options::default()
    };
    let start = Instant::now();
    let call = rt
        .block_on(async { open_call(&resolve_target(url, None)?).await })
        .expect("open the call");
    let mut app = App::new(Arc::new(call), opts, (120, 40));
    let opened = start.elapsed();
    let (tx, rx) = mpsc::channel::<JobResult>();
    let mut runner = JobRunner::new(rt.handle().clone(), tx, |r| r);
    let mut pending = 0usize;
    let mut transcript: Option<(Duration, (u64, u64))> = None;
    loop {
        for job in app.outbox.drain(..).collect::<Vec<_>>() {
            runner.submit(app.env(), job);
            pending += 1;
        }
        if pending == 0 {
            break;
        }
        let result = rx.recv().expect("a job result");
        pending -= 1;
        if let JobResult::Failed { message, .. } = &result {
            panic!("a first-view job failed: {message}");
        }
        update::on_job(&mut app, result);
        if transcript.is_none() && app.span.is_some() {
            transcript = Some((start.elapsed(), app.call.source.stats()));
        }
    }
    let view = start.elapsed();
    let (t, (t_requests, t_bytes)) = transcript.expect("the transcript was loaded");
    let (requests, bytes) = app.call.source.stats();
    println!(
        "open_us={} transcript_us={} transcript_requests={t_requests} transcript_bytes={t_bytes} view_us={} view_requests={requests} view_bytes={bytes}",
        opened.as_micros(),
        t.as_micros(),
        view.as_micros()
    );
}

fn run_child(url: &str, env: &[(String, String)]) -> Vec<(String, u64)> {
    calltape_tests::child::run_child(&[CHILD_FLAG, url], env)
}

fn get(f: &[(String, u64)], key: &str) -> u64 {
    f.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("child reported no {key}"))
}

fn upload(rt: &tokio::runtime::Runtime, s3: &TestS3, path: &Path, name: &str) {
    rt.block_on(s3.upload_file("bench", name, path));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == CHILD_FLAG) {
        return child(&args[2]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let reps = 5;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s3 = rt.block_on(TestS3::start());
    s3.create_bucket("bench");
    let proxy = rt.block_on(FaultProxy::start(s3.addr()));
    let mut env = s3.env();
    for (k, v) in env.iter_mut() {
        if k == "AWS_ENDPOINT_URL" {
            *v = proxy.endpoint();
        }
    }
    let mut calls = vec![("ten_minutes.calltape", 600u64)];
    if !quick {
        calls.push(("two_hours.calltape", 2 * 3600));
    }
    for (name, seconds) in calls {
        let path = cached_call(name, seconds);
        let size = std::fs::metadata(&path).expect("archive").len();
        upload(&rt, &s3, &path, name);
        let url = format!("s3://bench/{name}");
        for delay_ms in [0u64, 30, 100] {
            proxy.delay_each_response(Duration::from_millis(delay_ms));
            let mut runs: Vec<Vec<(String, u64)>> =
                (0..reps).map(|_| run_child(&url, &env)).collect();
            runs.sort_by_key(|f| get(f, "transcript_us"));
            let f = &runs[runs.len() / 2];
            println!(
                "{name} ({:.1} MiB), +{delay_ms} ms per request: transcript in the model after {:.0} ms ({} requests, {:.0} KiB); first view loaded after {:.0} ms ({} requests, {:.0} KiB); opened after {:.0} ms",
                size as f64 / (1u64 << 20) as f64,
                get(f, "transcript_us") as f64 / 1000.0,
                get(f, "transcript_requests"),
                get(f, "transcript_bytes") as f64 / 1024.0,
                get(f, "view_us") as f64 / 1000.0,
                get(f, "view_requests"),
                get(f, "view_bytes") as f64 / 1024.0,
                get(f, "open_us") as f64 / 1000.0,
            );
        }
    }
    proxy.delay_each_response(Duration::ZERO);
    drop(proxy);
    drop(s3);
}
