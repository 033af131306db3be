//! Support for the CLI and catalog tests: the real `calltape` binary, and synthetic calls
//! written with `calltape_format::ArchiveWriter` whose every number is known in advance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calltape_format::*;
use serde_json::{json, Value};

pub const MS: u64 = 1_000_000;
/// 2026-11-21T10:00:00Z
pub const T0_UNIX_NS: i64 = 1_795_255_200_000_000_000;
pub const RATE: u32 = 8000;

/// Runs `calltape args...` with `env`, never inheriting a catalog from the environment.
pub fn run(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_calltape"));
    cmd.args(args)
        .env_remove("CALLTAPE_CATALOG")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run calltape")
}

pub fn ok(args: &[&str]) -> String {
    let out = run(args, &[]);
    assert!(
        out.status.success(),
        "calltape {args:?} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn json_of(args: &[&str]) -> Value {
    let s = ok(args);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn vector(name: &str) -> PathBuf {
    repo().join("format-spec/vectors").join(name)
}

pub fn sample(name: &str) -> PathBuf {
    repo().join("samples/archives").join(name)
}

/// One turn of a synthetic call. Latencies in ms.
#[derive(Debug, Clone)]
pub struct TurnSpec {
    pub user_text: String,
    pub agent_text: String,
    pub eou: u64,
    pub llm: u64,
    pub tool: Option<(&'static str, bool, u64)>,
    pub tts: u64,
    /// e2e = eou + llm + tool + tts + rest
    pub rest: u64,
    pub error: bool,
}

impl TurnSpec {
    pub fn new(user: &str, agent: &str, e2e_ms: u64) -> TurnSpec {
        // split e2e into parts: eou 20%, llm 50%, tts 20%, rest 10% (rounded; rest absorbs)
        let eou = e2e_ms / 5;
        let llm = e2e_ms / 2;
        let tts = e2e_ms / 5;
        TurnSpec {
            user_text: user.into(),
            agent_text: agent.into(),
            eou,
            llm,
            tool: None,
            tts,
            rest: e2e_ms - eou - llm - tts,
            error: false,
        }
    }

    pub fn e2e(&self) -> u64 {
        self.eou + self.llm + self.tool.map_or(0, |t| t.2) + self.tts + self.rest
    }
}

#[derive(Debug, Clone)]
pub struct CallSpec {
    pub session_id: String,
    pub agent: String,
    pub version: String,
    pub started_unix_ns: i64,
    pub turns: Vec<TurnSpec>,
    pub outcome: String,
    pub audio: bool,
    /// Sample rate of the agent track (the user track is always `RATE`).
    pub agent_rate: u32,
    pub usage_model: String,
    /// Agent audio recorded this much later than its `playback` stage says (a lying metric).
    pub agent_audio_delay_ms: u64,
}

impl CallSpec {
    pub fn new(id: &str, turns: Vec<TurnSpec>) -> CallSpec {
        CallSpec {
            session_id: id.into(),
            agent: "support-bot".into(),
            version: "1.0.0".into(),
            started_unix_ns: T0_UNIX_NS,
            turns,
            outcome: "resolved".into(),
            audio: false,
            agent_rate: RATE,
            usage_model: "gpt-test".into(),
            agent_audio_delay_ms: 0,
        }
    }
}

/// Each turn lasts 10 s: user speaks 0.5–2.0 s, agent audio starts at 2.0 s + e2e.
pub const TURN_NS: u64 = 10_000 * MS;

/// When the agent's speech of turn `i` (0-based) starts and ends.
pub fn agent_speech(spec: &CallSpec, i: usize) -> (u64, u64) {
    let t0 = i as u64 * TURN_NS;
    let start = t0 + 2000 * MS + spec.turns[i].e2e() * MS;
    (start, start + 1500 * MS)
}

/// The sample value the synthetic audio has at index `n` of `track`.
pub fn sample_value(track: u16, n: u64) -> i16 {
    (((n * 37 + u64::from(track) * 1000) % 4001) as i64 - 2000) as i16
}

/// Sample ranges (per channel, on the track timeline) recorded for `track`: user speech
/// 0.5–2.0 s of each turn; agent speech from its start for 1.5 s. Everything else is silence
/// that was not recorded (a gap).
pub fn recorded_ranges(spec: &CallSpec, track: u16) -> Vec<(u64, u64)> {
    let rate = u64::from(if track == 1 { RATE } else { spec.agent_rate });
    (0..spec.turns.len())
        .map(|i| {
            let (a, b) = if track == 1 {
                let t0 = i as u64 * TURN_NS;
                (t0 + 500 * MS, t0 + 2000 * MS)
            } else {
                let (a, b) = agent_speech(spec, i);
                let d = spec.agent_audio_delay_ms * MS;
                (a + d, b + d)
            };
            (a * rate / 1_000_000_000, b * rate / 1_000_000_000)
        })
        .collect()
}

pub fn records(spec: &CallSpec) -> Vec<TimedRecord> {
    let mut out = Vec::new();
    let t = |ns: u64, r: Record| TimedRecord::new(ns, r);
    for (i, ts) in spec.turns.iter().enumerate() {
        let turn = i as u32 + 1;
        let t0 = i as u64 * TURN_NS;
        let user_end = t0 + 2000 * MS;
        let committed = user_end + ts.eou * MS;
        let (play, play_end) = agent_speech(spec, i);
        out.push(t(
            t0,
            Record::TurnStart(TurnStart {
                turn,
                speaker: Speaker::User,
                attributes: Default::default(),
            }),
        ));
        out.push(t(
            user_end,
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Vad,
                t0 + 500 * MS,
                user_end,
            )),
        ));
        out.push(t(
            committed,
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Eou,
                user_end,
                committed,
            )),
        ));
        out.push(t(
            committed,
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Stt,
                user_end,
                committed,
            )),
        ));
        out.push(t(
            committed,
            Record::Transcript(Transcript {
                turn: Some(turn),
                speaker: Speaker::User,
                text: ts.user_text.clone(),
                is_final: true,
                confidence: Some(0.9),
                language: Some("en".into()),
                interrupted: false,
                heard_text: None,
                start_ns: Some(t0 + 500 * MS),
                end_ns: Some(user_end),
                attributes: Default::default(),
            }),
        ));
        let mut llm = StageTiming::new(
            Some(turn),
            Stage::Llm,
            committed,
            committed + ts.llm * MS + 100 * MS,
        );
        llm.ttft_ns = Some(ts.llm * MS);
        llm.model = Some(spec.usage_model.clone());
        llm.prompt_tokens = Some(100);
        llm.completion_tokens = Some(20);
        out.push(t(committed + ts.llm * MS, Record::StageTiming(llm)));
        let mut after = committed + ts.llm * MS;
        if let Some((name, is_error, ms)) = ts.tool {
            out.push(t(
                after + ms * MS,
                Record::ToolCall(ToolCall {
                    turn: Some(turn),
                    call_id: Some(format!("call-{turn}")),
                    name: name.into(),
                    arguments: json!({"turn": turn}),
                    output: if is_error {
                        json!({"error": "timeout"})
                    } else {
                        json!({"ok": true})
                    },
                    is_error,
                    start_ns: after,
                    end_ns: after + ms * MS,
                    attributes: Default::default(),
                }),
            ));
            after += ms * MS;
        }
        let mut tts = StageTiming::new(Some(turn), Stage::Tts, after, play_end);
        tts.ttfb_ns = Some(ts.tts * MS);
        tts.characters = Some(ts.agent_text.len() as u64);
        out.push(t(after + ts.tts * MS, Record::StageTiming(tts)));
        if ts.error {
            out.push(t(
                after + MS,
                Record::Event(Event {
                    turn: Some(turn),
                    name: "error".into(),
                    attributes: serde_json::from_value(
                        json!({"message": "llm rate limited", "source": "llm"}),
                    )
                    .unwrap(),
                }),
            ));
        }
        out.push(t(
            play_end,
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Playback,
                play,
                play_end,
            )),
        ));
        out.push(t(
            play_end,
            Record::Transcript(Transcript {
                turn: Some(turn),
                speaker: Speaker::Agent,
                text: ts.agent_text.clone(),
                is_final: true,
                confidence: None,
                language: None,
                interrupted: false,
                heard_text: None,
                start_ns: Some(play),
                end_ns: Some(play_end),
                attributes: Default::default(),
            }),
        ));
        out.push(t(
            play_end,
            Record::Usage(Usage {
                turn: Some(turn),
                prompt_tokens: 100,
                completion_tokens: 20,
                cached_tokens: 50,
                stt_audio_seconds: 1.5,
                tts_audio_seconds: 1.5,
                tts_characters: ts.agent_text.len() as u64,
                model: Some(spec.usage_model.clone()),
                provider: Some("test".into()),
            }),
        ));
        out.push(t(
            play_end + MS,
            Record::TurnEnd(TurnEnd {
                turn,
                speaker: None,
                attributes: Default::default(),
            }),
        ));
    }
    if spec.audio {
        for track in [1u16, 2] {
            let rate = u64::from(if track == 1 { RATE } else { spec.agent_rate });
            for (a, b) in recorded_ranges(spec, track) {
                let frame = rate / 50; // 20 ms
                let mut n = a;
                while n < b {
                    let m = (n + frame).min(b);
                    out.push(t(
                        n * 1_000_000_000 / rate,
                        Record::Audio(AudioFrame {
                            track,
                            channels: 1,
                            first_sample: n,
                            samples: (n..m).map(|k| sample_value(track, k)).collect(),
                        }),
                    ));
                    n = m;
                }
            }
        }
    }
    let end = spec.turns.len() as u64 * TURN_NS;
    out.push(t(
        end,
        Record::SessionEnd(SessionEnd {
            reason: "user_hangup".into(),
            outcome: Some(spec.outcome.clone()),
        }),
    ));
    out.sort_by_key(|r| r.time_ns);
    out
}

pub fn header(spec: &CallSpec) -> Header {
    let secs = spec.started_unix_ns / 1_000_000_000;
    let started_at = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    Header {
        session_id: spec.session_id.clone(),
        started_at,
        started_at_unix_ns: spec.started_unix_ns,
        agent: AgentInfo {
            name: spec.agent.clone(),
            version: spec.version.clone(),
        },
        environment: Some("test".into()),
        tags: Default::default(),
        tracks: if spec.audio {
            vec![
                Track {
                    id: 1,
                    role: Speaker::User,
                    sample_rate: RATE,
                    channels: 1,
                    codec: AudioCodec::Pcm16Lpc2,
                    name: None,
                },
                Track {
                    id: 2,
                    role: Speaker::Agent,
                    sample_rate: spec.agent_rate,
                    channels: 1,
                    codec: AudioCodec::Pcm16Lpc2,
                    name: None,
                },
            ]
        } else {
            Vec::new()
        },
    }
}

/// The archive bytes of `spec`.
pub fn archive_bytes(spec: &CallSpec) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new(), header(spec)).unwrap();
    for r in records(spec) {
        w.write(&r).unwrap();
    }
    w.finish().unwrap().0
}

pub fn write_call(dir: &Path, spec: &CallSpec) -> PathBuf {
    let path = dir.join(format!("{}.calltape", spec.session_id));
    std::fs::write(&path, archive_bytes(spec)).unwrap();
    path
}

/// A three-turn call: fast, slow (2.4 s, with a failing tool), medium.
pub fn three_turn_call(id: &str) -> CallSpec {
    let mut slow = TurnSpec::new(
        "I want a refund for my order",
        "Let me check that order for you",
        2000,
    );
    slow.tool = Some(("lookup_order", true, 400));
    CallSpec::new(
        id,
        vec![
            TurnSpec::new("Hello there", "Hi, how can I help?", 800),
            slow,
            TurnSpec::new("Thanks, bye", "Goodbye and have a nice day", 1000),
        ],
    )
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
