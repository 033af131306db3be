//! Transcript export: plain text, JSON, SRT and WebVTT from a call's transcript records.
//! Cue times come from the transcript's `start_ns`/`end_ns` (the speech it covers) or, when
//! absent, from the record's time; only final transcripts unless interim ones are asked for.

use serde_json::{json, Value};

use calltape_format::call::TurnTimeline;
use calltape_format::{Record, Speaker, TimedRecord};

use super::units::{format_clock, format_cue_time};

/// Output format of a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TranscriptFormat {
    Text,
    Json,
    Srt,
    Vtt,
}

impl TranscriptFormat {
    /// From a file name's extension: `.txt`, `.json`, `.srt`, `.vtt`.
    pub fn from_path(path: &std::path::Path) -> Option<TranscriptFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "txt" | "text" => Some(TranscriptFormat::Text),
            "json" => Some(TranscriptFormat::Json),
            "srt" => Some(TranscriptFormat::Srt),
            "vtt" | "webvtt" => Some(TranscriptFormat::Vtt),
            _ => None,
        }
    }
}

/// One line of the transcript with its time span.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub turn: Option<u32>,
    pub speaker: Speaker,
    pub text: String,
    pub heard_text: Option<String>,
    pub interrupted: bool,
    pub is_final: bool,
    pub confidence: Option<f64>,
    pub language: Option<String>,
    /// When the record was written (session ns).
    pub time_ns: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `start_ns`/`end_ns` come from the record (`true`) or were estimated (`false`).
    pub timed: bool,
}

impl Cue {
    /// What a subtitle shows: for a cut-off agent line, the part the caller heard.
    pub fn shown_text(&self) -> String {
        match (&self.heard_text, self.interrupted) {
            (Some(h), true) => format!("{} [interrupted]", h.trim()),
            (None, true) => format!("{} [interrupted]", self.text.trim()),
            _ => self.text.trim().to_string(),
        }
    }

    fn who(&self) -> &'static str {
        match self.speaker {
            Speaker::User => "User",
            Speaker::Agent => "Agent",
            Speaker::System => "System",
            Speaker::Other => "Other",
        }
    }
}

/// A guess of how long `text` takes to say: 60 ms per character, 0.8–8 s.
fn spoken_ns(text: &str) -> u64 {
    (text.chars().count() as u64 * 60_000_000).clamp(800_000_000, 8_000_000_000)
}

/// The transcript cues of `records` in time order (finals only unless `interim`), each in
/// its turn by the call's turn membership (SPEC §7).
pub fn cues(records: &[TimedRecord], timeline: &TurnTimeline, interim: bool) -> Vec<Cue> {
    let mut out = Vec::new();
    for r in records {
        match &r.record {
            Record::Transcript(t) if t.is_final || interim => {
                let start = t.start_ns.unwrap_or(r.time_ns);
                let end = match t.end_ns {
                    Some(e) if e > start => e,
                    _ => start + spoken_ns(t.heard_text.as_deref().unwrap_or(&t.text)),
                };
                out.push(Cue {
                    turn: timeline.turn_of(r),
                    speaker: t.speaker,
                    text: t.text.clone(),
                    heard_text: t.heard_text.clone(),
                    interrupted: t.interrupted,
                    is_final: t.is_final,
                    confidence: t.confidence,
                    language: t.language.clone(),
                    time_ns: r.time_ns,
                    start_ns: start,
                    end_ns: end,
                    timed: t.start_ns.is_some() && t.end_ns.is_some_and(|e| e > start),
                });
            }
            _ => {}
        }
    }
    out.sort_by_key(|c| (c.start_ns, c.time_ns));
    out
}

/// `[0:01.200] user: text` lines.
pub fn to_text(cues: &[Cue]) -> String {
    let mut out = String::new();
    for c in cues {
        out.push_str(&format!(
            "[{}] {}{}: {}\n",
            format_clock(c.start_ns),
            c.speaker,
            if c.is_final { "" } else { " (interim)" },
            c.shown_text()
        ));
    }
    out
}

/// `{"cues": [{turn, speaker, text, heard_text, interrupted, is_final, confidence, language,
/// time_ns, start_ns, end_ns, timed}]}`.
pub fn to_json(cues: &[Cue]) -> Value {
    json!({
        "schema": "calltape.transcript/1",
        "cues": cues.iter().map(|c| json!({
            "turn": c.turn,
            "speaker": c.speaker,
            "text": c.text,
            "heard_text": c.heard_text,
            "interrupted": c.interrupted,
            "is_final": c.is_final,
            "confidence": c.confidence,
            "language": c.language,
            "time_ns": c.time_ns,
            "start_ns": c.start_ns,
            "end_ns": c.end_ns,
            "timed": c.timed,
        })).collect::<Vec<_>>()
    })
}

/// SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, `Speaker: text`.
pub fn to_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, c) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}: {}\n\n",
            i + 1,
            format_cue_time(c.start_ns, ','),
            format_cue_time(c.end_ns, ','),
            c.who(),
            c.shown_text()
        ));
    }
    out
}

/// WebVTT with voice spans (`<v User>`).
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (i, c) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n<v {}>{}\n\n",
            i + 1,
            format_cue_time(c.start_ns, '.'),
            format_cue_time(c.end_ns, '.'),
            c.who(),
            escape_vtt(&c.shown_text())
        ));
    }
    out
}

fn escape_vtt(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace("-->", "--&gt;")
}

/// Renders `cues` in `format`.
pub fn render(cues: &[Cue], format: TranscriptFormat) -> String {
    match format {
        TranscriptFormat::Text => to_text(cues),
        TranscriptFormat::Json => {
            let mut s = serde_json::to_string_pretty(&to_json(cues)).expect("serializes");
            s.push('\n');
            s
        }
        TranscriptFormat::Srt => to_srt(cues),
        TranscriptFormat::Vtt => to_vtt(cues),
    }
}
