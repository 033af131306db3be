//! The benchmark suite: calltape against what people use instead, side by side in one run,
//! so the figures are ratios that hold on a noisy machine. Prints a markdown table and writes
//! it into BENCHMARKS.md.
//!
//! ```text
//! cargo bench -p calltape-tests --bench suite              # full
//! cargo bench -p calltape-tests --bench suite -- --quick   # CI-sized, still writes nothing with --no-write
//! ```

mod capacity;
mod catalog;
mod hot_path;
mod open;
mod peers;
mod table;

use std::path::Path;
use std::time::Duration;

use calltape_samples::{scripts, Clips};
use table::Row;

struct Mode {
    quick: bool,
    write: bool,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // re-executed as a measuring child (open.rs, catalog.rs): nothing else runs in it
    if args.get(1).is_some_and(|a| a == open::CHILD_FLAG) {
        return open::child(&args[2..]);
    }
    if args.get(1).is_some_and(|a| a == catalog::CHILD_FLAG) {
        return catalog::child(&args[2..]);
    }
    let mode = Mode {
        quick: args.iter().any(|a| a == "--quick"),
        write: !args.iter().any(|a| a == "--no-write"),
    };
    // cargo bench passes --bench; ignore everything else
    let minutes = if mode.quick { 2 } else { 20 };
    let reps = if mode.quick { 1 } else { 5 };
    let mut rows = Vec::new();

    eprintln!("generating a {minutes}-minute call…");
    let call = scripts::long_call(&mut Clips::bundled(), minutes);
    let call_minutes = call.records.last().map_or(0, |r| r.time_ns) as f64 / 60e9;
    let duration_ns = call.records.last().map_or(0, |r| r.time_ns) + 1_000_000_000;
    let (pcm, json) = peers::raw_sizes(&call.records);
    let input = pcm + json;

    // size per call-minute
    let (ct, ct_bytes) = peers::calltape(&call.header, &call.records);
    let raw = peers::wav_jsonl(&call.header, &call.records, duration_ns);
    let scratch = tempfile::tempdir().expect("temp dir");
    let zst_flac = peers::jsonl_zst_flac(&call.header, &call.records, duration_ns, scratch.path());
    let (mc, mc_bytes) = peers::mcap(&call.header, &call.records);
    let per_min = |b: usize| format!("{:.0} KiB/min", b as f64 / 1024.0 / call_minutes);
    let r = ct.bytes as f64 / raw.bytes as f64;
    rows.push(
        Row::new(
            "archive size vs raw WAV + JSONL",
            per_min(ct.bytes),
            per_min(raw.bytes),
        )
        .ratio(r)
        .goal("≤ 0.55x", r <= 0.55),
    );
    let r = ct.bytes as f64 / mc.bytes as f64;
    rows.push(
        Row::new(
            "archive size vs MCAP (zstd chunks)",
            per_min(ct.bytes),
            per_min(mc.bytes),
        )
        .ratio(r)
        .goal("≤ 1.0x", r <= 1.0),
    );
    match &zst_flac {
        Some(zf) => {
            let r = ct.bytes as f64 / zf.bytes as f64;
            rows.push(
                Row::new(
                    "archive size vs JSONL.zst + FLAC",
                    per_min(ct.bytes),
                    per_min(zf.bytes),
                )
                .ratio(r),
            );
            let r = ct.audio_bytes as f64 / zf.audio_bytes as f64;
            rows.push(
                Row::new(
                    "audio lanes vs flac -5",
                    per_min(ct.audio_bytes),
                    per_min(zf.audio_bytes),
                )
                .ratio(r)
                .goal("≤ 1.05x", r <= 1.05),
            );
        }
        None => rows.push(Row::new(
            "audio lanes vs flac -5",
            per_min(ct.audio_bytes),
            "flac CLI missing",
        )),
    }

    // write and read throughput, same content
    let ct_w = median(
        (0..reps)
            .map(|_| peers::calltape(&call.header, &call.records).0.elapsed)
            .collect(),
    );
    let mc_w = median(
        (0..reps)
            .map(|_| peers::mcap(&call.header, &call.records).0.elapsed)
            .collect(),
    );
    let r = mb_s(input, ct_w) / mb_s(input, mc_w);
    rows.push(
        Row::new(
            "write throughput (PCM + JSON in)",
            format!("{:.0} MB/s", mb_s(input, ct_w)),
            format!("{:.0} MB/s MCAP", mb_s(input, mc_w)),
        )
        .ratio(r)
        .goal("≥ 1.0x", r >= 1.0),
    );
    rows.push(
        Row::new(
            "write throughput, PCM audio with compression",
            format!("{:.0} MB/s", mb_s(input, ct_w)),
            "",
        )
        .goal("≥ 200 MB/s", mb_s(input, ct_w) >= 200.0),
    );
    let ct_r = median(
        (0..reps)
            .map(|_| timed(|| peers::calltape_read(&ct_bytes)))
            .collect(),
    );
    let mc_r = median(
        (0..reps)
            .map(|_| timed(|| peers::mcap_read(&mc_bytes)))
            .collect(),
    );
    let r = mb_s(input, ct_r) / mb_s(input, mc_r);
    rows.push(
        Row::new(
            "read throughput (decode everything)",
            format!("{:.0} MB/s", mb_s(input, ct_r)),
            format!("{:.0} MB/s MCAP", mb_s(input, mc_r)),
        )
        .ratio(r)
        .goal("≥ 300 MB/s", mb_s(input, ct_r) >= 300.0),
    );

    // the recorder: calls per core, and the hot path while the writer is busy
    eprintln!("capacity: recording simulated calls at once…");
    rows.extend(capacity::rows(&call, mode.quick));
    eprintln!("hot path: timing record calls…");
    rows.extend(hot_path::rows(mode.quick));

    // the replayer: opening a long call; the catalog
    eprintln!("open: a long call from local disk and S3 on loopback…");
    rows.extend(open::rows(mode.quick));
    eprintln!("catalog: indexing from S3, stats…");
    rows.extend(catalog::rows(mode.quick));

    let mut block = format!(
        "Generated by `cargo bench -p calltape-tests --bench suite{}` on {} ({}).\nContent: {:.1} call-minutes of the sample dialogues (two 16 kHz tracks, the user's continuous, {} control records); {} MB in (PCM + JSON).\n\n",
        if mode.quick { " -- --quick" } else { "" },
        table::machine(),
        chrono_free_date(),
        call_minutes,
        call.records.iter().filter(|r| !matches!(r.record, calltape_format::Record::Audio(_))).count(),
        input / 1_000_000,
    );
    block.push_str(&table::markdown(&rows));
    println!("{block}");
    if mode.write {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
        if let Err(e) = table::write_benchmarks_md(&path, &block) {
            eprintln!("could not write {}: {e}", path.display());
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let start = std::time::Instant::now();
    std::hint::black_box(f());
    start.elapsed()
}

fn chrono_free_date() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
