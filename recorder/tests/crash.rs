//! Crashes and broken disks, with real child processes: a recording killed with SIGKILL at
//! random moments is recovered and uploaded by the next recorder; a spool that hits its file
//! size limit (RLIMIT_FSIZE via `ulimit -f`, which stops root too, unlike chmod) or that
//! cannot be created degrades recording without panicking, reports once, and keeps what was
//! written recoverable.
//!
//! The child is this test binary re-executed with `CALLTAPE_CHILD_MODE` set; it runs the
//! `child_entry` test only.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calltape_format::Record;
use calltape_recorder::{
    Attributes, LogLevel, Recorder, SessionInfo, SessionState, Speaker, UploadOutcome,
};
use calltape_tests::s3_server::TestS3;
use common::*;
use object_store::path::Path;
use object_store::ObjectStoreExt;

const CHILD_FLUSH_MS: u64 = 200;

fn child_command(mode: &str, spool: &std::path::Path) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe);
    c.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("CALLTAPE_CHILD_MODE", mode)
        .env("CALLTAPE_CHILD_SPOOL", spool)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    c
}

/// Runs only inside a child process (see the module docs).
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var("CALLTAPE_CHILD_MODE") else {
        return;
    };
    let spool = std::env::var("CALLTAPE_CHILD_SPOOL").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        match mode.as_str() {
            "record_until_killed" => record_until_killed(&spool).await,
            "fill_disk" => fill_disk(&spool).await,
            other => panic!("unknown child mode {other}"),
        }
    });
}

async fn child_recorder(spool: &str) -> Recorder {
    let dest = tempfile::tempdir().unwrap().keep();
    Recorder::builder()
        .destination(format!("file://{}", dest.display()))
        .spool_dir(spool)
        .flush_interval(Duration::from_millis(CHILD_FLUSH_MS))
        .retry_interval(None)
        .upload_on_start(false)
        .build()
        .await
        .unwrap()
}

/// Records a live (real-time) call forever, printing `tick <n> <session ns>` after each
/// recorded tick, until the parent kills it.
async fn record_until_killed(spool: &str) {
    let rec = child_recorder(spool).await;
    let s = rec
        .start_session(
            SessionInfo::new("killed-call")
                .agent("crash-test", "1")
                .track(Speaker::User, RATE, 1),
        )
        .unwrap();
    s.turn_start(1, Speaker::User);
    let mut n = 0u64;
    let mut out = std::io::stdout();
    loop {
        let t = s.now_ns();
        let mut attrs = Attributes::new();
        attrs.insert("n".into(), n.into());
        s.at(t).event("tick", attrs);
        s.at(t).audio(1, &[n as i16; 160]);
        use std::io::Write;
        writeln!(out, "tick {n} {t}").unwrap();
        out.flush().unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Records incompressible audio into a spool whose file size is capped, then reports what it
/// saw as one JSON line.
async fn fill_disk(spool: &str) {
    let reported = Arc::new(AtomicUsize::new(0));
    let r2 = reported.clone();
    let dest = std::env::var("CALLTAPE_CHILD_DEST").unwrap();
    let rec = Recorder::builder()
        .destination(format!("file://{dest}"))
        .spool_dir(spool)
        .retry_interval(None)
        .upload_on_start(false)
        .on_error(move |issue| {
            if issue.session_id.as_deref() == Some("full-disk") {
                r2.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .await
        .unwrap();
    let s = rec
        .start_session(
            SessionInfo::new("full-disk")
                .track(Speaker::User, RATE, 1)
                .manual_clock(),
        )
        .unwrap();
    s.at(0).turn_start(1, Speaker::User);
    s.at(0)
        .log(LogLevel::Info, "agent", "before the disk filled");
    s.drained().await;
    // wait until the first control chunk is on disk (closed by the flush timer)
    s.at(2_000 * MS).event("early", Attributes::new());
    s.drained().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut x: u32 = 7;
    let mut slowest = Duration::ZERO;
    for i in 0..3_000u64 {
        let frame: Vec<i16> = (0..320)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as i16
            })
            .collect();
        let t0 = Instant::now();
        s.at(3_000 * MS + i * 20 * MS).audio(1, &frame);
        s.at(3_000 * MS + i * 20 * MS)
            .event("frame", Attributes::new());
        slowest = slowest.max(t0.elapsed());
        if i % 100 == 0 {
            s.drained().await;
        }
    }
    s.drained().await;
    let status = s.status();
    let report = s.finish().await.unwrap();
    let line = serde_json::json!({
        "reported": reported.load(Ordering::SeqCst),
        "degraded": status.degraded,
        "error": status.error,
        "dropped_samples": report.dropped_samples,
        "dropped_records": report.dropped_records,
        "outcome": format!("{:?}", report.upload.outcome),
        "slowest_call_us": slowest.as_micros() as u64,
        "state_after_finish": format!("{:?}", SessionState::Finished),
    });
    println!("RESULT {line}");
}

/// xorshift, seeded from the clock: random kill moments.
fn random_delays(n: usize) -> Vec<u64> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            300 + u64::from(x % 1_700)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_then_next_start_recovers_and_uploads() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    for (round, delay_ms) in random_delays(3).into_iter().enumerate() {
        let spool = tempfile::tempdir().unwrap();
        let mut child = child_command("record_until_killed", spool.path())
            .spawn()
            .unwrap();
        let last: Arc<Mutex<Option<(u64, u64)>>> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let l2 = last.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut it = line.split_whitespace();
                if it.next() == Some("tick") {
                    let n: u64 = it.next().unwrap().parse().unwrap();
                    let t: u64 = it.next().unwrap().parse().unwrap();
                    *l2.lock().unwrap() = Some((n, t));
                }
            }
        });
        // let the call run, then kill -9 at a random moment
        let started = Instant::now();
        while last.lock().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let (last_n, last_t) = last.lock().unwrap().expect("child printed ticks");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();

        let names: Vec<String> = std::fs::read_dir(spool.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["killed-call.calltape.part"], "round {round}");

        let rec = Recorder::builder()
            .destination("s3://calls/recovered")
            .store_option("aws_endpoint", s3.endpoint())
            .store_option("aws_allow_http", "true")
            .store_option(
                "aws_access_key_id",
                calltape_tests::s3_server::ACCESS_KEY_ID,
            )
            .store_option(
                "aws_secret_access_key",
                calltape_tests::s3_server::SECRET_ACCESS_KEY,
            )
            .store_option("aws_region", calltape_tests::s3_server::REGION)
            .key_layout(calltape_recorder::KeyLayout::Template(format!(
                "{{prefix}}/{round}/{{session_id}}.calltape"
            )))
            .spool_dir(spool.path())
            .retry_interval(None)
            .build()
            .await
            .unwrap();
        // the start-up run (or this call, whichever takes the spool first) uploads it
        rec.upload_pending().await;
        assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);

        let got = s3
            .store("calls")
            .get(&Path::from(format!(
                "recovered/{round}/killed-call.calltape"
            )))
            .await
            .unwrap();
        assert_eq!(
            got.attributes
                .get(&object_store::Attribute::Metadata(
                    calltape_recorder::RECOVERED_METADATA.into()
                ))
                .map(|v| v.as_ref()),
            Some("true"),
            "recovered marker in the object metadata"
        );
        let rb = read_back(&got.bytes().await.unwrap());
        assert_eq!(
            rb.archive.footer.flags & 1,
            1,
            "footer flags the archive as recovered"
        );
        assert!(rb.archive.summary.recovery.is_some());
        let ticks: Vec<(u64, u64)> = rb
            .records
            .iter()
            .filter_map(|r| match &r.record {
                Record::Event(e) if e.name == "tick" => {
                    Some((e.attributes["n"].as_u64().unwrap(), r.time_ns))
                }
                _ => None,
            })
            .collect();
        let (max_n, max_t) = ticks.iter().copied().max().expect("ticks recovered");
        // every tick up to the last one kept is there, in order
        assert_eq!(ticks.len() as u64, max_n + 1, "round {round}");
        // at most the flush interval is lost (plus a generous allowance for a loaded machine:
        // the writer batches every 20 ms and runs on a shared blocking pool)
        let lost_ns = last_t.saturating_sub(max_t);
        assert!(
            lost_ns <= (CHILD_FLUSH_MS + 1_000) * MS,
            "round {round}: last printed tick {last_n} at {last_t}, last recovered {max_n} at {max_t}"
        );
        assert!(!rb.timeline(1).is_empty(), "audio recovered too");
        rec.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_degrades_reports_once_and_keeps_what_was_written() {
    let spool = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // 64 KiB file size limit for the child; SIGXFSZ ignored so writes fail with EFBIG
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 128; exec \"$0\" \"$@\"")
        .arg(&exe)
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("CALLTAPE_CHILD_MODE", "fill_disk")
        .env("CALLTAPE_CHILD_SPOOL", spool.path())
        .env("CALLTAPE_CHILD_DEST", dest.path())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result from the child: {stdout}"));
    let r: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(r["reported"], 1, "the error is reported exactly once: {r}");
    assert_eq!(r["degraded"], true, "{r}");
    assert!(r["error"].as_str().unwrap().contains("spool file"), "{r}");
    assert!(r["dropped_samples"].as_u64().unwrap() > 0, "{r}");
    assert!(r["dropped_records"].as_u64().unwrap() > 0, "{r}");
    eprintln!("full-disk child: {r}");

    // the child closed what it could (recovering the file in place); anything it could not
    // close is recovered and uploaded by the next start (no limit)
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(spool.path())
        .retry_interval(None)
        .build()
        .await
        .unwrap();
    rec.upload_pending().await;
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
    let files: Vec<_> = walk(dest.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let rb = read_back(&std::fs::read(&files[0]).unwrap());
    assert_eq!(rb.archive.footer.flags & 1, 1, "recovered");
    let kinds = rb.kinds();
    assert!(
        kinds.contains(&"turn_start") && kinds.contains(&"log"),
        "{kinds:?}"
    );
    assert!(rb
        .records
        .iter()
        .any(|r| matches!(&r.record, Record::Log(l) if l.message == "before the disk filled")));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_spool_degrades_without_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    // a directory below a regular file cannot be created, not even by root
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let spool = blocker.join("spool");
    let reported = Arc::new(AtomicUsize::new(0));
    let r2 = reported.clone();
    let rec = Recorder::builder()
        .destination(format!("file://{}", tmp.path().join("dest").display()))
        .spool_dir(&spool)
        .retry_interval(None)
        .on_error(move |issue| {
            if issue.session_id.as_deref() == Some("no-spool") {
                r2.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .await
        .expect("a broken spool does not stop the agent from starting");
    let health = rec.health();
    assert!(
        health
            .last_error
            .as_deref()
            .unwrap()
            .contains("spool directory"),
        "{health:?}"
    );
    let s = rec.start_session(call_info("no-spool")).unwrap();
    for _ in 0..3 {
        script(&s);
        s.drained().await;
    }
    let status = s.status();
    assert!(status.degraded, "{status:?}");
    assert!(status
        .error
        .as_deref()
        .unwrap()
        .contains("cannot create spool file"));
    assert!(
        status.dropped_samples > 0 && status.dropped_records > 0,
        "{status:?}"
    );
    let report = s.finish().await.unwrap();
    assert!(
        matches!(report.upload.outcome, UploadOutcome::InSpool { .. }),
        "{report:?}"
    );
    assert_eq!(reported.load(Ordering::SeqCst), 1, "reported once");
}
