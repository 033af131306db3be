//! The session summary written at close: turn table with each turn's latency breakdown,
//! session totals, and (after recovery) what was lost. [`SummaryBuilder`] computes it from
//! records, so the writer, recovery and any reader derive the same numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Header, Record, Speaker, Stage, StageTiming, TimedRecord, TurnId};

/// Longest text preview kept per turn and speaker, in characters.
pub const PREVIEW_CHARS: usize = 120;
/// A latency part above this is "absurd" (60 s) and flagged instead of drawn.
pub const ABSURD_NS: i64 = 60_000_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub header: Header,
    /// From session time 0 to the last record or audio sample.
    pub duration_ns: u64,
    pub turns: Vec<TurnSummary>,
    pub totals: Totals,
    /// Present when the summary was rebuilt by recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryNote>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSummary {
    pub turn: TurnId,
    pub speaker: Speaker,
    pub start_ns: u64,
    #[serde(default)]
    pub end_ns: Option<u64>,
    /// Final user transcript text of the turn (preview).
    #[serde(default)]
    pub user_text: String,
    /// Agent text generated in the turn (preview).
    #[serde(default)]
    pub agent_text: String,
    /// The agent was cut off in this turn.
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub errors: u32,
    #[serde(default)]
    pub tool_calls: u32,
    #[serde(default)]
    pub tool_errors: u32,
    pub latency: Latency,
}

/// Where a turn's response time went. All values are signed nanoseconds; see SPEC.md
/// "Latency breakdown" for the exact definitions. Values listed in `flags` as negative or
/// absurd are kept as measured but must not be drawn as if valid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// When the user's last speech in the turn ended.
    #[serde(default)]
    pub user_speech_end_ns: Option<u64>,
    /// When the agent's first audible audio in the turn started.
    #[serde(default)]
    pub agent_audio_start_ns: Option<u64>,
    #[serde(default)]
    pub e2e_ns: Option<i64>,
    #[serde(default)]
    pub eou_ns: Option<i64>,
    #[serde(default)]
    pub stt_ns: Option<i64>,
    #[serde(default)]
    pub llm_ttft_ns: Option<i64>,
    #[serde(default)]
    pub tool_ns: Option<i64>,
    #[serde(default)]
    pub tts_ttfb_ns: Option<i64>,
    /// e2e less every part above: queueing, network, buffering nobody reported.
    #[serde(default)]
    pub rest_ns: Option<i64>,
    /// e2e as the agent itself reported it (TurnEnd attribute `reported_e2e_ns`), if any.
    #[serde(default)]
    pub reported_e2e_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

impl Latency {
    /// The parts in display order with their names: eou, stt, llm, tool, tts, rest.
    pub fn parts(&self) -> [(&'static str, Option<i64>); 6] {
        [
            ("eou", self.eou_ns),
            ("stt", self.stt_ns),
            ("llm", self.llm_ttft_ns),
            ("tool", self.tool_ns),
            ("tts", self.tts_ttfb_ns),
            ("rest", self.rest_ns),
        ]
    }

    /// e2e if it is present and sane (not negative, not absurd).
    pub fn valid_e2e_ns(&self) -> Option<i64> {
        self.e2e_ns.filter(|_| {
            !self
                .flags
                .iter()
                .any(|f| f == "negative_e2e" || f == "absurd_e2e")
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub turns: u32,
    pub records: u64,
    pub interruptions: u32,
    pub errors: u32,
    pub tool_calls: u32,
    pub tool_errors: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<DroppedTotal>,
    pub usage: UsageTotals,
    /// Samples per channel recorded per track id.
    #[serde(default)]
    pub audio_frames: BTreeMap<u16, u64>,
    #[serde(default)]
    pub e2e_p50_ns: Option<i64>,
    #[serde(default)]
    pub e2e_p95_ns: Option<i64>,
    #[serde(default)]
    pub end_reason: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedTotal {
    pub what: String,
    pub unit: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub stt_audio_seconds: f64,
    pub tts_audio_seconds: f64,
    pub tts_characters: u64,
}

/// What recovery kept and lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryNote {
    /// Bytes kept from the start of the file (everything before is intact).
    pub kept_bytes: u64,
    /// Bytes after that which could not be kept.
    pub lost_bytes: u64,
    pub chunks_kept: u32,
    /// Why the scan stopped, e.g. "truncated chunk frame at byte 8123".
    pub reason: String,
}

#[derive(Default)]
struct TurnAcc {
    speaker: Option<Speaker>,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    user_text: String,
    agent_text: String,
    interrupted: bool,
    errors: u32,
    tool_calls: u32,
    tool_errors: u32,
    tool_call_ns: u64,
    stages: Vec<StageTiming>,
    user_transcript_end: Option<u64>,
    agent_transcript_start: Option<u64>,
    reported_e2e_ns: Option<i64>,
}

/// Feeds on records in file order and produces the [`Summary`].
pub struct SummaryBuilder {
    header: Header,
    turns: BTreeMap<TurnId, TurnAcc>,
    current_turn: Option<TurnId>,
    totals: Totals,
    end_ns: u64,
    loose_interruptions: u32,
    loose_errors: u32,
}

impl SummaryBuilder {
    pub fn new(header: Header) -> Self {
        SummaryBuilder {
            header,
            turns: BTreeMap::new(),
            current_turn: None,
            totals: Totals::default(),
            end_ns: 0,
            loose_interruptions: 0,
            loose_errors: 0,
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Session time of the last thing seen so far.
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    pub fn observe(&mut self, rec: &TimedRecord) {
        self.totals.records = self.totals.records.saturating_add(1);
        self.end_ns = self.end_ns.max(rec.time_ns);
        let turn_id = rec.record.turn().or(self.current_turn);
        match &rec.record {
            Record::TurnStart(t) => {
                self.current_turn = Some(t.turn);
                let acc = self.turns.entry(t.turn).or_default();
                acc.speaker = Some(t.speaker);
                acc.start_ns = Some(acc.start_ns.map_or(rec.time_ns, |s| s.min(rec.time_ns)));
            }
            Record::TurnEnd(t) => {
                let acc = self.turn(t.turn, rec.time_ns);
                acc.end_ns = Some(rec.time_ns);
                if t.attributes.get("interrupted").and_then(|v| v.as_bool()) == Some(true) {
                    acc.interrupted = true;
                }
                acc.reported_e2e_ns = t.attributes.get("reported_e2e_ns").and_then(|v| v.as_i64());
            }
            Record::Transcript(t) => {
                if let Some(id) = turn_id {
                    let acc = self.turn(id, rec.time_ns);
                    if t.is_final {
                        match t.speaker {
                            Speaker::User => {
                                push_preview(&mut acc.user_text, &t.text);
                                if let Some(end) = t.end_ns {
                                    acc.user_transcript_end =
                                        Some(acc.user_transcript_end.map_or(end, |e| e.max(end)));
                                }
                            }
                            Speaker::Agent => {
                                push_preview(&mut acc.agent_text, &t.text);
                                if let Some(start) = t.start_ns {
                                    acc.agent_transcript_start = Some(
                                        acc.agent_transcript_start.map_or(start, |s| s.min(start)),
                                    );
                                }
                            }
                            _ => {}
                        }
                    }
                    if t.interrupted {
                        acc.interrupted = true;
                    }
                }
            }
            Record::StageTiming(s) => {
                self.end_ns = self.end_ns.max(s.end_ns);
                if let Some(id) = turn_id {
                    self.turn(id, rec.time_ns).stages.push(s.clone());
                }
            }
            Record::ToolCall(c) => {
                self.end_ns = self.end_ns.max(c.end_ns);
                self.totals.tool_calls = self.totals.tool_calls.saturating_add(1);
                if c.is_error {
                    self.totals.tool_errors = self.totals.tool_errors.saturating_add(1);
                }
                if let Some(id) = turn_id {
                    let acc = self.turn(id, rec.time_ns);
                    acc.tool_calls = acc.tool_calls.saturating_add(1);
                    acc.tool_call_ns = acc
                        .tool_call_ns
                        .saturating_add(c.end_ns.saturating_sub(c.start_ns));
                    if c.is_error {
                        acc.tool_errors = acc.tool_errors.saturating_add(1);
                    }
                }
            }
            Record::Event(e) => match e.name.as_str() {
                "error" => self.count_error(turn_id, rec.time_ns),
                "interruption" => match turn_id {
                    Some(id) => self.turn(id, rec.time_ns).interrupted = true,
                    None => self.loose_interruptions = self.loose_interruptions.saturating_add(1),
                },
                _ => {}
            },
            Record::Log(l) if l.level.eq_ignore_ascii_case("error") => {
                self.count_error(turn_id, rec.time_ns)
            }
            Record::Usage(u) => {
                let t = &mut self.totals.usage;
                t.prompt_tokens = t.prompt_tokens.saturating_add(u.prompt_tokens);
                t.completion_tokens = t.completion_tokens.saturating_add(u.completion_tokens);
                t.cached_tokens = t.cached_tokens.saturating_add(u.cached_tokens);
                t.stt_audio_seconds = finite(t.stt_audio_seconds + finite(u.stt_audio_seconds));
                t.tts_audio_seconds = finite(t.tts_audio_seconds + finite(u.tts_audio_seconds));
                t.tts_characters = t.tts_characters.saturating_add(u.tts_characters);
            }
            Record::Dropped(d) => {
                match self
                    .totals
                    .dropped
                    .iter_mut()
                    .find(|x| x.what == d.what && x.unit == d.unit)
                {
                    Some(x) => x.count = x.count.saturating_add(d.count),
                    None => self.totals.dropped.push(crate::summary::DroppedTotal {
                        what: d.what.clone(),
                        unit: d.unit.clone(),
                        count: d.count,
                    }),
                }
            }
            Record::SessionEnd(e) => {
                self.totals.end_reason = Some(e.reason.clone());
                self.totals.outcome = e.outcome.clone();
            }
            Record::Audio(a) => {
                let frames = a.frames();
                let total = self.totals.audio_frames.entry(a.track).or_insert(0);
                *total = total.saturating_add(frames);
                if let Some(track) = self.header.tracks.iter().find(|t| t.id == a.track) {
                    if track.sample_rate > 0 {
                        let end = (a.first_sample.saturating_add(frames) as u128 * 1_000_000_000
                            / u128::from(track.sample_rate))
                        .min(u64::MAX as u128) as u64;
                        self.end_ns = self.end_ns.max(end);
                    }
                }
            }
            _ => {}
        }
    }

    fn count_error(&mut self, turn_id: Option<TurnId>, time_ns: u64) {
        match turn_id {
            Some(id) => {
                let acc = self.turn(id, time_ns);
                acc.errors = acc.errors.saturating_add(1);
            }
            None => self.loose_errors = self.loose_errors.saturating_add(1),
        }
    }

    fn turn(&mut self, id: TurnId, time_ns: u64) -> &mut TurnAcc {
        let acc = self.turns.entry(id).or_default();
        if acc.start_ns.is_none() {
            acc.start_ns = Some(time_ns);
        }
        acc
    }

    /// The summary as of now; the builder can keep observing afterwards.
    pub fn build(&self) -> Summary {
        let mut totals = self.totals.clone();
        let mut turns = Vec::with_capacity(self.turns.len());
        for (&id, acc) in &self.turns {
            let speaker = acc.speaker.unwrap_or(Speaker::User);
            let latency = compute_latency(acc, speaker);
            if acc.interrupted {
                totals.interruptions = totals.interruptions.saturating_add(1);
            }
            totals.errors = totals.errors.saturating_add(acc.errors);
            turns.push(TurnSummary {
                turn: id,
                speaker,
                start_ns: acc.start_ns.unwrap_or(0),
                end_ns: acc.end_ns,
                user_text: acc.user_text.clone(),
                agent_text: acc.agent_text.clone(),
                interrupted: acc.interrupted,
                errors: acc.errors,
                tool_calls: acc.tool_calls,
                tool_errors: acc.tool_errors,
                latency,
            });
        }
        totals.interruptions = totals
            .interruptions
            .saturating_add(self.loose_interruptions);
        totals.errors = totals.errors.saturating_add(self.loose_errors);
        totals.turns = turns.len() as u32;
        let mut e2e: Vec<i64> = turns
            .iter()
            .filter_map(|t| t.latency.valid_e2e_ns())
            .collect();
        e2e.sort_unstable();
        totals.e2e_p50_ns = percentile(&e2e, 50.0);
        totals.e2e_p95_ns = percentile(&e2e, 95.0);
        Summary {
            header: self.header.clone(),
            duration_ns: self.end_ns,
            turns,
            totals,
            recovery: None,
        }
    }
}

/// `a - b` as i64, saturating instead of overflowing on hostile times.
fn diff(a: u64, b: u64) -> i64 {
    (i128::from(a) - i128::from(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn sum(values: &[i64]) -> i64 {
    values.iter().fold(0i64, |a, &b| a.saturating_add(b))
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Non-finite values (and sums that overflowed to infinity) count as 0 / the largest finite
/// value, so the summary always serializes as JSON numbers.
fn finite(x: f64) -> f64 {
    if x.is_infinite() && x > 0.0 {
        return f64::MAX;
    }
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

fn push_preview(dst: &mut String, text: &str) {
    let have = dst.chars().count();
    if have >= PREVIEW_CHARS {
        return;
    }
    if !dst.is_empty() {
        dst.push(' ');
    }
    dst.extend(text.trim().chars().take(PREVIEW_CHARS - have));
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn stages<'a>(acc: &'a TurnAcc, stage: &'a Stage) -> impl Iterator<Item = &'a StageTiming> + 'a {
    acc.stages.iter().filter(move |s| &s.stage == stage)
}

fn span(s: &StageTiming) -> i64 {
    diff(s.end_ns, s.start_ns)
}

fn compute_latency(acc: &TurnAcc, speaker: Speaker) -> Latency {
    let mut l = Latency {
        reported_e2e_ns: acc.reported_e2e_ns,
        ..Latency::default()
    };
    let playback_start = stages(acc, &Stage::Playback).map(|s| s.start_ns).min();
    l.agent_audio_start_ns = playback_start.or(acc.agent_transcript_start);
    let vad_end = stages(acc, &Stage::Vad)
        .map(|s| s.end_ns)
        .filter(|&e| l.agent_audio_start_ns.is_none_or(|a| e <= a))
        .max()
        .or_else(|| stages(acc, &Stage::Vad).map(|s| s.end_ns).max());
    let eou = stages(acc, &Stage::Eou).min_by_key(|s| s.start_ns);
    l.user_speech_end_ns = vad_end
        .or(eou.map(|s| s.start_ns))
        .or(acc.user_transcript_end);

    l.eou_ns = eou.map(span);
    let committed = eou.map(|s| s.end_ns).or(l.user_speech_end_ns);
    let stt_end = stages(acc, &Stage::Stt).map(|s| s.end_ns).max();
    l.stt_ns = match (stt_end, committed) {
        // only the part of transcription still running after the turn was committed
        (Some(e), Some(c)) => Some(diff(e, c).max(0)),
        (Some(_), None) => stages(acc, &Stage::Stt).map(span).max(),
        (None, _) => None,
    };
    let ttfts: Vec<i64> = stages(acc, &Stage::Llm)
        .filter_map(|s| s.ttft_ns.map(signed))
        .collect();
    l.llm_ttft_ns = (!ttfts.is_empty()).then(|| sum(&ttfts));
    let tool_stages: Vec<i64> = stages(acc, &Stage::Tool).map(span).collect();
    l.tool_ns = if !tool_stages.is_empty() {
        Some(sum(&tool_stages))
    } else if acc.tool_calls > 0 {
        Some(signed(acc.tool_call_ns))
    } else {
        None
    };
    l.tts_ttfb_ns = stages(acc, &Stage::Tts)
        .filter(|s| s.ttfb_ns.is_some())
        .min_by_key(|s| s.start_ns)
        .and_then(|s| s.ttfb_ns.map(signed));

    if let (Some(end), Some(start)) = (l.user_speech_end_ns, l.agent_audio_start_ns) {
        let e2e = diff(start, end);
        l.e2e_ns = Some(e2e);
        let explained = sum(
            &[l.eou_ns, l.stt_ns, l.llm_ttft_ns, l.tool_ns, l.tts_ttfb_ns]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        );
        l.rest_ns = Some(e2e.saturating_sub(explained));
    }
    if speaker == Speaker::User {
        if l.user_speech_end_ns.is_none() {
            l.flags.push("missing_user_speech_end".into());
        }
        if l.agent_audio_start_ns.is_none() {
            l.flags.push("missing_agent_audio".into());
        }
    }
    for (name, value) in [("e2e", l.e2e_ns)]
        .into_iter()
        .chain(l.parts().into_iter().filter(|(n, _)| *n != "rest"))
    {
        match value {
            Some(v) if v < 0 => l.flags.push(format!("negative_{name}")),
            Some(v) if v > ABSURD_NS => l.flags.push(format!("absurd_{name}")),
            _ => {}
        }
    }
    if l.rest_ns.is_some_and(|r| r < 0) {
        l.flags.push("parts_exceed_e2e".into());
    }
    l
}
