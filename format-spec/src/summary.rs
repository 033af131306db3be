//! The session summary written at close: turn table with each turn's latency breakdown,
//! session totals, and (after recovery) what was lost. [`SummaryBuilder`] computes it from
//! records with the rules of [`crate::call`], so the writer, recovery and any reader derive
//! the same numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::call::activity::{within, ActivityTracker, Segment};
use crate::call::classify;
use crate::call::latency::{breakdown, Evidence};
pub use crate::call::latency::{Latency, ABSURD_NS};
pub use crate::call::stats::percentile;
use crate::call::turns::TurnTimeline;
use crate::error::FormatError;
use crate::limits::{self, MAX_SUMMARY_JSON_VALUES, MAX_SUMMARY_TURNS};
use crate::model::{Header, Record, Speaker, StageTiming, TimedRecord, TurnId};

/// Longest text preview kept per turn and speaker, in characters.
pub const PREVIEW_CHARS: usize = 120;

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

impl Summary {
    /// Parses an inflated summary found at `offset`, within the reader's limits: at most
    /// [`MAX_SUMMARY_JSON_VALUES`] JSON values (counted before parsing) and
    /// [`MAX_SUMMARY_TURNS`] turns.
    pub fn parse(raw: &[u8], offset: u64) -> crate::Result<Summary> {
        check_json_values(raw, offset)?;
        let summary: Summary = crate::model::parse_json_object(raw)
            .map_err(|e| FormatError::malformed("summary", offset, format!("bad JSON: {e}")))?;
        check_turn_count(summary.turns.len(), offset)?;
        Ok(summary)
    }
}

/// A summary's JSON values, counted before it is parsed (SPEC §8 *Limits*).
pub fn check_json_values(raw: &[u8], offset: u64) -> crate::Result<()> {
    let values = limits::json_values(raw);
    if values > MAX_SUMMARY_JSON_VALUES {
        return Err(FormatError::TooMany {
            what: "summary JSON values",
            offset,
            count: values as u64,
            limit: MAX_SUMMARY_JSON_VALUES as u64,
        });
    }
    Ok(())
}

/// The number of turns a summary lists (SPEC §8 *Limits*).
pub fn check_turn_count(turns: usize, offset: u64) -> crate::Result<()> {
    if turns > MAX_SUMMARY_TURNS {
        return Err(FormatError::malformed(
            "summary",
            offset,
            format!("lists {turns} turns, over the limit of {MAX_SUMMARY_TURNS}"),
        ));
    }
    Ok(())
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
    /// More turns were seen than a summary lists ([`MAX_SUMMARY_TURNS`]): `turns` holds the
    /// lowest ids, and the records still hold every turn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub turns_truncated: bool,
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

/// What is known of one turn from the records that name it (or, at build time, that fall in it).
#[derive(Default, Clone)]
struct TurnAcc {
    speaker: Option<Speaker>,
    /// From `turn_start` (the earliest).
    started_ns: Option<u64>,
    /// Time of the first record naming the turn.
    first_seen_ns: Option<u64>,
    end_ns: Option<u64>,
    /// Final transcripts: (time, speaker, text up to the preview length).
    finals: Vec<(u64, Speaker, String)>,
    interrupted: bool,
    errors: u32,
    /// (start, end) of each tool call.
    tool_calls: Vec<(u64, u64)>,
    tool_errors: u32,
    stages: Vec<StageTiming>,
    user_transcript_end: Option<u64>,
    agent_transcript_start: Option<u64>,
    reported_e2e_ns: Option<i64>,
}

impl TurnAcc {
    fn start_ns(&self) -> u64 {
        self.started_ns.or(self.first_seen_ns).unwrap_or(0)
    }

    /// Adds what a record says about its turn (the rules of `call::classify` and §9).
    fn apply(&mut self, time_ns: u64, record: &Record) {
        if classify::is_error(record) {
            self.errors = self.errors.saturating_add(1);
        }
        if classify::is_interruption(record) {
            self.interrupted = true;
        }
        match record {
            Record::TurnEnd(t) => {
                self.end_ns = Some(time_ns);
                if let Some(r) = t.attributes.get("reported_e2e_ns").and_then(|v| v.as_i64()) {
                    self.reported_e2e_ns = Some(r);
                }
            }
            Record::Transcript(t) if t.is_final => {
                let text: String = t.text.trim().chars().take(PREVIEW_CHARS).collect();
                self.finals.push((time_ns, t.speaker, text));
                match t.speaker {
                    Speaker::User => {
                        if let Some(end) = t.end_ns {
                            self.user_transcript_end =
                                Some(self.user_transcript_end.map_or(end, |e| e.max(end)));
                        }
                    }
                    Speaker::Agent => {
                        if let Some(start) = t.start_ns {
                            self.agent_transcript_start =
                                Some(self.agent_transcript_start.map_or(start, |s| s.min(start)));
                        }
                    }
                    _ => {}
                }
            }
            Record::StageTiming(s) => self.stages.push(timing_a_turn_needs(s)),
            Record::ToolCall(c) => {
                self.tool_calls.push((c.start_ns, c.end_ns));
                if c.is_error {
                    self.tool_errors = self.tool_errors.saturating_add(1);
                }
            }
            _ => {}
        }
    }

    fn preview(&self, speaker: Speaker) -> String {
        let mut finals: Vec<&(u64, Speaker, String)> =
            self.finals.iter().filter(|f| f.1 == speaker).collect();
        finals.sort_by_key(|f| f.0);
        let mut out = String::new();
        for (_, _, text) in finals {
            push_preview(&mut out, text);
        }
        out
    }
}

/// Feeds on records in any order and produces the [`Summary`].
pub struct SummaryBuilder {
    header: Header,
    /// Turns by id, from the records naming them.
    turns: BTreeMap<TurnId, TurnAcc>,
    /// Records naming no turn that say something about one (placed at build time, §7).
    loose: Vec<TimedRecord>,
    /// Sound found on each track with a role, by track id.
    activity: BTreeMap<u16, (Speaker, ActivityTracker)>,
    totals: Totals,
    end_ns: u64,
}

impl SummaryBuilder {
    pub fn new(header: Header) -> Self {
        let activity = header
            .tracks
            .iter()
            .filter(|t| matches!(t.role, Speaker::User | Speaker::Agent))
            .filter_map(|t| {
                ActivityTracker::new(t.sample_rate, t.channels).map(|a| (t.id, (t.role, a)))
            })
            .collect();
        SummaryBuilder {
            header,
            turns: BTreeMap::new(),
            loose: Vec::new(),
            activity,
            totals: Totals::default(),
            end_ns: 0,
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
        match &rec.record {
            Record::StageTiming(s) => self.end_ns = self.end_ns.max(s.end_ns),
            Record::ToolCall(c) => {
                self.end_ns = self.end_ns.max(c.end_ns);
                self.totals.tool_calls = self.totals.tool_calls.saturating_add(1);
                if c.is_error {
                    self.totals.tool_errors = self.totals.tool_errors.saturating_add(1);
                }
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
                    None => self.totals.dropped.push(DroppedTotal {
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
                if let Some((_, tracker)) = self.activity.get_mut(&a.track) {
                    tracker.push(a.first_sample, &a.samples);
                }
                return;
            }
            _ => {}
        }
        let Some(id) = rec.record.turn() else {
            if let Some(slim) = what_a_turn_needs(&rec.record) {
                self.loose.push(TimedRecord::new(rec.time_ns, slim));
            }
            return;
        };
        if !self.make_room_for(id) {
            return;
        }
        match &rec.record {
            Record::TurnStart(t) => {
                let acc = self.turns.entry(t.turn).or_default();
                acc.speaker = Some(t.speaker);
                acc.started_ns = Some(acc.started_ns.map_or(rec.time_ns, |s| s.min(rec.time_ns)));
            }
            record => {
                let acc = self.turns.entry(id).or_default();
                acc.first_seen_ns.get_or_insert(rec.time_ns);
                acc.apply(rec.time_ns, record);
            }
        }
    }

    /// Whether turn `id` has (or now gets) a place in the table: it keeps the
    /// [`MAX_SUMMARY_TURNS`] lowest ids seen, so memory and the summary stay bounded
    /// whatever the records claim; a turn left out marks the totals truncated.
    fn make_room_for(&mut self, id: TurnId) -> bool {
        if self.turns.len() < MAX_SUMMARY_TURNS || self.turns.contains_key(&id) {
            return true;
        }
        self.totals.turns_truncated = true;
        match self.turns.last_key_value() {
            Some((&highest, _)) if id < highest => {
                self.turns.remove(&highest);
                true
            }
            _ => false,
        }
    }

    /// Speech found so far on the tracks of `role`, ascending and disjoint.
    fn speech(&self, role: Speaker) -> Vec<Segment> {
        let runs = self
            .activity
            .values()
            .filter(|(r, _)| *r == role)
            .flat_map(|(_, t)| t.segments())
            .collect();
        crate::call::activity::merge_runs(runs)
    }

    /// The summary as of now; the builder can keep observing afterwards.
    pub fn build(&self) -> Summary {
        let mut totals = self.totals.clone();
        let mut accs = self.turns.clone();
        let timeline = TurnTimeline::new(accs.iter().map(|(&id, a)| (id, a.start_ns())));
        let mut loose_errors = 0u32;
        let mut loose_interruptions = 0u32;
        for r in &self.loose {
            match timeline.turn_at(r.time_ns).and_then(|id| accs.get_mut(&id)) {
                Some(acc) => acc.apply(r.time_ns, &r.record),
                None => {
                    if classify::is_error(&r.record) {
                        loose_errors = loose_errors.saturating_add(1);
                    }
                    if classify::is_interruption(&r.record) {
                        loose_interruptions = loose_interruptions.saturating_add(1);
                    }
                }
            }
        }
        let user_speech = self.speech(Speaker::User);
        let agent_speech = self.speech(Speaker::Agent);
        // turns in time order, to know where each one's audio ends
        let mut order: Vec<(u64, TurnId)> =
            accs.iter().map(|(&id, a)| (a.start_ns(), id)).collect();
        order.sort_unstable();
        let mut latencies = BTreeMap::new();
        for (i, &(start, id)) in order.iter().enumerate() {
            let acc = &accs[&id];
            let next_start = order.get(i + 1).map(|n| n.0);
            let end = acc.end_ns.or(next_start).unwrap_or(self.end_ns).max(start);
            let previous_start = i.checked_sub(1).map_or(0, |p| order[p].0);
            let latency = breakdown(&Evidence {
                speaker: acc.speaker.unwrap_or(Speaker::User),
                stages: &acc.stages,
                tool_calls: &acc.tool_calls,
                user_transcript_end: acc.user_transcript_end,
                agent_transcript_start: acc.agent_transcript_start,
                reported_e2e_ns: acc.reported_e2e_ns,
                user_speech: within(&user_speech, previous_start, end),
                agent_speech: within(&agent_speech, start, end),
            });
            latencies.insert(id, latency);
        }
        let mut turns = Vec::with_capacity(accs.len());
        for (id, acc) in accs {
            if acc.interrupted {
                totals.interruptions = totals.interruptions.saturating_add(1);
            }
            totals.errors = totals.errors.saturating_add(acc.errors);
            turns.push(TurnSummary {
                turn: id,
                speaker: acc.speaker.unwrap_or(Speaker::User),
                start_ns: acc.start_ns(),
                end_ns: acc.end_ns,
                user_text: acc.preview(Speaker::User),
                agent_text: acc.preview(Speaker::Agent),
                interrupted: acc.interrupted,
                errors: acc.errors,
                tool_calls: acc.tool_calls.len().min(u32::MAX as usize) as u32,
                tool_errors: acc.tool_errors,
                latency: latencies.remove(&id).unwrap_or_default(),
            });
        }
        totals.interruptions = totals.interruptions.saturating_add(loose_interruptions);
        totals.errors = totals.errors.saturating_add(loose_errors);
        totals.turns = turns.len().min(u32::MAX as usize) as u32;
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

/// Of a record naming no turn, what the turn table needs once it is placed (what
/// [`TurnAcc::apply`] reads), without the text, arguments and attributes it does not: a
/// long call's loose records cost little until the summary is built.
fn what_a_turn_needs(record: &Record) -> Option<Record> {
    let slim = match record {
        Record::Transcript(t) => Record::Transcript(crate::model::Transcript {
            text: t.text.trim().chars().take(PREVIEW_CHARS).collect(),
            heard_text: None,
            attributes: Default::default(),
            ..t.clone()
        }),
        Record::StageTiming(s) => Record::StageTiming(timing_a_turn_needs(s)),
        Record::ToolCall(c) => Record::ToolCall(crate::model::ToolCall {
            name: String::new(),
            arguments: serde_json::Value::Null,
            output: serde_json::Value::Null,
            attributes: Default::default(),
            call_id: None,
            ..*c
        }),
        r if classify::is_error(r) || classify::is_interruption(r) => match r {
            Record::Event(e) => Record::Event(crate::model::Event {
                turn: e.turn,
                name: e.name.clone(),
                attributes: Default::default(),
            }),
            Record::Log(l) => Record::Log(crate::model::LogLine {
                message: String::new(),
                fields: Default::default(),
                target: String::new(),
                ..l.clone()
            }),
            other => other.clone(),
        },
        _ => return None,
    };
    Some(slim)
}

/// Of a stage timing, what the latency breakdown reads: its stage, span and first-token or
/// first-byte times, without the model, provider and attributes (a turn keeps its stages
/// until the summary is built, so a long call pays for every byte kept here).
fn timing_a_turn_needs(s: &StageTiming) -> StageTiming {
    StageTiming {
        turn: s.turn,
        stage: s.stage.clone(),
        start_ns: s.start_ns,
        end_ns: s.end_ns,
        ttft_ns: s.ttft_ns,
        ttfb_ns: s.ttfb_ns,
        prompt_tokens: s.prompt_tokens,
        completion_tokens: s.completion_tokens,
        characters: s.characters,
        model: None,
        provider: None,
        cancelled: s.cancelled,
        attributes: Default::default(),
    }
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
