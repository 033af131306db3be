//! Opening a generated call in the replayer: time to summary (connect + read footer, summary
//! and chunk index), time to first frame (the real TUI on a test backend: open + first
//! render), requests made, peak RSS; from local disk and from S3 on loopback (the in-process
//! s3s-fs server, the object uploaded with multipart), against reading or downloading the
//! whole object.
//!
//! Each measurement runs in a child process (this binary re-executed with
//! `--open-child <file-or-url>`) so that the peak RSS it reports (VmHWM) is the open path's
//! alone. The call (two 16 kHz tracks, ~30 control records/s, a turn every 10 s) is 2 hours
//! long in full mode and 10 minutes in quick mode, generated once and cached under
//! `target/calltape-bench/` (the 2-hour file is the one `cargo bench -p calltape --bench open`
//! uses).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use calltape::source::{ArchiveSource, Location};
use calltape::tui::{Harness, Options};
use calltape_tests::s3_server::TestS3;
use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;

use crate::table::Row;

/// The private flag that turns this binary into a measuring child.
pub const CHILD_FLAG: &str = "--open-child";

const GOAL_FIRST_FRAME_MS: f64 = 300.0;
const GOAL_REQUESTS: u64 = 3;
const GOAL_RSS_MIB: f64 = 64.0;
/// Multipart part size for the upload.
const PART: usize = 8 << 20;

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("calltape-bench")
}

/// True when the cached file opens as a closed archive (it may predate a format change).
fn opens(path: &Path) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let src = ArchiveSource::connect(&Location::File(path.to_path_buf())).await?;
        src.open().await
    })
    .is_ok()
}

fn cached_call(name: &str, seconds: u64) -> PathBuf {
    let path = cache_dir().join(name);
    if !path.exists() || !opens(&path) {
        eprintln!("  generating a {} s call at {}…", seconds, path.display());
        calltape_samples::synthetic::long_call(&path, seconds);
    }
    path
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What a child measures, each in a fresh process.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    /// Connect + footer, summary and chunk index.
    Summary,
    /// The replayer's own open path and first render, then the first view's loads.
    Frame,
    /// The whole object read or downloaded.
    Peer,
}

impl Phase {
    fn arg(self) -> &'static str {
        match self {
            Phase::Summary => "summary",
            Phase::Frame => "frame",
            Phase::Peer => "peer",
        }
    }
}

/// The child: measures one phase of opening `args[0]` and prints one `key=value …` line on
/// stdout.
pub fn child(args: &[String]) {
    let (target, phase) = match args {
        [target, phase, ..] => (target.as_str(), phase.as_str()),
        _ => panic!("{CHILD_FLAG} <file-or-url> summary|frame|peer"),
    };
    match phase {
        "summary" => summary_child(target),
        "frame" => frame_child(target),
        "peer" => peer_child(target),
        other => panic!("unknown phase {other}"),
    }
}

fn summary_child(target: &str) {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let location = Location::parse(target).expect("location");
    let (requests, bytes, turns) = rt.block_on(async {
        let src = ArchiveSource::connect(&location).await.expect("connect");
        let archive = src.open().await.expect("open");
        let (requests, bytes) = src.stats();
        (requests, bytes, archive.summary.turns.len())
    });
    println!(
        "summary_us={} summary_requests={requests} summary_bytes={bytes} turns={turns} rss_kib={}",
        start.elapsed().as_micros(),
        peak_rss_kib()
    );
}

fn frame_child(target: &str) {
    let opts = Options {
        color: false,
        player: None,
        ..Options::default()
    };
    let start = Instant::now();
    let mut h = Harness::open(target, opts, 120, 40).expect("open in the TUI harness");
    let screen = h.screen();
    let first_frame = start.elapsed();
    let (requests, bytes) = h.app.call.source.stats();
    let rss_first = peak_rss_kib();
    // the first view with its chunks (transcript, waveform, the turn's records) loaded
    h.settle();
    std::hint::black_box(h.screen());
    let loaded = start.elapsed();
    let (loaded_requests, loaded_bytes) = h.app.call.source.stats();
    assert!(!screen.trim().is_empty(), "first frame is blank");
    println!(
        "first_frame_us={} requests={requests} bytes={bytes} rss_first_kib={rss_first} loaded_us={} loaded_requests={loaded_requests} loaded_bytes={loaded_bytes} rss_kib={}",
        first_frame.as_micros(),
        loaded.as_micros(),
        peak_rss_kib()
    );
}

/// The peer: the whole object read (local) or downloaded with one plain GET (S3), streamed
/// and discarded.
fn peer_child(target: &str) {
    let start = Instant::now();
    let bytes = match Location::parse(target).expect("location") {
        Location::File(path) => {
            let mut f = std::fs::File::open(path).expect("open");
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            loop {
                match f.read(&mut buf).expect("read") {
                    0 => break n,
                    k => n += k as u64,
                }
            }
        }
        Location::Url(url) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let (store, path) = calltape::source::store_for_url(&url).expect("store");
                let mut stream = store.get(&path).await.expect("GET").into_stream();
                let mut n = 0u64;
                while let Some(b) = stream.next().await {
                    n += b.expect("body").len() as u64;
                }
                n
            })
        }
    };
    println!(
        "peer_us={} peer_bytes={bytes} rss_kib={}",
        start.elapsed().as_micros(),
        peak_rss_kib()
    );
}

/// One child run's `key=value` figures.
struct Figures(Vec<(String, u64)>);

impl Figures {
    fn get(&self, key: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("child reported no {key}"))
    }
    fn ms(&self, key: &str) -> f64 {
        self.get(key) as f64 / 1000.0
    }
}

fn run_child(target: &str, env: &[(String, String)], phase: Phase) -> Figures {
    Figures(calltape_tests::child::run_child(
        &[CHILD_FLAG, target, phase.arg()],
        env,
    ))
}

/// Runs the child `reps` times and keeps the run with the median time, so the figures of one
/// row come from one run.
fn median_run(target: &str, env: &[(String, String)], phase: Phase, reps: usize) -> Figures {
    let key = match phase {
        Phase::Summary => "summary_us",
        Phase::Frame => "first_frame_us",
        Phase::Peer => "peer_us",
    };
    let mut runs: Vec<Figures> = (0..reps).map(|_| run_child(target, env, phase)).collect();
    runs.sort_by_key(|f| f.get(key));
    runs.swap_remove(runs.len() / 2)
}

fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn requests_str(n: u64) -> String {
    format!("{n} request{}", if n == 1 { "" } else { "s" })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The summary, first-frame and peer runs of one source.
struct Measured {
    summary: Figures,
    frame: Figures,
    peer: Figures,
}

fn measure(target: &str, env: &[(String, String)], reps: usize) -> Measured {
    Measured {
        summary: median_run(target, env, Phase::Summary, reps),
        frame: median_run(target, env, Phase::Frame, reps),
        peer: median_run(target, env, Phase::Peer, reps),
    }
}

fn rows_for(label: &str, what: &str, m: &Measured, peer_name: &str) -> Vec<Row> {
    let fig = |s: &str| format!("open {label} call, {what}: {s}");
    let (s, f, p) = (&m.summary, &m.frame, &m.peer);
    let peer_ms = p.ms("peer_us");
    let peer_cell = format!("{} {peer_name}", fmt_ms(peer_ms));
    let summary = s.ms("summary_us");
    let first = f.ms("first_frame_us");
    let requests = f.get("requests");
    let rss = f.get("rss_kib") as f64 / 1024.0;
    vec![
        Row::new(
            fig("time to summary"),
            format!(
                "{} ({} turns; {}, {:.0} KiB)",
                fmt_ms(summary),
                s.get("turns"),
                requests_str(s.get("summary_requests")),
                s.get("summary_bytes") as f64 / 1024.0
            ),
            peer_cell.clone(),
        )
        .ratio(summary / peer_ms),
        Row::new(fig("time to first frame"), fmt_ms(first), peer_cell.clone())
            .ratio(first / peer_ms)
            .goal(
                format!("≤ {GOAL_FIRST_FRAME_MS:.0} ms"),
                first <= GOAL_FIRST_FRAME_MS,
            ),
        Row::new(
            fig("requests to first frame"),
            format!("{requests} ({:.0} KiB)", f.get("bytes") as f64 / 1024.0),
            format!("1 ({:.1} MiB)", mib(p.get("peer_bytes"))),
        )
        .goal(format!("≤ {GOAL_REQUESTS}"), requests <= GOAL_REQUESTS),
        Row::new(
            fig("first view with its chunks loaded"),
            format!(
                "{}, {} ({:.0} KiB)",
                fmt_ms(f.ms("loaded_us")),
                requests_str(f.get("loaded_requests")),
                f.get("loaded_bytes") as f64 / 1024.0
            ),
            peer_cell,
        )
        .ratio(f.ms("loaded_us") / peer_ms),
        Row::new(
            fig("peak RSS"),
            format!(
                "{rss:.0} MiB ({:.0} MiB at first frame)",
                f.get("rss_first_kib") as f64 / 1024.0
            ),
            format!("{:.0} MiB", p.get("rss_kib") as f64 / 1024.0),
        )
        .goal(format!("≤ {GOAL_RSS_MIB:.0} MiB"), rss <= GOAL_RSS_MIB),
    ]
}

pub fn rows(quick: bool) -> Vec<Row> {
    let (name, seconds, label) = if quick {
        ("ten_minutes.calltape", 600, "a 10-minute")
    } else {
        ("two_hours.calltape", 2 * 3600, "a 2-hour")
    };
    let reps = if quick { 3 } else { 7 };
    let path = cached_call(name, seconds);
    let size = std::fs::metadata(&path).expect("archive").len();
    eprintln!("  archive {} ({:.1} MiB)", path.display(), mib(size));
    let local = path.to_str().expect("utf-8 path").to_string();
    let mut rows = Vec::new();

    let m = measure(&local, &[], reps);
    rows.extend(rows_for(label, "local disk", &m, "read whole file"));

    // S3 on loopback: upload with multipart, then open it from children given the endpoint
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s3 = rt.block_on(TestS3::start());
    s3.create_bucket("bench");
    let upload_start = Instant::now();
    rt.block_on(s3.upload_file("bench", name, &path));
    eprintln!(
        "  uploaded to S3 in {:.1}s ({} parts)",
        upload_start.elapsed().as_secs_f64(),
        size.div_ceil(PART as u64)
    );
    let url = format!("s3://bench/{name}");
    let env = s3.env();
    let m = measure(&url, &env, reps);
    rows.extend(rows_for(label, "S3 on loopback", &m, "GET whole object"));
    drop(s3);
    rows
}
