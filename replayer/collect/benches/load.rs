//! Load: N sessions (default 200) uploading to one collector at once on loopback, each with
//! its spans and logs (OTLP) and a recording (LiveKit's console fixture: report + Ogg Opus).
//! The collector runs in a child process (this binary with `--serve`) so its peak RSS is its
//! own. Prints sessions per second (first request to last archive at the destination),
//! archives written (none may be lost) and the collector's peak RSS.
//!
//! `cargo bench --profile dev -p calltape-collect --bench load [-- --sessions N]`

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calltape_collect::auth::Credentials;
use calltape_collect::{Collector, CollectorConfig, Limits, StatusSink};
use prost::Message;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../import/tests/fixtures/livekit/console"
);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        return serve(&args[i + 1], &args[i + 2]);
    }
    let sessions: usize = args
        .iter()
        .position(|a| a == "--sessions")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(200);
    drive(sessions);
}

/// The child: a collector writing to `dest`, until its stdin closes.
fn serve(dest: &str, spool: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = CollectorConfig {
            credentials: Credentials::new(KEY, SECRET),
            destination: format!("file://{dest}"),
            spool: spool.into(),
            limits: Limits {
                linger: Duration::from_millis(200),
                ..Limits::default()
            },
            // LOAD_STATUS=1: the collector's status lines (each session written or failed) on stdout
            status: StatusSink {
                json: std::env::var_os("LOAD_STATUS").is_some(),
            },
            shutdown_deadline: Duration::from_secs(600),
        };
        let collector = Collector::start(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("addr={}", listener.local_addr().unwrap());
        let stop = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                let _ = std::io::stdin().read_line(&mut s);
            })
            .await;
        };
        let report = collector.serve(listener, stop).await.unwrap();
        println!(
            "written={} failed={} peak_rss_kib={}",
            report.sessions_written,
            report.sessions_failed,
            peak_rss_kib()
        );
    });
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

fn drive(n: usize) {
    let dest = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--serve",
            &dest.path().display().to_string(),
            &spool.path().display().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().strip_prefix("addr=").unwrap().parse().unwrap();

    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURE}/session_report.json")).unwrap(),
    )
    .unwrap();
    let chat = report["chat_history"].to_string();
    let mut summary = report.as_object().unwrap().clone();
    summary.remove("chat_history");
    summary.remove("events");
    let audio = Arc::new(std::fs::read(format!("{FIXTURE}/audio.ogg")).unwrap());
    let t0 = report["audio_recording_started_at"].as_f64().unwrap() as i64;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let failures = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..n {
            let job = format!("AJ_load{i:04}");
            let mut s = summary.clone();
            s.insert("job_id".into(), Value::String(job.clone()));
            let body = recording_body(
                &header_at(&job, &Value::Object(s).to_string(), Some(t0)),
                Some(chat.as_bytes()),
                Some(&audio),
            );
            let spans: Vec<Vec<u8>> = ["user_turn", "agent_turn"]
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let at = (t0 as u64 + k as u64) * 1_000_000_000;
                    span(&job, name, at, at + 500_000_000).encode_to_vec()
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                let auth = format!("Bearer {}", token(SECRET, 3600, true));
                let mut bad = 0;
                for s in &spans[..1] {
                    bad += usize::from(post(addr, TRACES, &auth, PROTOBUF, s).await != 200);
                }
                bad += usize::from(post(addr, RECORDINGS, &auth, MULTIPART, &body).await != 200);
                for s in &spans[1..] {
                    bad += usize::from(post(addr, TRACES, &auth, PROTOBUF, s).await != 200);
                }
                bad
            }));
        }
        let mut bad = 0;
        for t in tasks {
            bad += t.await.unwrap();
        }
        bad
    });
    let uploaded = started.elapsed();
    // every archive at the destination
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut landed = 0;
    while Instant::now() < deadline {
        landed = files_under(dest.path()).len();
        if landed >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let all_in = started.elapsed();
    drop(child.stdin.take());
    let mut rest = String::new();
    for l in out.lines() {
        let l = l.unwrap();
        if l.starts_with('{') && !l.contains("session_written") {
            eprintln!("{l}");
        }
        rest.push_str(&l);
        rest.push(' ');
    }
    let _ = child.wait();
    let figures: Vec<(String, u64)> = rest
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect();
    let get = |k: &str| figures.iter().find(|(x, _)| x == k).map_or(0, |(_, v)| *v);
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "sessions={n} requests_refused={failures}");
    let _ = writeln!(o, "uploads_done_s={:.2}", uploaded.as_secs_f64());
    let _ = writeln!(
        o,
        "archives_at_destination={landed} (all in after {:.2} s)",
        all_in.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "sessions_per_s={:.1}",
        landed as f64 / all_in.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "collector: written={} failed={} peak_rss={:.1} MiB",
        get("written"),
        get("failed"),
        get("peak_rss_kib") as f64 / 1024.0
    );
}

#[allow(dead_code)]
async fn post(addr: std::net::SocketAddr, path: &str, auth: &str, ct: &str, body: &[u8]) -> u16 {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nAuthorization: {auth}\r\n\r\n",
        body.len()
    );
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    if s.write_all(head.as_bytes()).await.is_err() || s.write_all(body).await.is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
