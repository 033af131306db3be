//! The one mapping of Pipecat frames to calltape records, shared by the live observer
//! (through the `_calltape` extension), the Whisker importer and the Tail importer. It takes
//! [`FrameEvent`]s in time order and gives the call's control records.
//!
//! # Turns
//!
//! Turns are numbered as Pipecat's own `TurnTrackingObserver` numbers them, replayed on the
//! frames' times: turn 1 starts at the `StartFrame`; a `UserStartedSpeakingFrame` ends the
//! current turn and starts the next one when the bot is speaking (interrupted), or when the bot
//! has spoken in the turn, or when no turn is active; a `BotStoppedSpeakingFrame` ends the turn
//! 2.5 s later unless the bot or the user starts speaking before; `EndFrame`/`CancelFrame` end
//! the active turn (Pipecat calls that "interrupted"; it is kept as `pipecat_was_interrupted`).
//! A user turn's boundary is placed where the user's speech began (the VAD's speech start;
//! the `UserStartedSpeakingFrame` follows `start_secs` later). Every record names the turn it
//! happened in.
//!
//! # Frames → records
//!
//! | Pipecat frame (fields) | calltape record |
//! |---|---|
//! | `StartFrame` (`audio_in_sample_rate`, `audio_out_sample_rate`) | turn 1 starts; rates kept as header tags |
//! | `VADUserStartedSpeakingFrame` / `VADUserStoppedSpeakingFrame` (`timestamp` unix s, `start_secs`/`stop_secs`) | `vad` stage from `timestamp − start_secs` to `timestamp − stop_secs` (when the speech really began and ended) |
//! | `UserStartedSpeakingFrame` | turn boundary (above) |
//! | `UserStoppedSpeakingFrame` (the turn-end decision) | `eou` stage from the end of user speech to this frame |
//! | `InterimTranscriptionFrame` / `TranscriptionFrame` (`text`, `language`) | user `transcript`, interim / final; the final one ends an `stt` stage started at the end of user speech |
//! | `LLMFullResponseStartFrame` / `LLMFullResponseEndFrame` | `llm` stage bounds (recorded when the next step starts, so metrics reported just after the end still count) |
//! | `LLMTextFrame` (`text`) | the agent's generated text (concatenated) |
//! | `TTSStartedFrame` / `TTSStoppedFrame` | `tts` stage bounds |
//! | `TTSTextFrame` (`text`), as the output transport passes it on (while its audio plays) | the text spoken, in pieces; those played before a barge-in are `heard_text` |
//! | `BotStartedSpeakingFrame` / `BotStoppedSpeakingFrame` | `playback` stage |
//! | `FunctionCallInProgressFrame` (`function_name`, `tool_call_id`, `arguments`) then `FunctionCallResultFrame` (`result`, `error`) | `tool_call` (`is_error` when `error` is set); `FunctionCallCancelFrame` → cancelled (`is_error`, output `"cancelled"`) |
//! | `MetricsFrame` (`data`: TTFB, processing, LLM/TTS/STT usage, turn) | `ttft_ns` of the `llm` stage / `ttfb_ns` of the `tts` or `stt` stage; processing time as the stage's `processing_ns` attribute; token and character counts on the stage and as `usage` records |
//! | `UserBotLatencyBreakdown` (the `LatencyBreakdown` of Pipecat's `UserBotLatencyObserver`) | `pipecat_latency` event with its contributions; its `total_secs` is the turn's `reported_e2e_ns` |
//! | `ErrorFrame` (`error`, `fatal`) | `error` event |
//! | `EndFrame` / `CancelFrame` | `session_end` (`shutdown` / `cancelled`) |
//!
//! The agent's `transcript` of a turn holds the generated LLM text (or the spoken TTS text when
//! there was none), from its first to its last bot speech.
//!
//! **Interruptions.** Pipecat pushes an `InterruptionFrame` at every user turn start, whether
//! or not the bot was talking; that routine frame is not an interruption. A barge-in is the
//! user starting to speak while the bot is speaking: the bot's turn gets an `interruption`
//! event, its agent transcript `interrupted` with `heard_text`, and `interrupted: true` on its
//! `turn_end`.
//!
//! **Metrics.** The first `MetricsFrame` Pipecat pushes reports every service at zero: an empty
//! initial report, not a measurement; zero TTFB/processing values are never used. A metric
//! belongs to the stage of the processor that reported it: the processor that pushed the
//! `LLMFullResponseStartFrame` is the LLM, `TTSStartedFrame` the TTS, `TranscriptionFrame` the
//! STT (else its name says: `…LLMService`, `…TTSService`, `…STTService`). The live observer
//! names each metric's class (`metric`); Whisker's serializer drops it, so a bare number is read
//! as the step's TTFB when it is the first of that processor's step and as its processing time
//! after that (Pipecat stops the TTFB timer before the processing timer).

use std::collections::{BTreeMap, HashMap, HashSet};

use calltape_format::{
    Attributes, Event, Record, SessionEnd, Speaker, Stage, StageTiming, TimedRecord, ToolCall,
    Transcript, TurnEnd, TurnId, TurnStart, Usage,
};
use serde_json::{json, Map, Value};

use super::event::{FrameEvent, LATENCY_BREAKDOWN};
use crate::clock::seconds_to_ns;
use crate::Warnings;

/// Pipecat's `TurnTrackingObserver` default `turn_end_timeout_secs` (2.5 s).
pub const TURN_END_TIMEOUT_NS: i64 = 2_500_000_000;
/// Longest text kept for one turn's agent or heard text (bytes); more is cut and warned about.
const TEXT_LIMIT: usize = 64 * 1024;
/// Most tool calls waiting for their result at once; older ones are closed as unfinished.
const OPEN_CALLS_LIMIT: usize = 256;
/// Finished call ids remembered to skip the broadcast copies of their frames.
const FINISHED_CALLS_LIMIT: usize = 65_536;

/// What the mapping produced.
#[derive(Debug, Default)]
pub struct Mapped {
    pub records: Vec<TimedRecord>,
    pub warnings: Warnings,
    /// Header tags learned from the frames (sample rates).
    pub tags: Map<String, Value>,
    /// Turns numbered as Pipecat's turn tracking numbers them, with their interruption flag.
    pub turns: Vec<(TurnId, bool)>,
}

#[derive(Default)]
struct Turn {
    start: i64,
    /// Its `turn_start` is recorded.
    announced: bool,
    user_spoke_first: Option<bool>,
    llm_text: String,
    /// (time, text) of each `TTSTextFrame`.
    spoken: Vec<(i64, String)>,
    bot_first: Option<i64>,
    bot_last: Option<i64>,
    /// The barge-in time.
    cut: Option<i64>,
    reported_e2e_ns: Option<i64>,
}

/// A stage step still running.
#[derive(Default, Clone)]
struct Step {
    turn: TurnId,
    start: i64,
    /// Its end frame's time, once seen (the step is recorded when the next one starts).
    end: Option<i64>,
    processor: String,
    first_ns: Option<i64>,
    processing_ns: Option<i64>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    characters: Option<u64>,
    model: Option<String>,
}

struct OpenCall {
    name: String,
    arguments: Value,
    start: i64,
    turn: TurnId,
}

/// Replays Pipecat's frames into calltape records.
pub struct Mapping {
    t0_unix_ns: i64,
    out: Mapped,
    turns: BTreeMap<TurnId, Turn>,
    turn: TurnId,
    active: bool,
    bot_speaking: bool,
    has_bot_spoken: bool,
    turn_end_due: Option<i64>,
    /// The start of the user speech running now (session ns).
    vad_open: Option<i64>,
    /// The end of the latest user speech (session ns).
    speech_end: Option<i64>,
    eou_pending: bool,
    stt_pending: bool,
    llm: Option<Step>,
    tts: Option<Step>,
    stt: Option<Step>,
    playback: Option<(i64, TurnId)>,
    calls: BTreeMap<String, OpenCall>,
    finished_calls: HashSet<String>,
    roles: HashMap<String, Stage>,
    ended: bool,
    text_cut_warned: bool,
}

impl Mapping {
    /// `t0_unix_ns`: the unix time of session time 0, to place the unix times some frames
    /// carry (`VADUserStoppedSpeakingFrame.timestamp`, latency breakdown starts).
    pub fn new(t0_unix_ns: i64) -> Mapping {
        Mapping {
            t0_unix_ns,
            out: Mapped::default(),
            turns: BTreeMap::new(),
            turn: 0,
            active: false,
            bot_speaking: false,
            has_bot_spoken: false,
            turn_end_due: None,
            vad_open: None,
            speech_end: None,
            eou_pending: false,
            stt_pending: false,
            llm: None,
            tts: None,
            stt: None,
            playback: None,
            calls: BTreeMap::new(),
            finished_calls: HashSet::new(),
            roles: HashMap::new(),
            ended: false,
            text_cut_warned: false,
        }
    }

    /// The records completed so far, taken out (the live observer queues them as they come).
    pub fn take_records(&mut self) -> Vec<TimedRecord> {
        std::mem::take(&mut self.out.records)
    }

    /// The turn in progress (0 before the first).
    pub fn current_turn(&self) -> TurnId {
        self.turn
    }

    fn at(t: i64) -> u64 {
        t.max(0) as u64
    }

    fn unix_to_session(&self, unix_s: f64) -> i64 {
        seconds_to_ns(unix_s).saturating_sub(self.t0_unix_ns)
    }

    fn push(&mut self, t: i64, record: Record) {
        self.out.records.push(TimedRecord::new(Self::at(t), record));
    }

    fn turn_opt(&self) -> Option<TurnId> {
        (self.turn > 0).then_some(self.turn)
    }

    fn event(&mut self, t: i64, turn: Option<TurnId>, name: &str, attributes: Attributes) {
        self.push(
            t,
            Record::Event(Event {
                turn,
                name: name.into(),
                attributes,
            }),
        );
    }

    /// Feeds the next frame (frames must come in time order).
    pub fn feed(&mut self, ev: &FrameEvent) {
        if let Some(due) = self.turn_end_due {
            if due <= ev.t_ns {
                self.turn_end_due = None;
                if self.active && !self.bot_speaking {
                    self.end_turn(due, false, false);
                }
            }
        }
        let t = ev.t_ns;
        if self.turn == 0 && ev.frame != "StartFrame" && !self.ended {
            // the recording began after the pipeline had started (a Whisker sink can start
            // after the StartFrame went by): Pipecat's turn 1 was already running
            self.start_turn(t);
            self.out.warnings.push(
                "no_start_frame",
                Self::at(t),
                Some(1),
                format!(
                    "the first frame is a {}, not the pipeline's StartFrame: the recording began \
                     late, so turn 1 is taken to have started here",
                    ev.frame
                ),
                Value::Null,
            );
        }
        match ev.frame.as_str() {
            "StartFrame" => {
                for k in ["audio_in_sample_rate", "audio_out_sample_rate"] {
                    if let Some(v) = ev.fields.get(k) {
                        self.out.tags.insert(format!("pipecat_{k}"), v.clone());
                    }
                }
                if self.turn == 0 {
                    self.start_turn(t);
                }
            }
            "UserStartedSpeakingFrame" => self.user_started(t),
            "BotStartedSpeakingFrame" => {
                if !self.bot_speaking {
                    self.playback.get_or_insert((t, self.turn));
                    let tr = self.cur();
                    tr.bot_first.get_or_insert(t);
                    tr.user_spoke_first.get_or_insert(false);
                    self.announce();
                }
                self.bot_speaking = true;
                self.has_bot_spoken = true;
                self.turn_end_due = None;
            }
            "BotStoppedSpeakingFrame" => {
                if let Some((start, turn)) = self.playback.take() {
                    self.stage(turn, Stage::Playback, start, t, Attributes::new());
                    if let Some(tr) = self.turns.get_mut(&turn) {
                        tr.bot_last = Some(t);
                    }
                }
                if self.bot_speaking {
                    self.bot_speaking = false;
                    self.turn_end_due = Some(t + TURN_END_TIMEOUT_NS);
                }
            }
            "VADUserStartedSpeakingFrame" => {
                let began = match (ev.f64("timestamp"), ev.f64("start_secs")) {
                    (Some(ts), start) => self.unix_to_session(ts - start.unwrap_or(0.0)),
                    _ => t,
                };
                self.vad_open.get_or_insert(began.min(t));
            }
            "VADUserStoppedSpeakingFrame" => {
                let ended = match (ev.f64("timestamp"), ev.f64("stop_secs")) {
                    (Some(ts), stop) => self.unix_to_session(ts - stop.unwrap_or(0.0)),
                    _ => t,
                }
                .min(t);
                // Pipecat broadcasts the frame both ways: the second copy finds nothing open
                let Some(began) = self.vad_open.take() else {
                    return;
                };
                let began = began.min(ended);
                let mut a = Attributes::new();
                if let Some(s) = ev.f64("stop_secs") {
                    a.insert("stop_secs".into(), json!(s));
                }
                let turn = self.turn;
                self.stage(turn, Stage::Vad, began, ended, a);
                self.speech_end = Some(ended);
                self.eou_pending = true;
                self.stt_pending = true;
            }
            "UserStoppedSpeakingFrame" if self.eou_pending => {
                self.eou_pending = false;
                if let Some(end) = self.speech_end {
                    let turn = self.turn;
                    self.stage(turn, Stage::Eou, end, t, Attributes::new());
                }
            }
            "InterimTranscriptionFrame" | "TranscriptionFrame" => {
                self.roles.insert(ev.source.clone(), Stage::Stt);
                let is_final = ev.frame == "TranscriptionFrame";
                let text = ev.str("text").unwrap_or_default().to_string();
                let mut attributes = Attributes::new();
                if let Some(u) = ev.str("user_id").filter(|u| !u.is_empty()) {
                    attributes.insert("user_id".into(), json!(u));
                }
                let turn = self.turn_opt();
                let (start_ns, end_ns) = match (self.vad_open, self.speech_end) {
                    (Some(open), _) => (Some(Self::at(open)), None),
                    (None, Some(end)) => (None, Some(Self::at(end))),
                    _ => (None, None),
                };
                self.push(
                    t,
                    Record::Transcript(Transcript {
                        turn,
                        speaker: Speaker::User,
                        text,
                        is_final,
                        confidence: None,
                        language: ev.str("language").map(String::from),
                        interrupted: false,
                        heard_text: None,
                        start_ns,
                        end_ns: end_ns.filter(|_| is_final),
                        attributes,
                    }),
                );
                if is_final && self.stt_pending {
                    self.stt_pending = false;
                    let start = self.speech_end.unwrap_or(t).min(t);
                    let step = self.stt.take().unwrap_or_else(|| Step {
                        processor: ev.source.clone(),
                        ..Step::default()
                    });
                    let turn = self.turn;
                    self.close_step(
                        Stage::Stt,
                        Step {
                            turn,
                            start,
                            ..step
                        },
                        t,
                    );
                }
            }
            "LLMFullResponseStartFrame" => {
                self.roles.insert(ev.source.clone(), Stage::Llm);
                if let Some(open) = self.llm.take() {
                    let end = open.end.unwrap_or(t);
                    self.close_step(Stage::Llm, open, end);
                }
                self.llm = Some(Step {
                    turn: self.turn,
                    start: t,
                    processor: ev.source.clone(),
                    ..Step::default()
                });
            }
            "LLMFullResponseEndFrame" => {
                // recorded when the next step starts (or at the end): a metric Pipecat reports
                // just after the end frame still finds its step
                if let Some(open) = self.llm.as_mut() {
                    open.end.get_or_insert(t);
                }
            }
            "LLMTextFrame" => {
                let text = ev.str("text").unwrap_or_default().to_string();
                let turn = self.llm.as_ref().map_or(self.turn, |s| s.turn);
                self.append_llm_text(turn, &text);
            }
            "TTSStartedFrame" => {
                self.roles.insert(ev.source.clone(), Stage::Tts);
                if let Some(open) = self.tts.take() {
                    let end = open.end.unwrap_or(t);
                    self.close_step(Stage::Tts, open, end);
                }
                self.tts = Some(Step {
                    turn: self.turn,
                    start: t,
                    processor: ev.source.clone(),
                    ..Step::default()
                });
            }
            "TTSStoppedFrame" => {
                // recorded when the next step starts (or at the end): a metric Pipecat reports
                // just after the end frame still finds its step
                if let Some(open) = self.tts.as_mut() {
                    open.end.get_or_insert(t);
                }
            }
            "TTSTextFrame" => {
                let text = ev.str("text").unwrap_or_default().trim().to_string();
                if !text.is_empty() && self.turn > 0 {
                    let spoken: usize = self.cur().spoken.iter().map(|s| s.1.len()).sum();
                    if spoken + text.len() <= TEXT_LIMIT {
                        self.cur().spoken.push((t, text));
                    } else {
                        self.warn_text_cut(t);
                    }
                }
            }
            "FunctionCallInProgressFrame" => self.call_started(ev),
            "FunctionCallResultFrame" => self.call_finished(ev, false),
            "FunctionCallCancelFrame" => self.call_finished(ev, true),
            "MetricsFrame" => self.metrics(ev),
            LATENCY_BREAKDOWN => self.latency_breakdown(ev),
            "ErrorFrame" => {
                let mut a = Attributes::new();
                a.insert("message".into(), json!(ev.str("error").unwrap_or_default()));
                a.insert("source".into(), json!("pipecat"));
                a.insert("fatal".into(), json!(ev.bool("fatal").unwrap_or(false)));
                if !ev.source.is_empty() {
                    a.insert("processor".into(), json!(ev.source));
                }
                let turn = self.turn_opt();
                self.event(t, turn, "error", a);
            }
            "EndFrame" | "CancelFrame" => {
                self.turn_end_due = None;
                if self.active {
                    self.end_turn(t, true, false);
                }
                if !self.ended {
                    self.ended = true;
                    let reason = if ev.frame == "EndFrame" {
                        "shutdown"
                    } else {
                        "cancelled"
                    };
                    self.push(
                        t,
                        Record::SessionEnd(SessionEnd {
                            reason: reason.into(),
                            outcome: None,
                        }),
                    );
                }
            }
            _ => {}
        }
    }

    fn cur(&mut self) -> &mut Turn {
        let id = self.turn;
        self.turns.entry(id).or_default()
    }

    fn warn_text_cut(&mut self, t: i64) {
        if !self.text_cut_warned {
            self.text_cut_warned = true;
            self.out.warnings.push(
                "text_too_long",
                Self::at(t),
                self.turn_opt(),
                format!("a turn's agent text passed {TEXT_LIMIT} bytes; the rest was left out"),
                Value::Null,
            );
        }
    }

    fn append_llm_text(&mut self, turn: TurnId, text: &str) {
        let Some(tr) = self.turns.get_mut(&turn) else {
            return;
        };
        if tr.llm_text.len() + text.len() <= TEXT_LIMIT {
            tr.llm_text.push_str(text);
        } else {
            let t = tr.start;
            self.warn_text_cut(t);
        }
    }

    /// Records the current turn's start once who opened it is known (so a live recording has
    /// it before the turn ends).
    fn announce(&mut self) {
        let id = self.turn;
        let Some(tr) = self.turns.get_mut(&id) else {
            return;
        };
        if tr.announced || tr.user_spoke_first.is_none() {
            return;
        }
        tr.announced = true;
        let tr = self.turns.remove(&id).expect("present");
        self.push_turn_start(id, &tr);
        self.turns.insert(id, tr);
    }

    fn push_turn_start(&mut self, id: TurnId, tr: &Turn) {
        let speaker = if tr.user_spoke_first == Some(true) {
            Speaker::User
        } else {
            Speaker::Agent
        };
        self.push(
            tr.start,
            Record::TurnStart(TurnStart {
                turn: id,
                speaker,
                attributes: Attributes::new(),
            }),
        );
    }

    fn start_turn(&mut self, t: i64) {
        self.turn += 1;
        self.active = true;
        self.has_bot_spoken = false;
        self.turns.insert(
            self.turn,
            Turn {
                start: t,
                ..Turn::default()
            },
        );
    }

    /// A user turn starts (as Pipecat's turn tracking decides) where the user's speech began:
    /// the VAD's speech start, which lies `start_secs` before the frame.
    fn user_started(&mut self, t: i64) {
        let current_start = self.turns.get(&self.turn).map_or(i64::MIN, |tr| tr.start);
        let onset = self.vad_open.unwrap_or(t).min(t).max(current_start);
        if self.bot_speaking {
            self.turn_end_due = None;
            self.end_turn_at(onset, t, true, true);
            self.bot_speaking = false;
            self.start_turn(onset);
        } else if self.active && self.has_bot_spoken {
            self.turn_end_due = None;
            self.end_turn(onset, false, false);
            self.start_turn(onset);
        } else if !self.active {
            self.start_turn(onset);
        }
        self.cur().user_spoke_first.get_or_insert(true);
        self.announce();
    }

    /// Ends the active turn: `pipecat_interrupted` is Pipecat's flag, `barge_in` whether the
    /// user really cut the bot off.
    fn end_turn(&mut self, t: i64, pipecat_interrupted: bool, barge_in: bool) {
        self.end_turn_at(t, t, pipecat_interrupted, barge_in);
    }

    /// Ends the active turn at `t`; a barge-in cut the bot off at `cut`.
    fn end_turn_at(&mut self, t: i64, cut: i64, pipecat_interrupted: bool, barge_in: bool) {
        if !self.active {
            return;
        }
        self.active = false;
        let id = self.turn;
        let Some(mut tr) = self.turns.remove(&id) else {
            return;
        };
        if barge_in {
            tr.cut = Some(cut);
        }
        if !tr.announced {
            self.push_turn_start(id, &tr);
        }
        let spoken_all = join_words(tr.spoken.iter().map(|s| s.1.as_str()));
        let text = if tr.llm_text.trim().is_empty() {
            spoken_all.clone()
        } else {
            tr.llm_text.trim().to_string()
        };
        if !text.is_empty() {
            let heard = tr.cut.map(|cut| {
                join_words(
                    tr.spoken
                        .iter()
                        .filter(|s| s.0 <= cut)
                        .map(|s| s.1.as_str()),
                )
            });
            let first = tr.bot_first.unwrap_or(t);
            let end = tr.cut.or(tr.bot_last).unwrap_or(t).max(first);
            self.push(
                first,
                Record::Transcript(Transcript {
                    turn: Some(id),
                    speaker: Speaker::Agent,
                    text: text.clone(),
                    is_final: true,
                    confidence: None,
                    language: None,
                    interrupted: tr.cut.is_some(),
                    heard_text: heard.clone(),
                    start_ns: Some(Self::at(first)),
                    end_ns: Some(Self::at(end)),
                    attributes: Attributes::new(),
                }),
            );
            if let (Some(cut), Some(heard)) = (tr.cut, heard) {
                let mut a = Attributes::new();
                a.insert("heard_text".into(), json!(heard));
                a.insert("generated_text".into(), json!(text));
                a.insert("cause".into(), json!("user_started_speaking"));
                self.event(cut, Some(id), "interruption", a);
            }
        } else if let Some(cut) = tr.cut {
            let mut a = Attributes::new();
            a.insert("cause".into(), json!("user_started_speaking"));
            self.event(cut, Some(id), "interruption", a);
        }
        let mut attributes = Attributes::new();
        attributes.insert("interrupted".into(), json!(barge_in));
        attributes.insert("pipecat_was_interrupted".into(), json!(pipecat_interrupted));
        if let Some(e2e) = tr.reported_e2e_ns {
            attributes.insert("reported_e2e_ns".into(), json!(e2e));
        }
        self.push(
            t,
            Record::TurnEnd(TurnEnd {
                turn: id,
                speaker: None,
                attributes,
            }),
        );
        self.out.turns.push((id, barge_in));
    }

    fn stage(&mut self, turn: TurnId, stage: Stage, start: i64, end: i64, a: Attributes) {
        self.push(
            end,
            Record::StageTiming(StageTiming {
                turn: (turn > 0).then_some(turn),
                stage,
                start_ns: Self::at(start),
                end_ns: Self::at(end.max(start)),
                ttft_ns: None,
                ttfb_ns: None,
                prompt_tokens: None,
                completion_tokens: None,
                characters: None,
                model: None,
                provider: None,
                cancelled: false,
                attributes: a,
            }),
        );
    }

    fn close_step(&mut self, stage: Stage, s: Step, end: i64) {
        let mut attributes = Attributes::new();
        if !s.processor.is_empty() {
            attributes.insert("processor".into(), json!(s.processor));
        }
        if let Some(p) = s.processing_ns {
            attributes.insert("processing_ns".into(), json!(p));
        }
        let first = s.first_ns.map(|f| f.max(0) as u64);
        self.push(
            end,
            Record::StageTiming(StageTiming {
                turn: (s.turn > 0).then_some(s.turn),
                ttft_ns: first.filter(|_| stage == Stage::Llm),
                ttfb_ns: first.filter(|_| stage != Stage::Llm),
                stage,
                start_ns: Self::at(s.start),
                end_ns: Self::at(end.max(s.start)),
                prompt_tokens: s.prompt_tokens,
                completion_tokens: s.completion_tokens,
                characters: s.characters,
                model: s.model,
                provider: None,
                cancelled: false,
                attributes,
            }),
        );
    }

    fn call_started(&mut self, ev: &FrameEvent) {
        let id = ev.str("tool_call_id").unwrap_or_default().to_string();
        if self.calls.contains_key(&id) || self.finished_calls.contains(&id) {
            return;
        }
        if self.calls.len() >= OPEN_CALLS_LIMIT {
            if let Some((old, call)) = self.calls.pop_first() {
                self.out.warnings.push(
                    "tool_call_unfinished",
                    Self::at(call.start),
                    Some(call.turn),
                    format!(
                        "more than {OPEN_CALLS_LIMIT} function calls without a result; \
                         {} ({old}) was left out",
                        call.name
                    ),
                    Value::Null,
                );
            }
        }
        self.calls.insert(
            id,
            OpenCall {
                name: ev.str("function_name").unwrap_or("unknown").to_string(),
                arguments: ev.fields.get("arguments").cloned().unwrap_or(Value::Null),
                start: ev.t_ns,
                turn: self.turn,
            },
        );
    }

    fn call_finished(&mut self, ev: &FrameEvent, cancelled: bool) {
        let id = ev.str("tool_call_id").unwrap_or_default().to_string();
        let t = ev.t_ns;
        // Pipecat broadcasts call frames both ways: the second copy of a result is no new call
        if !id.is_empty() && self.finished_calls.contains(&id) {
            return;
        }
        if !id.is_empty() && self.finished_calls.len() < FINISHED_CALLS_LIMIT {
            self.finished_calls.insert(id.clone());
        }
        let call = match self.calls.remove(&id) {
            Some(c) => c,
            None => {
                self.out.warnings.push(
                    "orphan_tool_result",
                    Self::at(t),
                    self.turn_opt(),
                    format!(
                        "{} for call {id:?} came without a FunctionCallInProgressFrame; its \
                         start is taken as its end",
                        ev.frame
                    ),
                    Value::Null,
                );
                OpenCall {
                    name: ev.str("function_name").unwrap_or("unknown").to_string(),
                    arguments: ev.fields.get("arguments").cloned().unwrap_or(Value::Null),
                    start: t,
                    turn: self.turn,
                }
            }
        };
        let error = ev.fields.get("error").filter(|e| !e.is_null()).cloned();
        let is_error = cancelled || error.is_some();
        let output = if cancelled {
            json!("cancelled")
        } else {
            error.unwrap_or_else(|| ev.fields.get("result").cloned().unwrap_or(Value::Null))
        };
        let mut attributes = Attributes::new();
        if cancelled {
            attributes.insert("cancelled".into(), json!(true));
        }
        self.push(
            t,
            Record::ToolCall(ToolCall {
                turn: (call.turn > 0).then_some(call.turn),
                call_id: (!id.is_empty()).then_some(id),
                name: call.name,
                arguments: call.arguments,
                output,
                is_error,
                start_ns: Self::at(call.start),
                end_ns: Self::at(t.max(call.start)),
                attributes,
            }),
        );
    }

    /// The stage a processor serves: learned from the frames it pushed, else read from its name.
    fn role(&self, processor: &str) -> Option<Stage> {
        if let Some(s) = self.roles.get(processor) {
            return Some(s.clone());
        }
        let base = processor.split('#').next().unwrap_or(processor);
        if base.contains("LLM") {
            Some(Stage::Llm)
        } else if base.contains("TTS") {
            Some(Stage::Tts)
        } else if base.contains("STT") {
            Some(Stage::Stt)
        } else {
            None
        }
    }

    fn step_of(&mut self, stage: &Stage) -> Option<&mut Step> {
        match stage {
            Stage::Llm => self.llm.as_mut(),
            Stage::Tts => self.tts.as_mut(),
            Stage::Stt => {
                if self.stt.is_none() {
                    self.stt = Some(Step {
                        turn: self.turn,
                        ..Step::default()
                    });
                }
                self.stt.as_mut()
            }
            _ => None,
        }
    }

    fn metrics(&mut self, ev: &FrameEvent) {
        let Some(Value::Array(list)) = ev.fields.get("data") else {
            return;
        };
        for m in list.iter().filter_map(Value::as_object) {
            let processor = m
                .get("processor")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let model = m
                .get("model")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(String::from);
            let value = m.get("value");
            let class = m.get("metric").and_then(Value::as_str);
            let kind = match (class, value) {
                (Some(c), _) => c.to_string(),
                (None, Some(Value::Object(v))) if v.contains_key("prompt_tokens") => {
                    "LLMUsageMetricsData".into()
                }
                (None, Some(Value::Object(v))) if v.contains_key("audio_seconds") => {
                    "STTUsageMetricsData".into()
                }
                (None, Some(v)) if v.is_u64() || v.is_i64() => "TTSUsageMetricsData".into(),
                (None, Some(v)) if v.is_f64() => "time".into(),
                (None, _) if m.contains_key("is_complete") => "TurnMetricsData".into(),
                _ => continue,
            };
            let Some(stage) = self.role(&processor) else {
                continue;
            };
            let turn = self.turn;
            match kind.as_str() {
                "TTFBMetricsData" | "ProcessingMetricsData" | "time" => {
                    let secs = value.and_then(Value::as_f64).unwrap_or(0.0);
                    // zeros are Pipecat's initial empty report; negatives and NaN are no timing
                    if !(secs > 0.0 && secs <= 60.0) {
                        continue;
                    }
                    let ns = seconds_to_ns(secs);
                    let Some(step) = self.step_of(&stage) else {
                        continue;
                    };
                    let is_ttfb = match kind.as_str() {
                        "TTFBMetricsData" => true,
                        "ProcessingMetricsData" => false,
                        _ => step.first_ns.is_none(),
                    };
                    if is_ttfb {
                        step.first_ns.get_or_insert(ns);
                    } else {
                        step.processing_ns = Some(ns);
                    }
                    step.model = step.model.take().or(model);
                    if step.processor.is_empty() {
                        step.processor = processor;
                    }
                }
                "LLMUsageMetricsData" => {
                    let v = value.and_then(Value::as_object);
                    let n = |k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_u64);
                    let (pt, ct) = (n("prompt_tokens"), n("completion_tokens"));
                    if pt.unwrap_or(0) == 0 && ct.unwrap_or(0) == 0 {
                        continue;
                    }
                    if let Some(step) = self.llm.as_mut() {
                        step.prompt_tokens = pt;
                        step.completion_tokens = ct;
                        step.model = step.model.take().or(model.clone());
                    }
                    self.push(
                        ev.t_ns,
                        Record::Usage(Usage {
                            turn: (turn > 0).then_some(turn),
                            prompt_tokens: pt.unwrap_or(0),
                            completion_tokens: ct.unwrap_or(0),
                            cached_tokens: n("cache_read_input_tokens").unwrap_or(0),
                            model,
                            provider: Some(processor),
                            ..Usage::default()
                        }),
                    );
                }
                "TTSUsageMetricsData" => {
                    let chars = value.and_then(Value::as_u64).unwrap_or(0);
                    if chars == 0 {
                        continue;
                    }
                    if let Some(step) = self.tts.as_mut() {
                        step.characters = Some(step.characters.unwrap_or(0) + chars);
                    }
                    self.push(
                        ev.t_ns,
                        Record::Usage(Usage {
                            turn: (turn > 0).then_some(turn),
                            tts_characters: chars,
                            model,
                            provider: Some(processor),
                            ..Usage::default()
                        }),
                    );
                }
                "STTUsageMetricsData" => {
                    let secs = value
                        .and_then(|v| v.get("audio_seconds"))
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0);
                    if !(secs > 0.0 && secs.is_finite()) {
                        continue;
                    }
                    self.push(
                        ev.t_ns,
                        Record::Usage(Usage {
                            turn: (turn > 0).then_some(turn),
                            stt_audio_seconds: secs,
                            model,
                            provider: Some(processor),
                            ..Usage::default()
                        }),
                    );
                }
                _ => {}
            }
        }
    }

    fn latency_breakdown(&mut self, ev: &FrameEvent) {
        let total = ev.f64("total_secs").unwrap_or(0.0);
        if !(total > 0.0 && total <= 60.0) {
            return;
        }
        let contributions: Vec<Value> = ev
            .fields
            .get("contributions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .take(64)
            .map(|c| {
                let start = c.get("start_time").and_then(Value::as_f64);
                let dur = c.get("duration_secs").and_then(Value::as_f64);
                json!({
                    "key": c.get("key").cloned().unwrap_or(Value::Null),
                    "owner": c.get("owner").cloned().unwrap_or(Value::Null),
                    "owner_kind": c.get("owner_kind").cloned().unwrap_or(Value::Null),
                    "start_ns": start.map(|s| self.unix_to_session(s)),
                    "duration_ns": dur.map(seconds_to_ns),
                })
            })
            .collect();
        let mut a = Attributes::new();
        a.insert("total_ns".into(), json!(seconds_to_ns(total)));
        if let Some(m) = ev.fields.get("measured_from") {
            a.insert("measured_from".into(), m.clone());
        }
        a.insert("contributions".into(), Value::Array(contributions));
        let turn = self.turn_opt();
        self.event(ev.t_ns, turn, "pipecat_latency", a);
        if ev.str("measured_from") != Some("client_connected") && self.turn > 0 {
            self.cur().reported_e2e_ns = Some(seconds_to_ns(total));
        }
    }

    /// Ends what is still open (a call cut off mid-turn) and returns the records.
    pub fn finish(mut self, end_ns: i64) -> Mapped {
        if let Some(due) = self.turn_end_due.take() {
            if due <= end_ns && self.active && !self.bot_speaking {
                self.end_turn(due, false, false);
            }
        }
        if let Some((start, turn)) = self.playback.take() {
            self.stage(turn, Stage::Playback, start, end_ns, Attributes::new());
        }
        for (stage, step) in [(Stage::Llm, self.llm.take()), (Stage::Tts, self.tts.take())] {
            if let Some(s) = step {
                let end = s.end.unwrap_or(end_ns);
                self.close_step(stage, s, end);
            }
        }
        if self.active {
            self.end_turn(end_ns, true, false);
        }
        for (id, call) in std::mem::take(&mut self.calls) {
            self.out.warnings.push(
                "tool_call_unfinished",
                Self::at(call.start),
                Some(call.turn),
                format!("function call {} ({id}) never got a result", call.name),
                Value::Null,
            );
        }
        self.out
    }
}

/// Joins spoken pieces with single spaces.
fn join_words<'a>(pieces: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for p in pieces {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn feed(frames: &[(i64, &str)]) -> Mapped {
        let mut m = Mapping::new(0);
        for (t, f) in frames {
            m.feed(&FrameEvent::new(*t, f, "", Map::new()));
        }
        let end = frames.last().map_or(0, |f| f.0);
        m.finish(end)
    }

    fn ends(m: &Mapped) -> Vec<(TurnId, u64, bool)> {
        m.records
            .iter()
            .filter_map(|r| match &r.record {
                Record::TurnEnd(e) => Some((
                    e.turn,
                    r.time_ns,
                    e.attributes["interrupted"].as_bool().unwrap(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_turn_ends_two_and_a_half_seconds_after_the_bot_stops() {
        let m = feed(&[
            (0, "StartFrame"),
            (S, "BotStartedSpeakingFrame"),
            (2 * S, "BotStoppedSpeakingFrame"),
            // the bot speaks again within 2.5 s: still turn 1
            (3 * S, "BotStartedSpeakingFrame"),
            (4 * S, "BotStoppedSpeakingFrame"),
            (9 * S, "UserStartedSpeakingFrame"),
            (12 * S, "EndFrame"),
        ]);
        let e = ends(&m);
        assert_eq!(e[0], (1, (4 * S + TURN_END_TIMEOUT_NS) as u64, false));
        assert_eq!(e[1].0, 2);
        assert_eq!(m.turns, vec![(1, false), (2, false)]);
    }

    #[test]
    fn only_speech_over_the_bot_is_a_barge_in() {
        let m = feed(&[
            (0, "StartFrame"),
            (S, "BotStartedSpeakingFrame"),
            (2 * S, "BotStoppedSpeakingFrame"),
            // the user answers after the bot: Pipecat's routine interruption, no barge-in
            (3 * S, "UserStartedSpeakingFrame"),
            (3 * S, "InterruptionFrame"),
            (5 * S, "BotStartedSpeakingFrame"),
            // the user talks over the bot
            (6 * S, "UserStartedSpeakingFrame"),
            (6 * S, "InterruptionFrame"),
            (6 * S + 1, "BotStoppedSpeakingFrame"),
            (8 * S, "EndFrame"),
        ]);
        assert_eq!(m.turns, vec![(1, false), (2, true), (3, false)]);
        let cuts = m
            .records
            .iter()
            .filter(|r| matches!(&r.record, Record::Event(e) if e.name == "interruption"))
            .count();
        assert_eq!(cuts, 1);
    }

    #[test]
    fn a_recording_that_missed_the_start_frame_still_counts_from_turn_one() {
        let m = feed(&[
            (S, "BotStartedSpeakingFrame"),
            (2 * S, "BotStoppedSpeakingFrame"),
            (3 * S, "UserStartedSpeakingFrame"),
            (5 * S, "EndFrame"),
        ]);
        assert_eq!(m.turns, vec![(1, false), (2, false)]);
        assert_eq!(m.warnings.len(), 1);
    }

    #[test]
    fn zero_metrics_are_no_measurement() {
        let mut m = Mapping::new(0);
        let metric = |v: f64| {
            let mut f = Map::new();
            f.insert(
                "data".into(),
                json!([{"processor": "OpenAILLMService#0", "value": v, "metric": "TTFBMetricsData"}]),
            );
            f
        };
        m.feed(&FrameEvent::new(0, "StartFrame", "", Map::new()));
        m.feed(&FrameEvent::new(1, "MetricsFrame", "", metric(0.0)));
        m.feed(&FrameEvent::new(
            S,
            "LLMFullResponseStartFrame",
            "OpenAILLMService#0",
            Map::new(),
        ));
        m.feed(&FrameEvent::new(S + 1, "MetricsFrame", "", metric(0.0)));
        m.feed(&FrameEvent::new(2 * S, "MetricsFrame", "", metric(0.4)));
        m.feed(&FrameEvent::new(
            3 * S,
            "LLMFullResponseEndFrame",
            "OpenAILLMService#0",
            Map::new(),
        ));
        let out = m.finish(4 * S);
        let ttft: Vec<Option<u64>> = out
            .records
            .iter()
            .filter_map(|r| match &r.record {
                Record::StageTiming(st) if st.stage == Stage::Llm => Some(st.ttft_ns),
                _ => None,
            })
            .collect();
        assert_eq!(ttft, vec![Some(400_000_000)]);
    }
}
