//! `calltape export ARCHIVE`: audio as WAV, the transcript as text/JSON/SRT/WebVTT, a Perfetto
//! trace, OTLP/JSON spans. Several outputs may be written in one run; `-` writes a text output
//! to stdout. `--turn N` or `--from/--to` limit the audio and the transcript to a part of the
//! call (transcript times then count from the start of that part, to line up with the WAV);
//! traces always cover the whole call.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::call::{control_records, open_call, OpenedCall};
use crate::error::{AppError, Result};
use crate::export::transcript::{self, TranscriptFormat};
use crate::export::units::parse_duration;
use crate::export::wav::{self, TrackChoice};
use crate::export::{otlp, perfetto, print_json, progress};

#[derive(clap::Args)]
pub struct Args {
    /// Archive: a path or an object-store URL.
    pub archive: String,
    /// Write audio to this WAV file.
    #[arg(long, value_name = "FILE")]
    pub wav: Option<PathBuf>,
    /// Which audio: the user's track, the agent's, or both as stereo (user left, agent right).
    #[arg(long, value_enum, default_value = "stereo")]
    pub track: TrackChoice,
    /// Only this turn (from its start to its end).
    #[arg(long, value_name = "N", conflicts_with_all = ["from", "to"])]
    pub turn: Option<u32>,
    /// Start of the part to export, as call time (`12.5s`, `1m03s`).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the part to export, as call time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Write the transcript to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,
    /// Transcript format; by default from the file extension (.txt .json .srt .vtt), else text.
    #[arg(long, value_enum)]
    pub format: Option<TranscriptFormat>,
    /// Include interim (non-final) transcripts.
    #[arg(long)]
    pub interim: bool,
    /// Write a Chrome/Perfetto trace-event JSON (open it in ui.perfetto.dev).
    #[arg(long, value_name = "FILE")]
    pub perfetto: Option<PathBuf>,
    /// Write OTLP/JSON spans (session > turn > stage) for Jaeger, Tempo, Langfuse.
    #[arg(long, value_name = "FILE")]
    pub otlp: Option<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The part of the call to export, in session ns.
pub fn resolve_range(call: &OpenedCall, args: &Args) -> Result<(u64, u64)> {
    let s = &call.archive.summary;
    if let Some(n) = args.turn {
        let i = s.turns.iter().position(|t| t.turn == n).ok_or_else(|| {
            AppError::Usage(format!(
                "no turn {n} in this call (turns {})",
                match (s.turns.first(), s.turns.last()) {
                    (Some(a), Some(b)) => format!("{}..{}", a.turn, b.turn),
                    _ => "none".into(),
                }
            ))
        })?;
        return Ok((
            s.turns[i].start_ns,
            calltape_format::call::turns::turn_end_ns(s, i),
        ));
    }
    let from = args
        .from
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .unwrap_or(0);
    let to = args
        .to
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .unwrap_or(s.duration_ns);
    if to <= from {
        return Err(AppError::Usage(format!(
            "--to ({to} ns) must come after --from ({from} ns); the call lasts {} ns",
            s.duration_ns
        )));
    }
    Ok((from, to))
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    if path == Path::new("-") {
        use std::io::IsTerminal;
        // data for a pipe stays as recorded; on a terminal escapes are made visible
        let text = if std::io::stdout().is_terminal() {
            crate::safe_text::terminal(text)
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let mut out = std::io::stdout().lock();
        return out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| AppError::Io {
                what: "write to stdout".into(),
                source: e,
            });
    }
    std::fs::write(path, text).map_err(|e| AppError::Io {
        what: format!("write {}", path.display()),
        source: e,
    })
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let mut s = serde_json::to_string(v).expect("serializes");
    s.push('\n');
    write_text(path, &s)
}

pub async fn run(args: Args) -> Result<i32> {
    if args.wav.is_none()
        && args.transcript.is_none()
        && args.perfetto.is_none()
        && args.otlp.is_none()
    {
        return Err(AppError::Usage(
            "nothing to export: give --wav FILE, --transcript FILE, --perfetto FILE and/or --otlp FILE".into(),
        ));
    }
    let call = open_call(&args.archive).await?;
    if let Some(err) = &call.open_error {
        crate::errln!(
            "calltape: note: {} has no usable footer ({err}); exporting what a scan recovered",
            args.archive
        );
    }
    // the audio asked for is checked first: its track's sample rate places the range
    let wav_rate = match (&args.wav, args.track) {
        (None, _) => 0,
        (Some(_), TrackChoice::Agent) => {
            wav::track_for(&call.archive, calltape_format::Speaker::Agent)?.sample_rate
        }
        (Some(_), _) => wav::track_for(&call.archive, calltape_format::Speaker::User)?.sample_rate,
    };
    let (from, to) = resolve_range(&call, &args)?;
    let mut written = Vec::new();
    if let Some(path) = &args.wav {
        let rate = wav_rate;
        let total =
            crate::call::sample_at(to, rate).saturating_sub(crate::call::sample_at(from, rate));
        let bar = progress::bar(total, "wav");
        let w = wav::write_wav(
            &call.source,
            &call.archive,
            args.track,
            from,
            to,
            path,
            &|n| bar.inc(n),
        )
        .await?;
        bar.finish_and_clear();
        written.push(json!({"kind": "wav", "path": path.display().to_string(), "sample_rate": w.sample_rate,
                            "channels": w.channels, "frames": w.frames, "from_ns": from, "to_ns": to}));
    }
    let needs_records = args.transcript.is_some() || args.perfetto.is_some() || args.otlp.is_some();
    let records = if needs_records {
        control_records(&call.source, &call.archive).await?
    } else {
        Vec::new()
    };
    if let Some(path) = &args.transcript {
        let format = args
            .format
            .or_else(|| TranscriptFormat::from_path(path))
            .unwrap_or(TranscriptFormat::Text);
        let whole = from == 0 && to >= call.archive.summary.duration_ns;
        let timeline = calltape_format::call::TurnTimeline::of(&call.archive.summary);
        let mut cues = transcript::cues(&records, &timeline, args.interim);
        if !whole {
            cues.retain(|c| c.start_ns < to && c.end_ns > from);
            for c in &mut cues {
                c.start_ns = c.start_ns.max(from) - from;
                c.end_ns = c.end_ns.min(to) - from;
                c.time_ns = c.time_ns.saturating_sub(from);
            }
        }
        write_text(path, &transcript::render(&cues, format))?;
        written.push(
            json!({"kind": "transcript", "path": path.display().to_string(),
                            "format": format!("{format:?}").to_lowercase(), "cues": cues.len()}),
        );
    }
    if let Some(path) = &args.perfetto {
        let trace = perfetto::trace(&call.archive.summary, &records);
        let n = trace["traceEvents"].as_array().map_or(0, Vec::len);
        write_json(path, &trace)?;
        written.push(json!({"kind": "perfetto", "path": path.display().to_string(), "events": n}));
    }
    if let Some(path) = &args.otlp {
        let doc = otlp::spans(&call.archive.summary, &records);
        let n = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .map_or(0, Vec::len);
        write_json(path, &doc)?;
        written.push(json!({"kind": "otlp", "path": path.display().to_string(), "spans": n}));
    }
    if args.json {
        print_json(
            &json!({"schema": "calltape.export/1", "archive": args.archive, "written": written}),
        )?;
    } else {
        for w in &written {
            let path = w["path"].as_str().unwrap_or("");
            if path == "-" {
                continue;
            }
            let what = match w["kind"].as_str().unwrap_or("") {
                "wav" => format!(
                    "{} Hz, {} ch, {} samples",
                    w["sample_rate"], w["channels"], w["frames"]
                ),
                "transcript" => {
                    format!("{} cues, {}", w["cues"], w["format"].as_str().unwrap_or(""))
                }
                "perfetto" => format!("{} trace events (open in ui.perfetto.dev)", w["events"]),
                "otlp" => format!("{} spans", w["spans"]),
                _ => String::new(),
            };
            crate::errln!("wrote {path}: {what}");
        }
    }
    Ok(0)
}
