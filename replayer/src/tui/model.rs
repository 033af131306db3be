//! What the views show, extracted from records off the UI thread: a turn's details, the
//! transcript and speech around the cursor, the audio envelope, search hits.

use calltape_format::call::activity::Segment;
use calltape_format::call::{classify, Mark, TurnTimeline};
use calltape_format::{
    Event, LogLine, Record, Speaker, Stage, StageTiming, StateSnapshot, TimedRecord, ToolCall,
    Transcript, TurnId, TurnSummary,
};

/// Everything recorded for one turn, from the control chunks that cover it.
#[derive(Debug, Clone, Default)]
pub struct TurnDetail {
    pub turn: TurnId,
    pub stages: Vec<StageTiming>,
    pub tools: Vec<ToolCall>,
    pub events: Vec<(u64, Event)>,
    pub snapshots: Vec<StateSnapshot>,
    pub logs: Vec<(u64, LogLine)>,
    pub transcripts: Vec<(u64, Transcript)>,
    /// Records of kinds this reader does not know.
    pub unknown: u32,
}

impl TurnDetail {
    /// Collects the records of `turn` (turn membership, SPEC.md §7).
    pub fn collect(turn: TurnId, timeline: &TurnTimeline, records: &[TimedRecord]) -> Self {
        let mut d = TurnDetail {
            turn,
            ..Default::default()
        };
        for r in records {
            if timeline.turn_of(r) != Some(turn) {
                continue;
            }
            match &r.record {
                Record::StageTiming(s) => d.stages.push(s.clone()),
                Record::ToolCall(c) => d.tools.push(c.clone()),
                Record::Event(e) => d.events.push((r.time_ns, e.clone())),
                Record::StateSnapshot(s) => d.snapshots.push(s.clone()),
                Record::Log(l) => d.logs.push((r.time_ns, l.clone())),
                Record::Transcript(t) => d.transcripts.push((r.time_ns, t.clone())),
                Record::Unknown { .. } => d.unknown += 1,
                _ => {}
            }
        }
        d.stages.sort_by_key(|s| (s.start_ns, s.end_ns));
        d.tools.sort_by_key(|c| c.start_ns);
        d
    }
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptLine {
    /// Where the line sits on the clock: the speech start if known, else the record time.
    pub at_ns: u64,
    pub turn: Option<TurnId>,
    pub speaker: Speaker,
    pub text: String,
    pub is_final: bool,
    pub interrupted: bool,
    pub heard_text: Option<String>,
}

/// Reported speech and marks in a time span, from the control chunks overlapping it.
#[derive(Debug, Clone, Default)]
pub struct SpanData {
    pub from_ns: u64,
    pub to_ns: u64,
    pub transcripts: Vec<TranscriptLine>,
    /// User speech as reported (vad stages, else final transcript spans).
    pub user_speech: Vec<Segment>,
    /// Agent speech as reported (playback stages).
    pub agent_speech: Vec<Segment>,
    pub marks: Vec<(u64, Mark)>,
}

impl SpanData {
    pub fn collect(from_ns: u64, to_ns: u64, records: &[TimedRecord]) -> Self {
        let mut d = SpanData {
            from_ns,
            to_ns,
            ..Default::default()
        };
        let mut user_transcript_spans = Vec::new();
        for r in records {
            match &r.record {
                Record::Transcript(t) => {
                    if t.is_final && t.speaker == Speaker::User {
                        if let (Some(s), Some(e)) = (t.start_ns, t.end_ns) {
                            user_transcript_spans.push(Segment {
                                start_ns: s,
                                end_ns: e,
                            });
                        }
                    }
                    d.transcripts.push(TranscriptLine {
                        at_ns: t.start_ns.unwrap_or(r.time_ns),
                        turn: t.turn,
                        speaker: t.speaker,
                        text: t.text.clone(),
                        is_final: t.is_final,
                        interrupted: t.interrupted,
                        heard_text: t.heard_text.clone(),
                    });
                }
                Record::StageTiming(s) if s.stage == Stage::Vad => d.user_speech.push(Segment {
                    start_ns: s.start_ns,
                    end_ns: s.end_ns,
                }),
                Record::StageTiming(s) if s.stage == Stage::Playback => {
                    d.agent_speech.push(Segment {
                        start_ns: s.start_ns,
                        end_ns: s.end_ns,
                    })
                }
                _ => {}
            }
            d.marks.extend(classify::mark(r));
        }
        if d.user_speech.is_empty() {
            d.user_speech = user_transcript_spans;
        }
        d.transcripts = keep_last_interims(std::mem::take(&mut d.transcripts));
        d.transcripts.sort_by_key(|l| l.at_ns);
        d.marks.sort_by_key(|m| m.0);
        d
    }
}

/// Of each run of interim hypotheses (same turn and speaker), keeps only the last one, and
/// only when it differs from the final text that follows it: that is where STT changed its mind.
fn keep_last_interims(lines: Vec<TranscriptLine>) -> Vec<TranscriptLine> {
    let norm = |s: &str| s.trim().to_lowercase();
    let mut out: Vec<TranscriptLine> = Vec::with_capacity(lines.len());
    let mut pending: Option<TranscriptLine> = None;
    for l in lines {
        let same = |p: &TranscriptLine| p.turn == l.turn && p.speaker == l.speaker;
        if !l.is_final {
            if let Some(p) = pending.take() {
                if !same(&p) {
                    out.push(p);
                }
            }
            pending = Some(l);
            continue;
        }
        if let Some(p) = pending.take() {
            if !same(&p) || norm(&p.text) != norm(&l.text) {
                out.push(p);
            }
        }
        out.push(l);
    }
    out.extend(pending);
    out
}

/// Audio RMS envelopes of both speakers over a span, and the speech found in them.
#[derive(Debug, Clone, Default)]
pub struct EnergyView {
    pub from_ns: u64,
    pub to_ns: u64,
    pub frame_ns: u64,
    pub user: Vec<f32>,
    pub agent: Vec<f32>,
    pub user_speech: Vec<Segment>,
    pub agent_speech: Vec<Segment>,
}

impl EnergyView {
    /// Peak RMS of `track` over `[a, b)`, if the span covers it.
    pub fn peak(&self, agent: bool, a: u64, b: u64) -> Option<f32> {
        if self.frame_ns == 0 || b <= self.from_ns || a >= self.to_ns {
            return None;
        }
        let env = if agent { &self.agent } else { &self.user };
        let i = (a.saturating_sub(self.from_ns) / self.frame_ns) as usize;
        let j = ((b.saturating_sub(self.from_ns)).div_ceil(self.frame_ns) as usize).max(i + 1);
        env.get(i..j.min(env.len()))
            .and_then(|s| s.iter().copied().reduce(f32::max))
    }
}

/// A transcript line matching a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub at_ns: u64,
    pub turn: Option<TurnId>,
}

/// The index in `turns` of the turn a time falls in (turn membership, SPEC §7).
pub fn turn_index_at(turns: &[TurnSummary], t_ns: u64) -> Option<usize> {
    let timeline = TurnTimeline::new(turns.iter().map(|t| (t.turn, t.start_ns)));
    let id = timeline.turn_at(t_ns)?;
    turns.iter().position(|t| t.turn == id)
}

/// Where the cursor goes for a turn: the end of user speech, else the turn start.
pub fn turn_anchor(t: &TurnSummary) -> u64 {
    t.latency.user_speech_end_ns.unwrap_or(t.start_ns)
}
