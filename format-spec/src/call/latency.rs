//! The latency breakdown of a turn (SPEC.md §9): where the caller's wait went, the flags that
//! say which values must not be drawn as valid, and the thresholds every view applies (slow
//! turns, a reported or heard e2e that disagrees with the breakdown).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::activity::{measure_gap, user_end_before, MeasuredGap, Segment};
use crate::model::{Speaker, Stage, StageTiming};

/// A latency part above this is absurd (60 s): flagged instead of drawn.
pub const ABSURD_NS: i64 = 60_000_000_000;
/// A turn whose valid e2e is above this is slow unless the user says otherwise (1.5 s).
pub const DEFAULT_SLOW_NS: i64 = 1_500_000_000;
/// A reported e2e, or the gap heard in the audio, further than this from the breakdown's e2e
/// disagrees with it (250 ms).
pub const MISMATCH_NS: i64 = 250_000_000;

/// Do two e2e values disagree (further apart than [`MISMATCH_NS`]).
pub fn mismatched(a_ns: i64, b_ns: i64) -> bool {
    (i128::from(a_ns) - i128::from(b_ns)).abs() > i128::from(MISMATCH_NS)
}

/// One quantity of the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    E2e,
    Eou,
    Stt,
    Llm,
    Tool,
    Tts,
    Rest,
}

impl Part {
    /// The parts e2e is made of, in the order a turn's time is spent.
    pub const BREAKDOWN: [Part; 6] = [
        Part::Eou,
        Part::Stt,
        Part::Llm,
        Part::Tool,
        Part::Tts,
        Part::Rest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::E2e => "e2e",
            Part::Eou => "eou",
            Part::Stt => "stt",
            Part::Llm => "llm",
            Part::Tool => "tool",
            Part::Tts => "tts",
            Part::Rest => "rest",
        }
    }

    pub fn from_name(name: &str) -> Option<Part> {
        [Part::E2e]
            .into_iter()
            .chain(Part::BREAKDOWN)
            .find(|p| p.name() == name)
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a reader must not draw as valid (stored as the strings of SPEC.md §9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LatencyFlag {
    /// A user turn with no end of user speech: no e2e.
    MissingUserSpeechEnd,
    /// A user turn with no agent audio start: no e2e.
    MissingAgentAudio,
    /// `negative_X`: a part (or e2e) below zero.
    Negative(Part),
    /// `absurd_X`: a part (or e2e) over [`ABSURD_NS`].
    Absurd(Part),
    /// `parts_exceed_e2e`: the reported parts add up to more than e2e (rest < 0).
    PartsExceedE2e,
    /// A flag this reader does not know (from a newer writer), kept as written.
    Other(String),
}

impl LatencyFlag {
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            LatencyFlag::MissingUserSpeechEnd => "missing_user_speech_end".into(),
            LatencyFlag::MissingAgentAudio => "missing_agent_audio".into(),
            LatencyFlag::Negative(p) => format!("negative_{p}").into(),
            LatencyFlag::Absurd(p) => format!("absurd_{p}").into(),
            LatencyFlag::PartsExceedE2e => "parts_exceed_e2e".into(),
            LatencyFlag::Other(s) => s.as_str().into(),
        }
    }

    pub fn parse(s: &str) -> LatencyFlag {
        let part = |rest: &str| Part::from_name(rest);
        match s {
            "missing_user_speech_end" => LatencyFlag::MissingUserSpeechEnd,
            "missing_agent_audio" => LatencyFlag::MissingAgentAudio,
            "parts_exceed_e2e" => LatencyFlag::PartsExceedE2e,
            _ => match (s.strip_prefix("negative_"), s.strip_prefix("absurd_")) {
                (Some(p), _) if part(p).is_some() => {
                    LatencyFlag::Negative(part(p).unwrap_or(Part::E2e))
                }
                (_, Some(p)) if part(p).is_some() => {
                    LatencyFlag::Absurd(part(p).unwrap_or(Part::E2e))
                }
                _ => LatencyFlag::Other(s.to_string()),
            },
        }
    }

    /// The part this flag says is invalid, if it names one.
    pub fn part(&self) -> Option<Part> {
        match self {
            LatencyFlag::Negative(p) | LatencyFlag::Absurd(p) => Some(*p),
            LatencyFlag::PartsExceedE2e => Some(Part::Rest),
            _ => None,
        }
    }

    /// A sentence for a person: what is wrong with the value.
    pub fn explain(&self, latency: &Latency) -> String {
        let value = |p: Part| match latency.value(p) {
            Some(v) => format!("{:.0} ms", v as f64 / 1e6),
            None => "absent".to_string(),
        };
        match self {
            LatencyFlag::MissingUserSpeechEnd => {
                "no end of user speech recorded: e2e cannot be measured".into()
            }
            LatencyFlag::MissingAgentAudio => {
                "no agent audio start recorded: e2e cannot be measured".into()
            }
            LatencyFlag::Negative(p) => format!("{p} is negative ({}): not plausible", value(*p)),
            LatencyFlag::Absurd(p) => format!("{p} is over 60 s ({}): not plausible", value(*p)),
            LatencyFlag::PartsExceedE2e => format!(
                "the reported parts add up to more than e2e (rest {}): stages overlap or were timed on another clock",
                value(Part::Rest)
            ),
            LatencyFlag::Other(s) => format!("flagged {s}"),
        }
    }
}

impl fmt::Display for LatencyFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl Serialize for LatencyFlag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for LatencyFlag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        Ok(LatencyFlag::parse(&s))
    }
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
    pub flags: Vec<LatencyFlag>,
}

impl Latency {
    /// The value of one part (or e2e).
    pub fn value(&self, part: Part) -> Option<i64> {
        match part {
            Part::E2e => self.e2e_ns,
            Part::Eou => self.eou_ns,
            Part::Stt => self.stt_ns,
            Part::Llm => self.llm_ttft_ns,
            Part::Tool => self.tool_ns,
            Part::Tts => self.tts_ttfb_ns,
            Part::Rest => self.rest_ns,
        }
    }

    /// The breakdown's parts in display order with their values.
    pub fn parts(&self) -> [(Part, Option<i64>); 6] {
        Part::BREAKDOWN.map(|p| (p, self.value(p)))
    }

    /// Is this part flagged invalid (negative, absurd; rest below zero).
    pub fn is_flagged(&self, part: Part) -> bool {
        self.flags.iter().any(|f| f.part() == Some(part))
    }

    /// e2e if it is present and sane (not negative, not absurd).
    pub fn valid_e2e_ns(&self) -> Option<i64> {
        self.e2e_ns.filter(|_| !self.is_flagged(Part::E2e))
    }

    /// A part's value when it is present and not flagged.
    pub fn valid(&self, part: Part) -> Option<i64> {
        self.value(part).filter(|_| !self.is_flagged(part))
    }

    /// The gap heard in the audio disagrees with the recorded (valid) e2e.
    pub fn heard_mismatch(&self, heard_gap_ns: i64) -> bool {
        self.valid_e2e_ns()
            .is_some_and(|e| mismatched(heard_gap_ns, e))
    }

    /// The flags as written (SPEC.md §9 strings), joined by `sep`.
    pub fn flags_text(&self, sep: &str) -> String {
        self.flags
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// The agent's own e2e disagrees with the recorded one.
    pub fn reported_mismatch(&self) -> bool {
        matches!((self.reported_e2e_ns, self.valid_e2e_ns()), (Some(r), Some(e)) if mismatched(r, e))
    }
}

/// Is the turn slow: valid e2e above `slow_ns`.
pub fn is_slow(latency: &Latency, slow_ns: i64) -> bool {
    latency.valid_e2e_ns().is_some_and(|e| e > slow_ns)
}

/// What a turn's breakdown is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Who opened the turn.
    pub speaker: Speaker,
    /// The turn's stage timings.
    pub stages: &'a [StageTiming],
    /// (start, end) of the turn's tool calls.
    pub tool_calls: &'a [(u64, u64)],
    /// Latest `end_ns` of the user's final transcripts.
    pub user_transcript_end: Option<u64>,
    /// Earliest `start_ns` of the agent's final transcripts.
    pub agent_transcript_start: Option<u64>,
    pub reported_e2e_ns: Option<i64>,
    /// Speech found in the audio within the turn (empty without audio).
    pub user_speech: &'a [Segment],
    pub agent_speech: &'a [Segment],
}

fn diff(a: u64, b: u64) -> i64 {
    (i128::from(a) - i128::from(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn sum(values: impl IntoIterator<Item = i64>) -> i64 {
    values.into_iter().fold(0i64, |a, b| a.saturating_add(b))
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The breakdown of one turn (SPEC.md §9).
pub fn breakdown(ev: &Evidence<'_>) -> Latency {
    let stages = |stage: Stage| ev.stages.iter().filter(move |s| s.stage == stage);
    let span = |s: &StageTiming| diff(s.end_ns, s.start_ns);
    let mut l = Latency {
        reported_e2e_ns: ev.reported_e2e_ns,
        ..Latency::default()
    };

    // the ends of the wait, from what was reported first, else from the audio
    let playback_start = stages(Stage::Playback).map(|s| s.start_ns).min();
    let vad_end = |agent_start: Option<u64>| {
        stages(Stage::Vad)
            .map(|s| s.end_ns)
            .filter(|&e| agent_start.is_none_or(|a| e <= a))
            .max()
            .or_else(|| stages(Stage::Vad).map(|s| s.end_ns).max())
    };
    let eou = stages(Stage::Eou).min_by_key(|s| s.start_ns);
    let reported_user_end = vad_end(playback_start)
        .or(eou.map(|s| s.start_ns))
        .or(ev.user_transcript_end);
    let heard = if playback_start.is_none() || reported_user_end.is_none() {
        measure_gap(ev.user_speech, ev.agent_speech, reported_user_end)
    } else {
        MeasuredGap::default()
    };
    l.agent_audio_start_ns = playback_start
        .or(heard.agent_start_ns)
        .or(ev.agent_transcript_start);
    l.user_speech_end_ns = vad_end(l.agent_audio_start_ns)
        .or(eou.map(|s| s.start_ns))
        .or(ev.user_transcript_end)
        // heard before the agent's start, however that start was found (a greeting played
        // before the caller spoke has no caller speech before it, so no wait)
        .or_else(|| user_end_before(ev.user_speech, l.agent_audio_start_ns));

    // what happened before the agent answered is part of the wait; a tool or LLM step that
    // starts after the agent began speaking is not
    let before_answer = |start: u64| l.agent_audio_start_ns.is_none_or(|a| start < a);
    l.eou_ns = eou.map(span);
    let committed = eou.map(|s| s.end_ns).or(l.user_speech_end_ns);
    let stt_end = stages(Stage::Stt).map(|s| s.end_ns).max();
    l.stt_ns = match (stt_end, committed) {
        // only the part of transcription still running after the turn was committed
        (Some(e), Some(c)) => Some(diff(e, c).max(0)),
        (Some(_), None) => stages(Stage::Stt).map(span).max(),
        (None, _) => None,
    };
    let ttfts: Vec<i64> = stages(Stage::Llm)
        .filter(|s| before_answer(s.start_ns))
        .filter_map(|s| s.ttft_ns.map(signed))
        .collect();
    l.llm_ttft_ns = (!ttfts.is_empty()).then(|| sum(ttfts));
    // the first audio can only have waited for a tool that finished before it: a tool the
    // answer began speaking over (text first, tool alongside) is not part of the wait either
    let done_before_answer = |end: u64| l.agent_audio_start_ns.is_none_or(|a| end <= a);
    let tool_stages: Vec<i64> = stages(Stage::Tool)
        .filter(|s| done_before_answer(s.end_ns))
        .map(span)
        .collect();
    let tool_calls: Vec<i64> = ev
        .tool_calls
        .iter()
        .filter(|(_, end)| done_before_answer(*end))
        .map(|&(start, end)| diff(end, start).max(0))
        .collect();
    l.tool_ns = if !tool_stages.is_empty() {
        Some(sum(tool_stages))
    } else if !tool_calls.is_empty() {
        Some(sum(tool_calls))
    } else {
        None
    };
    l.tts_ttfb_ns = stages(Stage::Tts)
        .filter(|s| s.ttfb_ns.is_some())
        .min_by_key(|s| s.start_ns)
        .and_then(|s| s.ttfb_ns.map(signed));

    if let (Some(end), Some(start)) = (l.user_speech_end_ns, l.agent_audio_start_ns) {
        let e2e = diff(start, end);
        l.e2e_ns = Some(e2e);
        let explained = sum(
            [l.eou_ns, l.stt_ns, l.llm_ttft_ns, l.tool_ns, l.tts_ttfb_ns]
                .into_iter()
                .flatten(),
        );
        l.rest_ns = Some(e2e.saturating_sub(explained));
    }
    if ev.speaker == Speaker::User {
        if l.user_speech_end_ns.is_none() {
            l.flags.push(LatencyFlag::MissingUserSpeechEnd);
        }
        if l.agent_audio_start_ns.is_none() {
            l.flags.push(LatencyFlag::MissingAgentAudio);
        }
    }
    for part in [
        Part::E2e,
        Part::Eou,
        Part::Stt,
        Part::Llm,
        Part::Tool,
        Part::Tts,
    ] {
        match l.value(part) {
            Some(v) if v < 0 => l.flags.push(LatencyFlag::Negative(part)),
            Some(v) if v > ABSURD_NS => l.flags.push(LatencyFlag::Absurd(part)),
            _ => {}
        }
    }
    if l.rest_ns.is_some_and(|r| r < 0) {
        l.flags.push(LatencyFlag::PartsExceedE2e);
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn stage(stage: Stage, start: u64, end: u64) -> StageTiming {
        StageTiming::new(Some(1), stage, start * MS, end * MS)
    }

    fn evidence<'a>(
        stages: &'a [StageTiming],
        user: &'a [Segment],
        agent: &'a [Segment],
    ) -> Evidence<'a> {
        Evidence {
            speaker: Speaker::User,
            stages,
            tool_calls: &[],
            user_transcript_end: None,
            agent_transcript_start: None,
            reported_e2e_ns: None,
            user_speech: user,
            agent_speech: agent,
        }
    }

    #[test]
    fn flags_round_trip_as_the_spec_strings() {
        for s in [
            "missing_user_speech_end",
            "missing_agent_audio",
            "negative_e2e",
            "absurd_llm",
            "negative_tool",
            "parts_exceed_e2e",
            "from_a_newer_writer",
        ] {
            let f = LatencyFlag::parse(s);
            assert_eq!(f.as_str(), s);
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<LatencyFlag>(&json).unwrap(), f);
        }
        assert_eq!(
            LatencyFlag::parse("absurd_llm"),
            LatencyFlag::Absurd(Part::Llm)
        );
        assert!(matches!(
            LatencyFlag::parse("negative_x"),
            LatencyFlag::Other(_)
        ));
    }

    #[test]
    fn agent_audio_is_the_agent_start_without_a_playback_stage() {
        let mut llm = stage(Stage::Llm, 1_100, 1_700);
        llm.ttft_ns = Some(300 * MS);
        let stages = [llm];
        let user = [Segment {
            start_ns: 0,
            end_ns: 1_000 * MS,
        }];
        let agent = [Segment {
            start_ns: 1_800 * MS,
            end_ns: 2_500 * MS,
        }];
        let l = breakdown(&evidence(&stages, &user, &agent));
        assert_eq!(l.user_speech_end_ns, Some(1_000 * MS));
        assert_eq!(l.agent_audio_start_ns, Some(1_800 * MS));
        assert_eq!(l.e2e_ns, Some(800 * MS as i64));
        assert_eq!(l.rest_ns, Some(500 * MS as i64));
        assert!(l.flags.is_empty(), "{:?}", l.flags);
    }

    #[test]
    fn a_playback_stage_wins_over_the_audio() {
        let stages = [
            stage(Stage::Vad, 0, 1_000),
            stage(Stage::Playback, 1_600, 2_000),
        ];
        let agent = [Segment {
            start_ns: 1_800 * MS,
            end_ns: 2_500 * MS,
        }];
        let l = breakdown(&evidence(&stages, &[], &agent));
        assert_eq!(l.agent_audio_start_ns, Some(1_600 * MS));
        assert_eq!(l.e2e_ns, Some(600 * MS as i64));
    }

    #[test]
    fn a_greeting_before_the_caller_spoke_has_no_wait() {
        // the agent opens the call; the caller's first words start just inside the greeting
        // turn's window, after the greeting began
        let stages = [stage(Stage::Playback, 200, 2_000)];
        let user = [Segment {
            start_ns: 2_990 * MS,
            end_ns: 4_000 * MS,
        }];
        let agent = [Segment {
            start_ns: 200 * MS,
            end_ns: 2_000 * MS,
        }];
        let mut ev = evidence(&stages, &user, &agent);
        ev.speaker = Speaker::Agent;
        let l = breakdown(&ev);
        assert_eq!(l.agent_audio_start_ns, Some(200 * MS));
        assert_eq!(l.user_speech_end_ns, None);
        assert_eq!(l.e2e_ns, None);
        assert!(l.flags.is_empty(), "{:?}", l.flags);
    }

    #[test]
    fn a_tool_after_the_answer_began_is_not_part_of_the_wait() {
        let mut llm1 = stage(Stage::Llm, 1_000, 1_500);
        llm1.ttft_ns = Some(200 * MS);
        let mut llm2 = stage(Stage::Llm, 3_500, 4_000);
        llm2.ttft_ns = Some(300 * MS);
        let stages = [
            stage(Stage::Vad, 0, 1_000),
            llm1,
            stage(Stage::Playback, 1_500, 5_000),
            stage(Stage::Tool, 2_000, 3_500),
            llm2,
        ];
        let l = breakdown(&evidence(&stages, &[], &[]));
        assert_eq!(l.e2e_ns, Some(500 * MS as i64));
        assert_eq!(l.llm_ttft_ns, Some(200 * MS as i64));
        assert_eq!(l.tool_ns, None);
        assert_eq!(l.rest_ns, Some(300 * MS as i64));
        assert!(l.flags.is_empty(), "{:?}", l.flags);
    }

    #[test]
    fn a_tool_the_answer_spoke_over_is_not_part_of_the_wait() {
        // LiveKit: the reply's text is spoken while the tool it also asked for runs
        let mut llm = stage(Stage::Llm, 1_000, 1_300);
        llm.ttft_ns = Some(200 * MS);
        let stages = [
            stage(Stage::Vad, 0, 1_000),
            llm,
            stage(Stage::Tool, 1_250, 1_450),
            stage(Stage::Playback, 1_300, 3_000),
        ];
        let l = breakdown(&evidence(&stages, &[], &[]));
        assert_eq!(l.e2e_ns, Some(300 * MS as i64));
        assert_eq!(l.tool_ns, None);
        assert_eq!(l.rest_ns, Some(100 * MS as i64));
        assert!(l.flags.is_empty(), "{:?}", l.flags);
    }

    #[test]
    fn negative_and_missing_are_flagged() {
        let stages = [
            stage(Stage::Vad, 0, 2_000),
            stage(Stage::Playback, 1_500, 3_000),
        ];
        let l = breakdown(&evidence(&stages, &[], &[]));
        assert_eq!(
            l.user_speech_end_ns,
            Some(2_000 * MS),
            "no vad end before the answer: latest"
        );
        assert!(l.is_flagged(Part::E2e));
        assert_eq!(l.valid_e2e_ns(), None);
        let l = breakdown(&evidence(&[], &[], &[]));
        assert_eq!(
            l.flags,
            vec![
                LatencyFlag::MissingUserSpeechEnd,
                LatencyFlag::MissingAgentAudio
            ]
        );
        assert!(mismatched(0, MISMATCH_NS + 1));
        assert!(!mismatched(0, MISMATCH_NS));
    }
}
