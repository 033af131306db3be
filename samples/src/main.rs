//! `calltape-samples`: writes the sample archives (samples/archives) from the scripted calls,
//! or a long generated call for benchmarks.
//!
//! ```text
//! cargo run -p calltape-samples                       # all samples into samples/archives
//! cargo run -p calltape-samples -- long 120 /tmp/2h.calltape
//! ```

use std::path::Path;

use calltape_format::{ArchiveWriter, TimedRecord, WriterOptions};
use calltape_samples::{scripts, Clips, SampleCall};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => write_all(&Path::new(env!("CARGO_MANIFEST_DIR")).join("archives")),
        Some("--out") if args.len() == 2 => write_all(Path::new(&args[1])),
        Some("long") if args.len() == 3 => args[1]
            .parse::<u64>()
            .map_err(|e| format!("minutes: {e}"))
            .and_then(|m| {
                let call = scripts::long_call(&mut Clips::bundled(), m);
                write_call(&call, Path::new(&args[2]))
            }),
        _ => Err("usage: calltape-samples [--out DIR] | long MINUTES FILE".into()),
    };
    if let Err(e) = result {
        eprintln!("calltape-samples: {e}");
        std::process::exit(1);
    }
}

fn write_all(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut clips = Clips::bundled();
    let calls = scripts::all(&mut clips);
    for call in &calls {
        write_call(call, &dir.join(format!("{}.calltape", call.name)))?;
    }
    let slow = calls
        .iter()
        .find(|c| c.name == "slow_llm")
        .expect("slow_llm sample");
    write_crashed(slow, &dir.join("crash_truncated.calltape"))?;
    Ok(())
}

fn write_call(call: &SampleCall, path: &Path) -> Result<(), String> {
    let file =
        std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let mut w = ArchiveWriter::new(std::io::BufWriter::new(file), call.header.clone())
        .map_err(|e| e.to_string())?;
    for r in &call.records {
        w.write(r).map_err(|e| e.to_string())?;
    }
    let (_, summary) = w.finish().map_err(|e| e.to_string())?;
    println!(
        "{:<22} {:>3} turns {:>6.1} s  {}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        summary.turns.len(),
        summary.duration_ns as f64 / 1e9,
        call.what
    );
    Ok(())
}

/// The slow_llm call as a crash leaves it: the process died 60% into the call, in the middle
/// of appending a chunk, so the file has no summary or footer and ends in a torn frame.
fn write_crashed(call: &SampleCall, path: &Path) -> Result<(), String> {
    let end = call.records.last().map_or(0, |r| r.time_ns);
    let crash_at = end / 10 * 6;
    let mut w =
        ArchiveWriter::with_options(Vec::new(), call.header.clone(), WriterOptions::default())
            .map_err(|e| e.to_string())?;
    let (before, after): (Vec<&TimedRecord>, Vec<&TimedRecord>) =
        call.records.iter().partition(|r| r.time_ns < crash_at);
    for r in before {
        w.write(r).map_err(|e| e.to_string())?;
    }
    let durable = w.position() as usize;
    for r in after.iter().take(400) {
        w.write(r).map_err(|e| e.to_string())?;
    }
    w.flush_chunks().map_err(|e| e.to_string())?;
    let written = w.get_ref().clone();
    // the next frame was only half written when the process died
    let torn = (durable + (written.len() - durable) / 2).min(written.len());
    std::fs::write(path, &written[..torn]).map_err(|e| format!("write {}: {e}", path.display()))?;
    println!(
        "{:<22}  torn after {:.1} s of {:.1} s: no summary, no footer",
        "crash_truncated.calltape",
        crash_at as f64 / 1e9,
        end as f64 / 1e9
    );
    Ok(())
}
