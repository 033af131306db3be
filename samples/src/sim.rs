//! A simulated call on the session clock: who speaks when, what every pipeline stage took,
//! and the audio both sides heard. It produces the records a live agent would have recorded,
//! each with its explicit timestamp, so a call is generated deterministically and instantly.

use calltape_format::{
    AudioFrame, Event, LogLine, Record, SessionEnd, Speaker, Stage, StageTiming, StateSnapshot,
    TimedRecord, ToolCall, Transcript, TurnEnd, TurnStart, Usage,
};
use serde_json::{json, Value};

use crate::clips::{Clips, RATE};

pub const MS: u64 = 1_000_000;
/// Audio frame size: 20 ms at 16 kHz, as WebRTC and most agent frameworks deliver it.
pub const FRAME: usize = 320;
pub const USER_TRACK: u16 = 1;
pub const AGENT_TRACK: u16 = 2;

/// A small deterministic PRNG (xorshift64*), so samples are identical on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi` milliseconds, as ns.
    pub fn ms(&mut self, lo: u64, hi: u64) -> u64 {
        (lo + self.next_u64() % (hi - lo + 1)) * MS
    }
}

/// How the agent answers one user turn.
#[derive(Clone)]
pub struct Reply {
    pub clip: String,
    pub text: String,
    pub llm_ttft_ms: Option<u64>,
    pub tts_ttfb_ms: Option<u64>,
    pub tools: Vec<ToolStep>,
    /// The user barges in this long after the agent starts speaking.
    pub barge_in_after_ms: Option<u64>,
    pub state: Option<Value>,
    pub log: Option<(&'static str, String)>,
}

impl Reply {
    pub fn new(clip: &str, text: &str) -> Reply {
        Reply {
            clip: clip.into(),
            text: text.into(),
            llm_ttft_ms: None,
            tts_ttfb_ms: None,
            tools: Vec::new(),
            barge_in_after_ms: None,
            state: None,
            log: None,
        }
    }
}

#[derive(Clone)]
pub struct ToolStep {
    pub name: String,
    pub arguments: Value,
    pub output: Value,
    pub is_error: bool,
    pub duration_ms: u64,
}

pub struct Sim<'c> {
    clips: &'c mut Clips,
    pub rng: Rng,
    pub records: Vec<TimedRecord>,
    /// Session time now.
    pub now: u64,
    turn: u32,
    user_audio: Vec<(u64, Vec<i16>)>,
    agent_audio: Vec<(u64, Vec<i16>)>,
    model: String,
}

impl<'c> Sim<'c> {
    pub fn new(clips: &'c mut Clips, seed: u64, model: &str) -> Sim<'c> {
        Sim {
            clips,
            rng: Rng::new(seed),
            records: Vec::new(),
            now: 400 * MS,
            turn: 0,
            user_audio: Vec::new(),
            agent_audio: Vec::new(),
            model: model.into(),
        }
    }

    fn push(&mut self, t: u64, r: Record) {
        self.records.push(TimedRecord::new(t, r));
    }

    fn clip(&mut self, name: &str) -> Vec<i16> {
        self.clips
            .get(name)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_vec()
    }

    fn stage(&mut self, stage: Stage, start: u64, end: u64, f: impl FnOnce(&mut StageTiming)) {
        let mut s = StageTiming::new(Some(self.turn), stage, start, end);
        f(&mut s);
        self.push(end, Record::StageTiming(s));
    }

    fn transcript(
        &mut self,
        t: u64,
        speaker: Speaker,
        text: &str,
        f: impl FnOnce(&mut Transcript),
    ) {
        let mut tr = Transcript {
            turn: Some(self.turn),
            speaker,
            text: text.into(),
            is_final: true,
            confidence: None,
            language: Some("en".into()),
            interrupted: false,
            heard_text: None,
            start_ns: None,
            end_ns: None,
            attributes: Default::default(),
        };
        f(&mut tr);
        self.push(t, Record::Transcript(tr));
    }

    fn event(&mut self, t: u64, name: &str, attrs: Value) {
        let attributes = attrs.as_object().cloned().unwrap_or_default();
        self.push(
            t,
            Record::Event(Event {
                turn: Some(self.turn),
                name: name.into(),
                attributes,
            }),
        );
    }

    /// The agent opens the call (a greeting): a turn of its own.
    pub fn greet(&mut self, clip: &str, text: &str) {
        self.turn += 1;
        let t0 = self.now;
        self.push(
            t0,
            Record::TurnStart(TurnStart {
                turn: self.turn,
                speaker: Speaker::Agent,
                attributes: Default::default(),
            }),
        );
        let ttfb = self.rng.ms(140, 220);
        let model = self.model.clone();
        self.stage(Stage::Tts, t0, t0 + ttfb + 400 * MS, |s| {
            s.ttfb_ns = Some(ttfb);
            s.characters = Some(text.len() as u64);
            s.provider = Some("cartesia".into());
            let _ = &model;
        });
        let start = t0 + ttfb + self.rng.ms(30, 60);
        let audio = self.clip(clip);
        let end = start + audio.len() as u64 * 1_000_000_000 / u64::from(RATE);
        self.agent_audio.push((start, audio));
        self.event(
            start,
            "agent_state_changed",
            json!({"old_state": "initializing", "new_state": "speaking"}),
        );
        self.stage(Stage::Playback, start, end, |_| {});
        self.transcript(start, Speaker::Agent, text, |t| {
            t.start_ns = Some(start);
            t.end_ns = Some(end);
        });
        self.push(
            end,
            Record::TurnEnd(TurnEnd {
                turn: self.turn,
                speaker: Some(Speaker::Agent),
                attributes: Default::default(),
            }),
        );
        self.event(
            end,
            "agent_state_changed",
            json!({"old_state": "speaking", "new_state": "listening"}),
        );
        self.now = end;
    }

    /// The user speaks after a human pause; returns when their speech ended.
    /// `heard` is what STT made of it when that differs from what was said.
    pub fn user_says(&mut self, clip: &str, said: &str, heard: Option<(&str, f64)>) -> u64 {
        let pause = self.rng.ms(550, 1_150);
        self.user_turn_at(self.now + pause, clip, said, heard)
    }

    /// The user starts speaking at `start` (also mid-agent-speech, for barge-in).
    pub fn user_turn_at(
        &mut self,
        start: u64,
        clip: &str,
        said: &str,
        heard: Option<(&str, f64)>,
    ) -> u64 {
        self.turn += 1;
        let audio = self.clip(clip);
        // espeak pads ~170 ms of silence on each side of a clip: speech is inside that
        let pad = 170 * MS;
        let clip_len = audio.len() as u64 * 1_000_000_000 / u64::from(RATE);
        let speech_start = start + pad;
        let speech_end = start + clip_len - pad;
        self.user_audio.push((start, audio));
        self.push(
            speech_start,
            Record::TurnStart(TurnStart {
                turn: self.turn,
                speaker: Speaker::User,
                attributes: Default::default(),
            }),
        );
        self.event(
            speech_start,
            "user_state_changed",
            json!({"old_state": "listening", "new_state": "speaking"}),
        );
        let (text, confidence) =
            heard.unwrap_or((said, 0.9 + (self.rng.next_u64() % 8) as f64 / 100.0));
        // interim hypotheses every ~400 ms while speaking
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut t = speech_start + 400 * MS;
        while t + 200 * MS < speech_end {
            let frac = (t - speech_start) as f64 / (speech_end - speech_start) as f64;
            let n = ((words.len() as f64 * frac).ceil() as usize).clamp(1, words.len());
            let partial = words[..n].join(" ");
            self.transcript(t, Speaker::User, &partial, |tr| {
                tr.is_final = false;
                tr.confidence = Some(0.6);
                tr.start_ns = Some(speech_start);
            });
            t += 400 * MS;
        }
        self.stage(Stage::Vad, speech_start, speech_end, |_| {});
        self.event(
            speech_end,
            "user_state_changed",
            json!({"old_state": "speaking", "new_state": "listening"}),
        );
        let stt = self.rng.ms(140, 320);
        self.stage(Stage::Stt, speech_end, speech_end + stt, |s| {
            s.provider = Some("deepgram".into());
            s.model = Some("nova-3".into());
        });
        self.transcript(speech_end + stt, Speaker::User, text, |tr| {
            tr.confidence = Some(confidence);
            tr.start_ns = Some(speech_start);
            tr.end_ns = Some(speech_end);
        });
        let eou = self.rng.ms(260, 520).max(stt + 20 * MS);
        self.stage(Stage::Eou, speech_end, speech_end + eou, |s| {
            s.model = Some("turn-detector".into());
            s.attributes.insert("probability".into(), json!(0.93));
        });
        self.push(
            speech_end + stt,
            Record::Usage(Usage {
                turn: Some(self.turn),
                stt_audio_seconds: (speech_end - speech_start) as f64 / 1e9,
                ..Default::default()
            }),
        );
        self.now = speech_end + eou;
        speech_end
    }

    /// The agent answers the current user turn: LLM (with tool calls), TTS, playback.
    /// Returns the time its audio ended (or was cut).
    pub fn reply(&mut self, r: &Reply) -> u64 {
        let committed = self.now;
        let model = self.model.clone();
        self.event(
            committed,
            "agent_state_changed",
            json!({"old_state": "listening", "new_state": "thinking"}),
        );
        if let Some(state) = &r.state {
            self.push(
                committed,
                Record::StateSnapshot(StateSnapshot {
                    turn: Some(self.turn),
                    scope: "session".into(),
                    value: state.clone(),
                }),
            );
        }
        let mut t = committed + self.rng.ms(5, 20);
        let mut prompt_tokens = 900 + self.rng.next_u64() % 400;
        for tool in &r.tools {
            // an LLM step that decides to call the tool
            let ttft = self.rng.ms(380, 620);
            let llm_end = t + ttft + self.rng.ms(60, 140);
            let m = model.clone();
            self.stage(Stage::Llm, t, llm_end, |s| {
                s.ttft_ns = Some(ttft);
                s.model = Some(m);
                s.provider = Some("openai".into());
                s.prompt_tokens = Some(prompt_tokens);
                s.completion_tokens = Some(24);
            });
            let start = llm_end;
            let end = start + tool.duration_ms * MS;
            self.stage(Stage::Tool, start, end, |s| {
                s.attributes.insert("name".into(), json!(tool.name));
            });
            self.push(
                end,
                Record::ToolCall(ToolCall {
                    turn: Some(self.turn),
                    call_id: Some(format!("call_{}_{}", self.turn, tool.name)),
                    name: tool.name.clone(),
                    arguments: tool.arguments.clone(),
                    output: tool.output.clone(),
                    is_error: tool.is_error,
                    start_ns: start,
                    end_ns: end,
                    attributes: Default::default(),
                }),
            );
            if tool.is_error {
                self.event(end, "error", json!({"source": "tool", "message": format!("{} failed: {}", tool.name, tool.output)}));
                self.push(
                    end,
                    Record::Log(LogLine {
                        turn: Some(self.turn),
                        level: "error".into(),
                        target: "agent::tools".into(),
                        message: format!("tool {} failed after {} ms", tool.name, tool.duration_ms),
                        fields: json!({"tool": tool.name, "error": tool.output})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    }),
                );
            }
            t = end + self.rng.ms(3, 10);
            prompt_tokens += 120;
        }
        let ttft = r
            .llm_ttft_ms
            .map(|ms| ms * MS)
            .unwrap_or_else(|| self.rng.ms(330, 640));
        let completion = (r.text.split_whitespace().count() as u64) * 4 / 3 + 2;
        let llm_start = t;
        let first_token = llm_start + ttft;
        let llm_end = first_token + completion * 12 * MS;
        let m = model.clone();
        let pt = prompt_tokens;
        self.stage(Stage::Llm, llm_start, llm_end, |s| {
            s.ttft_ns = Some(ttft);
            s.model = Some(m);
            s.provider = Some("openai".into());
            s.prompt_tokens = Some(pt);
            s.completion_tokens = Some(completion);
        });
        if let Some((level, msg)) = &r.log {
            self.push(
                first_token,
                Record::Log(LogLine {
                    turn: Some(self.turn),
                    level: (*level).into(),
                    target: "agent::llm".into(),
                    message: msg.clone(),
                    fields: json!({"ttft_ms": ttft / MS, "model": model})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                }),
            );
        }
        // TTS starts on the first sentence of tokens
        let tts_start = first_token + self.rng.ms(20, 45);
        let ttfb = r
            .tts_ttfb_ms
            .map(|ms| ms * MS)
            .unwrap_or_else(|| self.rng.ms(130, 260));
        let mut audio = self.clip(&r.clip);
        let play_start = tts_start + ttfb + self.rng.ms(35, 80);
        let full_len = audio.len() as u64 * 1_000_000_000 / u64::from(RATE);
        let mut play_end = play_start + full_len;
        let mut heard: Option<String> = None;
        if let Some(after) = r.barge_in_after_ms {
            let cut = play_start + after * MS + 240 * MS; // VAD + reaction time after the user starts
            let keep = ((cut - play_start) as u128 * u128::from(RATE) / 1_000_000_000) as usize;
            audio.truncate(keep.min(audio.len()));
            play_end = cut;
            let frac = (cut - play_start) as f64 / full_len as f64;
            let words: Vec<&str> = r.text.split_whitespace().collect();
            heard =
                Some(words[..((words.len() as f64 * frac) as usize).min(words.len())].join(" "));
        }
        let interrupted = heard.is_some();
        self.stage(
            Stage::Tts,
            tts_start,
            tts_start + ttfb + full_len / 3,
            |s| {
                s.ttfb_ns = Some(ttfb);
                s.characters = Some(r.text.len() as u64);
                s.provider = Some("cartesia".into());
                s.cancelled = interrupted;
            },
        );
        self.agent_audio.push((play_start, audio));
        self.event(
            play_start,
            "agent_state_changed",
            json!({"old_state": "thinking", "new_state": "speaking"}),
        );
        self.stage(Stage::Playback, play_start, play_end, |s| {
            s.cancelled = interrupted
        });
        let text = r.text.clone();
        self.transcript(play_start, Speaker::Agent, &text, |tr| {
            tr.start_ns = Some(play_start);
            tr.end_ns = Some(play_end);
            tr.interrupted = interrupted;
            tr.heard_text = heard.clone();
        });
        self.push(
            llm_end,
            Record::Usage(Usage {
                turn: Some(self.turn),
                prompt_tokens: pt,
                completion_tokens: completion,
                cached_tokens: pt / 2,
                tts_characters: r.text.len() as u64,
                tts_audio_seconds: (play_end - play_start) as f64 / 1e9,
                model: Some(model.clone()),
                ..Default::default()
            }),
        );
        if interrupted {
            self.event(play_end, "interruption", json!({"heard_chars": heard.as_ref().map_or(0, |h| h.len()), "generated_chars": r.text.len()}));
        }
        let mut attrs = serde_json::Map::new();
        if interrupted {
            attrs.insert("interrupted".into(), json!(true));
        }
        self.push(
            play_end,
            Record::TurnEnd(TurnEnd {
                turn: self.turn,
                speaker: Some(Speaker::Agent),
                attributes: attrs,
            }),
        );
        if !interrupted {
            self.event(
                play_end,
                "agent_state_changed",
                json!({"old_state": "speaking", "new_state": "listening"}),
            );
        }
        self.now = play_end;
        if let Some(after) = r.barge_in_after_ms {
            self.event(
                play_start + after * MS,
                "overlapping_speech",
                json!({"duration_ms": 240}),
            );
        }
        play_end
    }

    /// Start of the user's barge-in for a reply with `barge_in_after_ms`: the agent's
    /// playback start plus that delay. Call right after `reply`.
    pub fn last_playback_start(&self) -> u64 {
        self.agent_audio.last().map_or(self.now, |a| a.0)
    }

    pub fn end(&mut self, reason: &str, outcome: &str) {
        let t = self.now + self.rng.ms(300, 700);
        self.push(
            t,
            Record::SessionEnd(SessionEnd {
                reason: reason.into(),
                outcome: Some(outcome.into()),
            }),
        );
        self.now = t;
    }

    /// Audio records: the user's microphone is continuous (a quiet noise floor between
    /// utterances, as a real line has); the agent's track has frames only while it plays.
    pub fn audio_records(&mut self) -> Vec<TimedRecord> {
        let total = (self.now as u128 * u128::from(RATE) / 1_000_000_000) as usize;
        let mut user = vec![0i16; total + FRAME];
        for s in user.iter_mut() {
            *s = ((self.rng.next_u64() % 7) as i16) - 3;
        }
        mix(&mut user, &self.user_audio);
        let mut out = Vec::new();
        for (i, frame) in user[..total].chunks(FRAME).enumerate() {
            let first = (i * FRAME) as u64;
            out.push(TimedRecord::new(
                first * 1_000_000_000 / u64::from(RATE),
                Record::Audio(AudioFrame {
                    track: USER_TRACK,
                    channels: 1,
                    first_sample: first,
                    samples: frame.to_vec(),
                }),
            ));
        }
        for (start, audio) in &self.agent_audio {
            let first = (*start as u128 * u128::from(RATE) / 1_000_000_000) as u64;
            for (i, frame) in audio.chunks(FRAME).enumerate() {
                let s = first + (i * FRAME) as u64;
                out.push(TimedRecord::new(
                    s * 1_000_000_000 / u64::from(RATE),
                    Record::Audio(AudioFrame {
                        track: AGENT_TRACK,
                        channels: 1,
                        first_sample: s,
                        samples: frame.to_vec(),
                    }),
                ));
            }
        }
        out
    }

    /// Every record of the call (control and audio) in time order.
    pub fn into_records(mut self) -> Vec<TimedRecord> {
        let mut all = std::mem::take(&mut self.records);
        all.extend(self.audio_records());
        all.sort_by_key(|r| r.time_ns);
        all
    }
}

fn mix(track: &mut [i16], clips: &[(u64, Vec<i16>)]) {
    for (start, audio) in clips {
        let first = (*start as u128 * u128::from(RATE) / 1_000_000_000) as usize;
        for (i, &s) in audio.iter().enumerate() {
            if let Some(slot) = track.get_mut(first + i) {
                *slot = slot.saturating_add(s);
            }
        }
    }
}
