//! `calltape verify ARCHIVE`: checks the footer, every chunk's CRC and decoding, every chunk
//! header against the records it holds, and that the stored summary equals one rebuilt from
//! the records. Says what is wrong and where (byte
//! offset, chunk number, lane). Exit 0 intact, 3 damaged but partly recoverable, 1 unreadable.
//!
//! `--json`: `{schema: "calltape.verify/1", location, status: "intact"|"damaged"|"unreadable",
//! exit_code, file_bytes, footer: {ok, error, chunk_count, recovered}, chunks: {checked, bad},
//! scan: {intact, kept_bytes, lost_bytes, chunks_kept, records_kept, last_time_ns, reason} |
//! null, summary_matches: bool|null, problems: [{kind, offset, chunk, lane, message}]}`.

use crate::export::json_diff::Change;
use serde_json::{json, Value};

use calltape_format::{Archive, FormatError, Scan};

use crate::error::{AppError, Result};
use crate::export::print_json;
use crate::source::{ArchiveSource, Location};

pub const EXIT_INTACT: i32 = 0;
pub const EXIT_UNREADABLE: i32 = 1;
pub const EXIT_DAMAGED: i32 = 3;

#[derive(clap::Args)]
pub struct Args {
    /// Archive: a path or an object-store URL.
    pub archive: String,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// One thing found wrong.
#[derive(Debug, Clone)]
pub struct Problem {
    /// `footer`, `chunk`, `frame`, `summary`, `index`, `file`.
    pub kind: &'static str,
    pub offset: Option<u64>,
    /// Chunk number in file order, from 0.
    pub chunk: Option<usize>,
    pub lane: Option<u16>,
    pub message: String,
}

impl Problem {
    fn to_json(&self) -> Value {
        json!({"kind": self.kind, "offset": self.offset, "chunk": self.chunk,
               "lane": self.lane, "message": self.message})
    }

    fn line(&self) -> String {
        let mut at = Vec::new();
        if let Some(c) = self.chunk {
            at.push(format!("chunk #{c}"));
        }
        if let Some(l) = self.lane {
            at.push(format!("lane {l}"));
        }
        if let Some(o) = self.offset {
            at.push(format!("byte {o}"));
        }
        if at.is_empty() {
            format!("{}: {}", self.kind, self.message)
        } else {
            format!("{} ({}): {}", self.kind, at.join(", "), self.message)
        }
    }
}

pub async fn run(args: Args) -> Result<i32> {
    let location = Location::parse(&args.archive)?;
    let source = match ArchiveSource::connect(&location).await {
        Ok(s) => s,
        Err(e) => {
            return report_unreadable(&args, &e.to_string());
        }
    };
    let footer = source.open().await;
    let scan: std::result::Result<Scan, FormatError> =
        match source.with_reader(calltape_format::scan).await {
            Ok(r) => r,
            Err(e) => Err(FormatError::Io(std::io::Error::other(e.to_string()))),
        };
    let mut problems = Vec::new();
    let mut checked = 0usize;
    let mut bad = 0usize;
    let mut summary_matches = None;
    if let Err(e) = &footer {
        problems.push(Problem {
            kind: "footer",
            offset: format_offset(e),
            chunk: None,
            lane: None,
            message: inner(e),
        });
    }
    if let Ok(archive) = &footer {
        // the index lets us check every chunk, even past the first damaged one
        // and every header against the records it holds (a lying turn range or time range
        // hides the chunk from whoever looks a turn or a time up)
        let tracks = &archive.header().tracks;
        for (n, entry) in archive.index.iter().enumerate() {
            checked += 1;
            let lies = match source.chunk(entry).await {
                Ok(chunk) => calltape_format::chunk::header_problems(&chunk, tracks),
                Err(e) => vec![inner(&e)],
            };
            if !lies.is_empty() {
                bad += 1;
            }
            for message in lies {
                problems.push(Problem {
                    kind: "chunk",
                    offset: Some(entry.offset),
                    chunk: Some(n),
                    lane: Some(entry.lane),
                    message,
                });
            }
        }
    }
    match &scan {
        Ok(scan) => {
            let r = &scan.report;
            let damaged_scan = !r.intact || !r.reason.is_empty();
            if damaged_scan {
                let offset = r.kept_bytes;
                let lane = lane_at(&source, offset).await;
                let already = problems
                    .iter()
                    .any(|p| p.kind == "chunk" && p.offset == Some(offset));
                if !already {
                    problems.push(Problem {
                        kind: if lane.is_some() { "chunk" } else { "frame" },
                        offset: Some(offset),
                        chunk: lane.map(|_| r.chunks_kept as usize),
                        lane,
                        message: if r.reason.is_empty() {
                            "the file ends without a footer".to_string()
                        } else {
                            r.reason.clone()
                        },
                    });
                }
            }
            if let (Ok(archive), false) = (&footer, damaged_scan) {
                let diffs = compare_summary(archive, scan);
                summary_matches = Some(diffs.is_empty());
                for d in diffs {
                    problems.push(Problem {
                        kind: "summary",
                        offset: Some(archive.footer.summary_offset),
                        chunk: None,
                        lane: None,
                        message: d,
                    });
                }
                if archive.index != scan.index {
                    problems.push(Problem {
                        kind: "index",
                        offset: Some(archive.footer.index_offset),
                        chunk: None,
                        lane: None,
                        message: format!(
                            "the chunk index ({} entries) differs from the chunks in the file ({})",
                            archive.index.len(),
                            scan.index.len()
                        ),
                    });
                }
            }
        }
        Err(e) => problems.push(Problem {
            kind: "file",
            offset: format_offset_fe(e),
            chunk: None,
            lane: None,
            message: format!("forward scan failed: {e}"),
        }),
    }
    let code = if problems.is_empty() {
        EXIT_INTACT
    } else if scan.is_ok() || footer.is_ok() {
        EXIT_DAMAGED
    } else {
        EXIT_UNREADABLE
    };
    let status = match code {
        EXIT_INTACT => "intact",
        EXIT_DAMAGED => "damaged",
        _ => "unreadable",
    };
    if args.json {
        let footer_json = match &footer {
            Ok(a) => json!({"ok": true, "error": null, "chunk_count": a.footer.chunk_count,
                            "recovered": a.footer.recovered()}),
            Err(e) => {
                json!({"ok": false, "error": inner(e), "chunk_count": null, "recovered": null})
            }
        };
        print_json(&json!({
            "schema": "calltape.verify/1",
            "location": args.archive,
            "status": status,
            "exit_code": code,
            "file_bytes": source.len(),
            "footer": footer_json,
            "chunks": {"checked": checked, "bad": bad},
            "scan": scan.as_ref().ok().map(|s| serde_json::to_value(&s.report).expect("serializes")),
            "summary_matches": summary_matches,
            "problems": problems.iter().map(Problem::to_json).collect::<Vec<_>>(),
        }))?;
        return Ok(code);
    }
    crate::outln!("verify {} ({} bytes)", args.archive, source.len())?;
    match &footer {
        Ok(a) => crate::outln!(
            "  footer   ok: {} chunks indexed{}",
            a.footer.chunk_count,
            if a.footer.recovered() {
                ", marked RECOVERED"
            } else {
                ""
            }
        )?,
        Err(_) => crate::outln!("  footer   MISSING OR DAMAGED")?,
    }
    if footer.is_ok() {
        crate::outln!(
            "  chunks   {} of {checked} decode with good CRCs and headers that match their records",
            checked - bad
        )?;
    }
    if let Ok(s) = &scan {
        let r = &s.report;
        crate::outln!(
            "  scan     {} chunks / {} records readable from the start, {} bytes kept, {} lost",
            r.chunks_kept,
            r.records_kept,
            r.kept_bytes,
            r.lost_bytes
        )?;
    }
    match summary_matches {
        Some(true) => crate::outln!("  summary  matches the records")?,
        Some(false) => crate::outln!("  summary  DIFFERS from the records")?,
        None => {}
    }
    for p in &problems {
        crate::outln!("  PROBLEM  {}", p.line())?;
    }
    match code {
        EXIT_INTACT => crate::outln!("result: INTACT")?,
        EXIT_DAMAGED => crate::outln!(
            "result: DAMAGED, partly recoverable (exit 3): `calltape recover {}` writes a closed copy of what survives",
            args.archive
        )?,
        _ => crate::outln!("result: UNREADABLE (exit 1): nothing in this file can be recovered")?,
    }
    Ok(code)
}

fn report_unreadable(args: &Args, message: &str) -> Result<i32> {
    if args.json {
        print_json(&json!({
            "schema": "calltape.verify/1", "location": args.archive, "status": "unreadable",
            "exit_code": EXIT_UNREADABLE, "file_bytes": null, "footer": null,
            "chunks": {"checked": 0, "bad": 0}, "scan": null, "summary_matches": null,
            "problems": [{"kind": "file", "offset": null, "chunk": null, "lane": null, "message": message}],
        }))?;
    } else {
        crate::outln!(
            "verify {}\n  PROBLEM  {message}\nresult: UNREADABLE (exit 1)",
            args.archive
        )?;
    }
    Ok(EXIT_UNREADABLE)
}

/// The format error inside an app error, as text (without the location prefix).
fn inner(e: &AppError) -> String {
    match e {
        AppError::Format { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

fn format_offset(e: &AppError) -> Option<u64> {
    match e {
        AppError::Format { source, .. } => format_offset_fe(source),
        _ => None,
    }
}

fn format_offset_fe(e: &FormatError) -> Option<u64> {
    match e {
        FormatError::Truncated { offset, .. }
        | FormatError::BadChecksum { offset, .. }
        | FormatError::TooLarge { offset, .. }
        | FormatError::TooMany { offset, .. }
        | FormatError::Malformed { offset, .. } => Some(*offset),
        FormatError::NotAnArchive => Some(0),
        _ => None,
    }
}

/// The lane of a chunk frame starting at `offset`, if a chunk frame header is there.
async fn lane_at(source: &ArchiveSource, offset: u64) -> Option<u16> {
    let end = (offset + 7).min(source.len());
    if end < offset + 7 {
        return None;
    }
    let b = source.read(offset..end).await.ok()?;
    (b[0] == 2).then(|| u16::from_le_bytes([b[5], b[6]]))
}

/// Field-by-field differences between the stored summary and the rebuilt one.
fn compare_summary(archive: &Archive, scan: &Scan) -> Vec<String> {
    let mut stored = serde_json::to_value(&archive.summary).expect("serializes");
    let mut rebuilt = serde_json::to_value(&scan.summary).expect("serializes");
    for v in [&mut stored, &mut rebuilt] {
        if let Some(o) = v.as_object_mut() {
            o.remove("recovery");
        }
    }
    let null = Value::Null;
    let mut out: Vec<String> = crate::export::json_diff::diff(&stored, &rebuilt)
        .iter()
        .map(|c| {
            let (a, b) = match c {
                Change::Added { new, .. } => (&null, *new),
                Change::Removed { old, .. } => (*old, &null),
                Change::Changed { old, new, .. } => (*old, *new),
            };
            format!(
                "summary field {}: stored {}, records give {}",
                c.path(),
                short(a),
                short(b)
            )
        })
        .collect();
    if out.len() > 20 {
        let more = out.len() - 20;
        out.truncate(20);
        out.push(format!("… and {more} more differences"));
    }
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    crate::export::units::preview(&s, 80)
}
