//! Time to first frame (connect + open + first render on TestBackend) of a generated two-hour
//! call, from local disk and from S3 on loopback; redraw time after a step; peak RSS of a
//! replay session. The archive (two 16 kHz tracks, ~30 control records/s) is generated once
//! in a child process and cached under target/.
//!
//! `cargo bench -p calltape --bench open`

use std::path::{Path, PathBuf};
use std::time::Duration;

use calltape::tui::action::Action;
use calltape::tui::{Harness, Options};
use calltape_format::*;
use criterion::{criterion_group, Criterion};

const HOURS2_S: u64 = 2 * 3600;
const RATE: u32 = 16_000;
const MS: u64 = 1_000_000;

fn cache_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("calltape-bench").join("two_hours.calltape")
}

fn generate(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    let out = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    let track = |id, role| Track {
        id,
        role,
        sample_rate: RATE,
        channels: 1,
        codec: AudioCodec::Pcm16Lpc2,
        name: None,
    };
    let header = Header {
        session_id: "bench-two-hours".into(),
        started_at: "2026-11-21T10:00:00.000Z".into(),
        started_at_unix_ns: 1_795_255_200_000_000_000,
        agent: AgentInfo {
            name: "bench".into(),
            version: "1".into(),
        },
        environment: None,
        tags: Default::default(),
        tracks: vec![track(1, Speaker::User), track(2, Speaker::Agent)],
    };
    let mut w = ArchiveWriter::new(out, header).unwrap();
    let per = (RATE / 50) as u64;
    // a 10 s turn: user speaks 0–3 s, agent 4.2–8 s
    for f in 0..HOURS2_S * 50 {
        let t_ms = f * 20;
        let turn = (t_ms / 10_000) as u32 + 1;
        let in_turn = t_ms % 10_000;
        let base = (turn as u64 - 1) * 10_000;
        if in_turn == 0 {
            w.write(&TimedRecord::new(
                t_ms * MS,
                Record::TurnStart(TurnStart {
                    turn,
                    speaker: Speaker::User,
                    attributes: Default::default(),
                }),
            ))
            .unwrap();
        }
        for (track, speaking) in [
            (1u16, in_turn < 3_000),
            (2u16, (4_200..8_000).contains(&in_turn)),
        ] {
            let first = f * per;
            let samples: Vec<i16> = (0..per)
                .map(|i| {
                    if speaking {
                        (((first + i) as f64 * 0.07).sin() * 5000.0) as i16
                    } else {
                        ((first + i) % 7) as i16 - 3
                    }
                })
                .collect();
            w.write(&TimedRecord::new(
                t_ms * MS,
                Record::Audio(AudioFrame {
                    track,
                    channels: 1,
                    first_sample: first,
                    samples,
                }),
            ))
            .unwrap();
        }
        // ~30 control records per second: interim transcripts, events, logs
        if f % 5 < 3 {
            let rec = match f % 3 {
                0 => Record::Transcript(Transcript {
                    turn: Some(turn),
                    speaker: Speaker::User,
                    text: format!("interim hypothesis number {f}"),
                    is_final: false,
                    confidence: Some(0.5),
                    language: None,
                    interrupted: false,
                    heard_text: None,
                    start_ns: Some(base * MS),
                    end_ns: None,
                    attributes: Default::default(),
                }),
                1 => Record::Event(Event {
                    turn: Some(turn),
                    name: "agent_state_changed".into(),
                    attributes: Default::default(),
                }),
                _ => Record::Log(LogLine {
                    turn: Some(turn),
                    level: "debug".into(),
                    target: "agent".into(),
                    message: format!("tick {f}"),
                    fields: Default::default(),
                }),
            };
            w.write(&TimedRecord::new(t_ms * MS, rec)).unwrap();
        }
        if in_turn == 8_100 {
            let st = |s, a: u64, b: u64| {
                Record::StageTiming(StageTiming::new(
                    Some(turn),
                    s,
                    (base + a) * MS,
                    (base + b) * MS,
                ))
            };
            let mut llm = StageTiming::new(
                Some(turn),
                Stage::Llm,
                (base + 3_400) * MS,
                (base + 4_000) * MS,
            );
            llm.ttft_ns = Some((300 + (turn as u64 * 37) % 900) * MS);
            for r in [
                st(Stage::Vad, 0, 3_000),
                st(Stage::Eou, 3_000, 3_300),
                Record::StageTiming(llm),
                st(Stage::Playback, 4_200, 8_000),
                Record::Transcript(Transcript {
                    turn: Some(turn),
                    speaker: Speaker::User,
                    text: format!("final user words of turn {turn}"),
                    is_final: true,
                    confidence: None,
                    language: None,
                    interrupted: false,
                    heard_text: None,
                    start_ns: Some(base * MS),
                    end_ns: Some((base + 3_000) * MS),
                    attributes: Default::default(),
                }),
                Record::Transcript(Transcript {
                    turn: Some(turn),
                    speaker: Speaker::Agent,
                    text: format!("agent answer {turn}"),
                    is_final: true,
                    confidence: None,
                    language: None,
                    interrupted: false,
                    heard_text: None,
                    start_ns: Some((base + 4_200) * MS),
                    end_ns: Some((base + 8_000) * MS),
                    attributes: Default::default(),
                }),
                Record::TurnEnd(TurnEnd {
                    turn,
                    speaker: Some(Speaker::Agent),
                    attributes: Default::default(),
                }),
            ] {
                w.write(&TimedRecord::new(t_ms * MS, r)).unwrap();
            }
        }
    }
    w.finish().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn opts() -> Options {
    Options {
        color: false,
        player: None,
        ..Options::default()
    }
}

fn bench(c: &mut Criterion) {
    let path = cache_path();
    let target = path.to_str().unwrap().to_string();
    let mut g = c.benchmark_group("two_hour_call");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("first_frame_local", |b| {
        b.iter(|| {
            let mut h = Harness::open(&target, opts(), 120, 40).unwrap();
            h.screen()
        })
    });
    // S3 on loopback: the in-process test server over a directory holding the archive
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = rt.block_on(calltape_tests::s3_server::TestS3::start());
    s3.create_bucket("bench");
    std::fs::copy(&path, s3.root().join("bench").join("two_hours.calltape")).unwrap();
    for (k, v) in s3.env() {
        // SAFETY: single-threaded at this point of the benchmark (no other threads read env)
        unsafe { std::env::set_var(k, v) };
    }
    g.bench_function("first_frame_s3_loopback", |b| {
        b.iter(|| {
            let mut h = Harness::open("s3://bench/two_hours.calltape", opts(), 120, 40).unwrap();
            h.screen()
        })
    });
    let mut h = Harness::open(&target, opts(), 120, 40).unwrap();
    h.settle();
    g.bench_function("redraw_after_step", |b| {
        b.iter(|| {
            h.act(Action::NextTurn);
            h.app.outbox.clear();
            h.screen()
        })
    });
    g.bench_function("step_with_background_loads", |b| {
        b.iter(|| {
            h.act(Action::NextTurn);
            h.settle();
            h.screen()
        })
    });
    g.finish();
}

fn session_memory() {
    let path = cache_path();
    reset_peak_rss();
    let before = peak_rss_kib();
    let mut h = Harness::open(path.to_str().unwrap(), opts(), 120, 40).unwrap();
    h.settle();
    h.screen();
    // walk the call: every 10th turn with its loads, zoom out to the whole call, search it
    for _ in 0..72 {
        for _ in 0..10 {
            h.act(Action::NextTurn);
        }
        h.settle();
        h.screen();
    }
    h.press("-------");
    h.press("/answer 700<Enter>");
    h.screen();
    println!(
        "two_hour_call/session_peak_rss: {} MiB (peak RSS of the whole bench process after reset: {} MiB before the session)",
        peak_rss_kib() / 1024,
        before / 1024
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(p) = std::env::var("CALLTAPE_BENCH_GENERATE") {
        generate(Path::new(&p));
        return;
    }
    let path = cache_path();
    if !path.exists() {
        eprintln!("generating a two-hour call at {} (once)…", path.display());
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .env("CALLTAPE_BENCH_GENERATE", &path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let size = std::fs::metadata(&path).unwrap().len();
    println!("archive: {} ({} MiB)", path.display(), size >> 20);
    session_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
