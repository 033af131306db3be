//! `calltape inspect ARCHIVE`: header, totals, a per-turn latency table and everything worth a
//! second look (slow turns, impossible or mismatched metrics, drops, crash recovery).
//!
//! `--json` prints one object, schema `calltape.inspect/1`:
//! `{schema, location, read_from: "footer"|"scan", notice, file: {bytes, chunks, recovered},
//! header, duration_ns, totals, recovery, slow_threshold_ns, turns: [turn summary + {slow,
//! tools: [{name, call_id, start_ns, duration_ns, is_error, error}]}],
//! flags: [{kind, turn, message}]}`. `header`, `totals`, `recovery` and each turn (with its
//! `latency` breakdown in ns) are as in SPEC.md §3 and §6. Flag kinds: `slow_turn`,
//! `metric` (a §9 latency flag, in `metric`), `reported_e2e_mismatch`, `dropped`,
//! `recovered`, `scanned`, `errors`, `tool_errors`, and with `--audio-check`
//! `audio_gap_mismatch` (each turn then also has `audio_gap_ns`: the gap heard in the audio).

use serde_json::{json, Value};

use std::collections::BTreeMap;

use calltape_format::call::activity::MeasuredGap;
use calltape_format::call::latency::{is_slow, Part};
use calltape_format::call::{classify, TurnTimeline};
use calltape_format::{Record, Summary, ToolCall, TurnId};

use crate::call::{control_records, open_call, OpenedCall};
use crate::error::Result;
use crate::export::audio_gap;
use crate::export::print_json;
use crate::export::table::{opt, Table};
use crate::export::units::{
    format_clock, format_duration, format_latency, parse_duration, preview,
};

#[derive(clap::Args)]
pub struct Args {
    /// Archive: a path or an object-store URL (s3://bucket/key.calltape).
    pub archive: String,
    /// A turn whose e2e latency is above this is flagged slow.
    #[arg(long, default_value = "1.5s", value_name = "DURATION")]
    pub slow: String,
    /// Also measure each turn's gap from the audio (end of the caller's sound to the agent's
    /// first sound) and flag turns where it disagrees with the reported breakdown. Reads the
    /// audio around every turn.
    #[arg(long)]
    pub audio_check: bool,
    /// Print machine-readable JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Per turn (same order as the summary's turns): the gap measured from the audio.
pub type AudioGaps = Vec<Option<MeasuredGap>>;

/// One thing worth a second look.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub kind: &'static str,
    pub turn: Option<u32>,
    pub metric: Option<String>,
    pub message: String,
}

impl Flag {
    fn to_json(&self) -> Value {
        let mut v = json!({"kind": self.kind, "turn": self.turn, "message": self.message});
        if let Some(m) = &self.metric {
            v["metric"] = json!(m);
        }
        v
    }
}

pub async fn run(args: Args) -> Result<i32> {
    let slow_ns = parse_duration(&args.slow)? as i64;
    let call = open_call(&args.archive).await?;
    let tools = tools_by_turn(&call).await?;
    let gaps = if args.audio_check {
        let mut gaps = Vec::new();
        for t in &call.archive.summary.turns {
            gaps.push(audio_gap::measure(&call.source, &call.archive, t).await?);
        }
        Some(gaps)
    } else {
        None
    };
    let mut flags = flags(&call, slow_ns, &tools);
    if let Some(g) = &gaps {
        flags.extend(audio_flags(&call, g));
    }
    if args.json {
        let mut v = to_json(&args.archive, &call, slow_ns, &flags, &tools);
        if let (Some(g), Some(turns)) = (&gaps, v["turns"].as_array_mut()) {
            for (t, gap) in turns.iter_mut().zip(g) {
                t["audio_gap_ns"] = json!(gap.and_then(|g| g.gap_ns()));
            }
        }
        print_json(&v)?;
    } else {
        crate::out!(
            "{}",
            render(&args.archive, &call, slow_ns, &flags, gaps.as_deref())
        )?;
    }
    Ok(0)
}

/// The tool calls of each turn (turn membership, SPEC §7), in the order they started.
pub type ToolsByTurn = BTreeMap<TurnId, Vec<ToolCall>>;

/// Reads the control records and files each tool call under its turn.
pub async fn tools_by_turn(call: &OpenedCall) -> Result<ToolsByTurn> {
    let timeline = TurnTimeline::of(&call.archive.summary);
    let mut out = ToolsByTurn::new();
    for r in control_records(&call.source, &call.archive).await? {
        if let (Some(turn), Record::ToolCall(c)) = (timeline.turn_of(&r), r.record) {
            out.entry(turn).or_default().push(c);
        }
    }
    for calls in out.values_mut() {
        calls.sort_by_key(|c| c.start_ns);
    }
    Ok(out)
}

/// A tool call for `--json`: name, id, timing, and what went wrong.
fn tool_json(c: &ToolCall) -> Value {
    json!({
        "name": c.name,
        "call_id": c.call_id,
        "start_ns": c.start_ns,
        "duration_ns": c.end_ns.saturating_sub(c.start_ns),
        "is_error": c.is_error,
        "error": classify::tool_error_text(c),
    })
}

/// Turns whose heard gap disagrees with the reported e2e.
pub fn audio_flags(call: &OpenedCall, gaps: &[Option<MeasuredGap>]) -> Vec<Flag> {
    let mut out = Vec::new();
    for (t, gap) in call.archive.summary.turns.iter().zip(gaps) {
        let (Some(gap), Some(e2e)) = (gap.and_then(|g| g.gap_ns()), t.latency.valid_e2e_ns())
        else {
            continue;
        };
        if t.latency.heard_mismatch(gap) {
            out.push(Flag {
                kind: "audio_gap_mismatch",
                turn: Some(t.turn),
                metric: None,
                message: format!(
                    "the breakdown says e2e {} but the recording has {} between the caller's last sound and the agent's first",
                    format_latency(e2e),
                    format_latency(gap)
                ),
            });
        }
    }
    out
}

/// Everything worth flagging in a call, in turn order, then call-wide flags.
pub fn flags(call: &OpenedCall, slow_ns: i64, tools: &ToolsByTurn) -> Vec<Flag> {
    let summary = &call.archive.summary;
    let mut out = Vec::new();
    if let (Some(report), Some(err)) = (&call.scanned, &call.open_error) {
        out.push(Flag {
            kind: "scanned",
            turn: None,
            metric: None,
            message: format!(
                "no usable footer ({err}); read by scanning: {} chunks and {} bytes kept, {} bytes lost{}",
                report.chunks_kept,
                report.kept_bytes,
                report.lost_bytes,
                if report.reason.is_empty() { String::new() } else { format!(" ({})", report.reason) }
            ),
        });
    }
    if let Some(r) = &summary.recovery {
        out.push(Flag {
            kind: "recovered",
            turn: None,
            metric: None,
            message: format!(
                "recovered after a crash: {} bytes and {} chunks kept, {} bytes lost ({})",
                r.kept_bytes, r.chunks_kept, r.lost_bytes, r.reason
            ),
        });
    } else if call.archive.footer.recovered() {
        out.push(Flag {
            kind: "recovered",
            turn: None,
            metric: None,
            message: "the footer marks this file as recovered after a crash".into(),
        });
    }
    for d in &summary.totals.dropped {
        out.push(Flag {
            kind: "dropped",
            turn: None,
            metric: None,
            message: format!("the recorder dropped {} {} of {}", d.count, d.unit, d.what),
        });
    }
    for t in &summary.turns {
        if is_slow(&t.latency, slow_ns) {
            out.push(Flag {
                kind: "slow_turn",
                turn: Some(t.turn),
                metric: None,
                message: format!(
                    "slow turn: e2e {} > {}",
                    format_latency(t.latency.e2e_ns.unwrap_or(0)),
                    format_latency(slow_ns)
                ),
            });
        }
        for f in &t.latency.flags {
            out.push(Flag {
                kind: "metric",
                turn: Some(t.turn),
                metric: Some(f.to_string()),
                message: f.explain(&t.latency),
            });
        }
        if let (Some(rep), Some(e2e)) = (t.latency.reported_e2e_ns, t.latency.valid_e2e_ns()) {
            if t.latency.reported_mismatch() {
                out.push(Flag {
                    kind: "reported_e2e_mismatch",
                    turn: Some(t.turn),
                    metric: None,
                    message: format!(
                        "the agent reported e2e {} but the recording shows {}",
                        format_latency(rep),
                        format_latency(e2e)
                    ),
                });
            }
        }
        if t.errors > 0 {
            out.push(Flag {
                kind: "errors",
                turn: Some(t.turn),
                metric: None,
                message: format!("{} error(s) logged", t.errors),
            });
        }
        if t.tool_errors > 0 {
            out.push(Flag {
                kind: "tool_errors",
                turn: Some(t.turn),
                metric: None,
                message: classify::tool_failures_text(
                    t.tool_errors,
                    t.tool_calls,
                    tools.get(&t.turn).into_iter().flatten(),
                    80,
                ),
            });
        }
    }
    out
}

fn read_from(call: &OpenedCall) -> &'static str {
    if call.scanned.is_some() {
        "scan"
    } else {
        "footer"
    }
}

fn notice(call: &OpenedCall) -> Option<String> {
    let report = call.scanned.as_ref()?;
    Some(format!(
        "this archive has no usable footer ({}): showing what a forward scan recovered \
         ({} of {} bytes, {} chunks, up to {}); `calltape recover` writes a closed copy",
        call.open_error.as_deref().unwrap_or("unknown reason"),
        report.kept_bytes,
        report.kept_bytes + report.lost_bytes,
        report.chunks_kept,
        format_clock(report.last_time_ns)
    ))
}

pub fn to_json(
    location: &str,
    call: &OpenedCall,
    slow_ns: i64,
    flags: &[Flag],
    tools: &ToolsByTurn,
) -> Value {
    let s = &call.archive.summary;
    let turns: Vec<Value> = s
        .turns
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t).expect("turn serializes");
            v["slow"] = json!(is_slow(&t.latency, slow_ns));
            v["tools"] = json!(tools
                .get(&t.turn)
                .into_iter()
                .flatten()
                .map(tool_json)
                .collect::<Vec<_>>());
            v
        })
        .collect();
    let recovery = match (&s.recovery, &call.scanned) {
        (Some(r), _) => serde_json::to_value(r).expect("serializes"),
        (None, Some(r)) => json!({
            "kept_bytes": r.kept_bytes, "lost_bytes": r.lost_bytes,
            "chunks_kept": r.chunks_kept, "reason": r.reason,
        }),
        (None, None) => Value::Null,
    };
    json!({
        "schema": "calltape.inspect/1",
        "location": location,
        "read_from": read_from(call),
        "notice": notice(call),
        "file": {
            "bytes": call.archive.file_len,
            "chunks": call.archive.index.len(),
            "recovered": call.recovered(),
        },
        "header": s.header,
        "duration_ns": s.duration_ns,
        "totals": s.totals,
        "recovery": recovery,
        "slow_threshold_ns": slow_ns,
        "turns": turns,
        "flags": flags.iter().map(Flag::to_json).collect::<Vec<_>>(),
    })
}

/// The latency table: one row per turn.
pub fn turn_table(summary: &Summary, slow_ns: i64, gaps: Option<&[Option<MeasuredGap>]>) -> Table {
    let mut headers = vec![
        "turn>", "speaker", "e2e>", "eou>", "stt>", "llm>", "tool>", "tts>", "rest>",
    ];
    if gaps.is_some() {
        headers.push("heard>");
    }
    headers.extend(["flags", "text"]);
    let mut table = Table::new(&headers);
    for (i, t) in summary.turns.iter().enumerate() {
        let l = &t.latency;
        let cell = |part: Part| {
            opt(l.value(part), |v| {
                let s = format_latency(v);
                if l.is_flagged(part) {
                    format!("{s}?")
                } else {
                    s
                }
            })
        };
        let mut marks = Vec::new();
        if is_slow(&t.latency, slow_ns) {
            marks.push("SLOW".to_string());
        }
        if t.interrupted {
            marks.push("CUT".to_string());
        }
        if t.errors > 0 {
            marks.push(format!("ERR{}", t.errors));
        }
        if t.tool_errors > 0 {
            marks.push(format!("TOOLERR{}", t.tool_errors));
        }
        if !l.flags.is_empty() {
            marks.push("METRIC?".to_string());
        }
        let text = match (t.user_text.is_empty(), t.agent_text.is_empty()) {
            (false, false) => format!(
                "\"{}\" → \"{}\"",
                preview(&t.user_text, 28),
                preview(&t.agent_text, 28)
            ),
            (false, true) => format!("\"{}\"", preview(&t.user_text, 56)),
            (true, false) => format!("→ \"{}\"", preview(&t.agent_text, 56)),
            (true, true) => String::new(),
        };
        let heard = gaps.map(|g| g.get(i).copied().flatten().and_then(|g| g.gap_ns()));
        if heard.flatten().is_some_and(|gap| l.heard_mismatch(gap)) {
            marks.push("HEARD≠".to_string());
        }
        let mut row = vec![
            t.turn.to_string(),
            t.speaker.to_string(),
            cell(Part::E2e),
            cell(Part::Eou),
            cell(Part::Stt),
            cell(Part::Llm),
            cell(Part::Tool),
            cell(Part::Tts),
            opt(l.rest_ns, format_latency),
        ];
        if let Some(h) = heard {
            row.push(opt(h, format_latency));
        }
        row.push(marks.join(","));
        row.push(text);
        table.row(row);
    }
    table
}

pub fn render(
    location: &str,
    call: &OpenedCall,
    slow_ns: i64,
    flags: &[Flag],
    gaps: Option<&[Option<MeasuredGap>]>,
) -> String {
    let s = &call.archive.summary;
    let h = &s.header;
    let t = &s.totals;
    let mut out = String::new();
    if let Some(n) = notice(call) {
        out.push_str(&format!("NOTICE: {n}\n\n"));
    }
    let mut head = Table::new(&["", ""]);
    let mut kv = |k: &str, v: String| head.row(vec![k.to_string(), v]);
    kv("archive", location.to_string());
    kv("session", h.session_id.clone());
    kv(
        "started",
        format!(
            "{}  (duration {})",
            h.started_at,
            format_duration(s.duration_ns)
        ),
    );
    let mut agent = format!("{} {}", h.agent.name, h.agent.version);
    if let Some(env) = &h.environment {
        agent.push_str(&format!("  environment {env}"));
    }
    kv("agent", agent);
    if !h.tags.is_empty() {
        kv(
            "tags",
            h.tags
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    v => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    kv(
        "tracks",
        if h.tracks.is_empty() {
            "none".to_string()
        } else {
            h.tracks
                .iter()
                .map(|tr| {
                    let frames = t.audio_frames.get(&tr.id).copied().unwrap_or(0);
                    format!(
                        "{} {} {} Hz x{} ({} recorded)",
                        tr.id,
                        tr.role,
                        tr.sample_rate,
                        tr.channels,
                        format_duration(frames * 1_000_000_000 / u64::from(tr.sample_rate.max(1)))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    kv(
        "file",
        format!(
            "{} bytes, {} chunks{}",
            call.archive.file_len,
            call.archive.index.len(),
            if call.recovered() { ", RECOVERED" } else { "" }
        ),
    );
    kv(
        "totals",
        format!(
            "{} turns, {} records, {} interruptions, {} errors, {} tool calls ({} failed)",
            t.turns, t.records, t.interruptions, t.errors, t.tool_calls, t.tool_errors
        ),
    );
    kv(
        "e2e",
        format!(
            "p50 {}  p95 {}",
            opt(t.e2e_p50_ns, format_latency),
            opt(t.e2e_p95_ns, format_latency)
        ),
    );
    let u = &t.usage;
    kv(
        "usage",
        format!(
            "{} prompt ({} cached) + {} completion tokens, STT {:.1}s, TTS {:.1}s / {} chars",
            u.prompt_tokens,
            u.cached_tokens,
            u.completion_tokens,
            u.stt_audio_seconds,
            u.tts_audio_seconds,
            u.tts_characters
        ),
    );
    kv(
        "ended",
        format!(
            "{}{}",
            t.end_reason.as_deref().unwrap_or("(no session_end record)"),
            t.outcome
                .as_deref()
                .map(|o| format!(", outcome {o}"))
                .unwrap_or_default()
        ),
    );
    // the key/value block has no header row
    let head = head.render();
    out.push_str(head.split_once('\n').map(|x| x.1).unwrap_or(""));
    out.push('\n');
    if s.turns.is_empty() {
        out.push_str("no turns\n");
    } else {
        out.push_str(&turn_table(s, slow_ns, gaps).render());
    }
    out.push('\n');
    if flags.is_empty() {
        out.push_str("flags: none\n");
    } else {
        out.push_str(&format!("flags ({}):\n", flags.len()));
        for f in flags {
            match f.turn {
                Some(turn) => out.push_str(&format!("  turn {turn}: {}\n", f.message)),
                None => out.push_str(&format!("  call: {}\n", f.message)),
            }
        }
    }
    out
}
