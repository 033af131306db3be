//! `calltape-samples`: records the scripted calls through the calltape recorder into
//! samples/archives, or a long generated call for benchmarks.
//!
//! ```text
//! cargo run -p calltape-samples                        # all samples into samples/archives
//! cargo run -p calltape-samples -- --out DIR
//! cargo run -p calltape-samples -- long 120 /tmp/2h.calltape
//! ```

use std::path::Path;
use std::time::{Duration, SystemTime};

use calltape_recorder::{KeyLayout, Recorder, SessionInfo, UploadOutcome};
use calltape_samples::{scripts, Clips, SampleCall};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => write_all(&Path::new(env!("CARGO_MANIFEST_DIR")).join("archives")).await,
        Some("--out") if args.len() == 2 => write_all(Path::new(&args[1])).await,
        Some("long") if args.len() == 3 => match args[1].parse::<u64>() {
            Ok(m) => {
                let call = scripts::long_call(&mut Clips::bundled(), m);
                record(&call, Path::new(&args[2])).await
            }
            Err(e) => Err(format!("minutes: {e}")),
        },
        _ => Err("usage: calltape-samples [--out DIR] | long MINUTES FILE".into()),
    };
    if let Err(e) = result {
        eprintln!("calltape-samples: {e}");
        std::process::exit(1);
    }
}

async fn write_all(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut clips = Clips::bundled();
    for call in scripts::all(&mut clips) {
        record(&call, &dir.join(format!("{}.calltape", call.name))).await?;
    }
    crash(
        &dir.join("slow_llm.calltape"),
        &dir.join("crash_truncated.calltape"),
    )
}

/// Plays `call` into a real recorder session (explicit timestamps, manual clock) and moves
/// the uploaded archive to `path`.
async fn record(call: &SampleCall, path: &Path) -> Result<(), String> {
    let dest = tempfile::tempdir().map_err(|e| e.to_string())?;
    let spool = tempfile::tempdir().map_err(|e| e.to_string())?;
    let recorder = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(spool.path())
        .key_layout(KeyLayout::Template("{session_id}.calltape".into()))
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let h = &call.header;
    let mut info = SessionInfo::new(h.session_id.clone())
        .agent(h.agent.name.clone(), h.agent.version.clone())
        .started_at(SystemTime::UNIX_EPOCH + Duration::from_nanos(h.started_at_unix_ns as u64))
        .manual_clock();
    if let Some(env) = &h.environment {
        info = info.environment(env.clone());
    }
    for (k, v) in &h.tags {
        info = info.tag(k.clone(), v.clone());
    }
    for t in &h.tracks {
        info = info.track(t.role, t.sample_rate, t.channels);
    }
    let session = recorder.start_session(info).map_err(|e| e.to_string())?;
    let mut next_drain = 0u64;
    for r in &call.records {
        if r.time_ns >= next_drain {
            // the simulation runs far faster than real time: let the writer keep up
            session.drained().await;
            next_drain = r.time_ns + 1_000_000_000;
        }
        session.at(r.time_ns).record(r.record.clone());
    }
    let report = session.finish().await.map_err(|e| e.to_string())?;
    recorder.shutdown(Duration::from_secs(10)).await;
    if report.upload.outcome != UploadOutcome::Uploaded {
        return Err(format!(
            "{}: not uploaded: {:?}",
            call.name, report.upload.outcome
        ));
    }
    if report.dropped_samples > 0 || report.dropped_records > 0 {
        return Err(format!(
            "{}: the recorder dropped data: {report:?}",
            call.name
        ));
    }
    let archive = dest.path().join(&report.upload.key);
    std::fs::copy(&archive, path).map_err(|e| format!("copy to {}: {e}", path.display()))?;
    let opened = calltape_format::open(&mut std::fs::File::open(path).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    println!(
        "{:<26} {:>3} turns {:>7.1} s  {}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        opened.summary.turns.len(),
        opened.summary.duration_ns as f64 / 1e9,
        call.what
    );
    Ok(())
}

/// A crash 60% into `source`'s call: the writer only appends, so the file a crash leaves is a
/// prefix of the finished one, ending inside the chunk being written (no summary, no footer).
fn crash(source: &Path, path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(source).map_err(|e| format!("read {}: {e}", source.display()))?;
    let archive =
        calltape_format::open(&mut std::io::Cursor::new(&bytes)).map_err(|e| e.to_string())?;
    let crash_at = archive.summary.duration_ns / 10 * 6;
    let torn = archive
        .index
        .iter()
        .find(|e| e.start_ns >= crash_at)
        .ok_or("no chunk after the crash point")?;
    let cut = (torn.offset + torn.frame_len() / 2) as usize;
    std::fs::write(path, &bytes[..cut]).map_err(|e| format!("write {}: {e}", path.display()))?;
    println!(
        "{:<26}  slow_llm torn at {:.1} s of {:.1} s, inside a chunk: no summary, no footer",
        "crash_truncated.calltape",
        crash_at as f64 / 1e9,
        archive.summary.duration_ns as f64 / 1e9
    );
    Ok(())
}
