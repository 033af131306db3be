//! Capacity: CPU the recorder spends per call-minute while recording many live calls at once
//! in real time, and from it how many calls one core keeps up with.
//!
//! Each call has two continuous 16 kHz tracks in 20 ms frames (the sample dialogues' speech,
//! the agent's silences filled with a line's noise floor) and 30 events a second (the
//! dialogue's control records topped up with `vad` events). N calls are recorded at once in
//! **real time**: live session clocks (records stamped "now"), a pacing thread that sends
//! every call's next frame each 20 ms of wall-clock time, the recorder's default
//! configuration (writer threads, `sync_data` on). The process's CPU time (user + system,
//! all threads, from `/proc/self/stat`) over a window that starts after a second of
//! recording and ends before the calls are closed, divided by the call-minutes in that
//! window, is the cost; 60 s divided by it is the number of calls one core records in real
//! time. The pacing thread (the simulated agents) is included, so the figure errs on the low
//! side. `cargo bench -p calltape-recorder --bench live_calls` measures the same on recorded
//! human speech with record-call latencies; BENCHMARKS.md has its figures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calltape_format::{Event, Record, TimedRecord};
use calltape_recorder::{Recorder, Session, SessionInfo, Speaker};
use calltape_samples::SampleCall;

use crate::table::Row;

const RATE: u64 = 16_000;
const FRAME: usize = 320;
const FRAME_NS: u64 = 20_000_000;
const EVENTS_PER_S: u64 = 30;
/// Goal: calls one core records in real time.
const GOAL_CALLS: f64 = 500.0;

/// One call's content, replayable from any whole second.
struct Workload {
    user: Vec<i16>,
    agent: Vec<i16>,
    /// Control records in time order (the session end left out), 30 a second in all.
    control: Vec<TimedRecord>,
}

impl Workload {
    fn from(call: &SampleCall) -> Workload {
        let end = call
            .records
            .iter()
            .map(|r| match &r.record {
                Record::Audio(a) => a.first_sample + a.samples.len() as u64,
                _ => r.time_ns * RATE / 1_000_000_000,
            })
            .max()
            .unwrap_or(0) as usize;
        // a line's noise floor, ±3 (xorshift: no dependency on the simulator's generator)
        let mut x: u32 = 7;
        let mut floor = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 7) as i16 - 3
        };
        let mut user: Vec<i16> = (0..end).map(|_| floor()).collect();
        let mut agent: Vec<i16> = (0..end).map(|_| floor()).collect();
        let mut control = Vec::new();
        for r in &call.records {
            match &r.record {
                Record::Audio(a) => {
                    let track = if a.track == 1 { &mut user } else { &mut agent };
                    let at = a.first_sample as usize;
                    track[at..at + a.samples.len()].copy_from_slice(&a.samples);
                }
                Record::SessionEnd(_) => {}
                other => control.push(TimedRecord::new(r.time_ns, other.clone())),
            }
        }
        let duration_ns = end as u64 * 1_000_000_000 / RATE;
        let want = duration_ns / 1_000_000_000 * EVENTS_PER_S;
        let extra = want.saturating_sub(control.len() as u64);
        if let Some(every) = duration_ns.checked_div(extra) {
            for i in 0..extra {
                let mut attributes = calltape_recorder::Attributes::new();
                attributes.insert("track".into(), (1 + i % 2).into());
                attributes.insert(
                    "speech_probability".into(),
                    ((i % 100) as f64 / 100.0).into(),
                );
                control.push(TimedRecord::new(
                    i * every,
                    Record::Event(Event {
                        turn: None,
                        name: "vad".into(),
                        attributes,
                    }),
                ));
            }
        }
        control.sort_by_key(|r| r.time_ns);
        Workload {
            user,
            agent,
            control,
        }
    }

    fn duration_ns(&self) -> u64 {
        self.user.len() as u64 * 1_000_000_000 / RATE
    }
}

/// Process CPU time so far (user + system, every thread, exited ones too).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // fields after the command name in parentheses; utime and stime are fields 14 and 15
    let rest = &stat[stat.rfind(')').expect("/proc/self/stat format") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .take(13)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // USER_HZ is 100 on Linux
    Duration::from_millis((f[11] + f[12]) * 10)
}

struct Run {
    cpu: Duration,
    wall: Duration,
    call_minutes: f64,
    dropped: u64,
}

/// Records `calls` live calls in real time for `warmup` plus `window`, measuring the
/// process's CPU over `window`; then closes them.
async fn live(
    rec: &Recorder,
    w: &Arc<Workload>,
    calls: usize,
    warmup: Duration,
    window: Duration,
    tag: &str,
) -> Run {
    let span = w
        .duration_ns()
        .saturating_sub((warmup + window).as_nanos() as u64 + 2_000_000_000)
        / 1_000_000_000;
    let sessions: Vec<(Session, u64)> = (0..calls)
        .map(|k| {
            let info = SessionInfo::new(format!("capacity-{tag}-{k}"))
                .track(Speaker::User, RATE as u32, 1)
                .track(Speaker::Agent, RATE as u32, 1);
            // each call starts somewhere else in the dialogue
            let offset = (k as u64 * 7) % span.max(1) * 1_000_000_000;
            (rec.start_session(info).expect("start session"), offset)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = {
        let (w, stop) = (w.clone(), stop.clone());
        let sessions = sessions.clone();
        std::thread::spawn(move || {
            let mut next: Vec<usize> = sessions
                .iter()
                .map(|(_, off)| w.control.partition_point(|r| r.time_ns < *off))
                .collect();
            let start = Instant::now();
            let mut tick = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let at = start + Duration::from_nanos(tick * FRAME_NS);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let t = tick * FRAME_NS;
                for (k, (s, off)) in sessions.iter().enumerate() {
                    let first = ((off + t) * RATE / 1_000_000_000) as usize;
                    if first + FRAME > w.user.len() {
                        continue;
                    }
                    s.audio(1, &w.user[first..first + FRAME]);
                    s.audio(2, &w.agent[first..first + FRAME]);
                    while let Some(r) = w.control.get(next[k]) {
                        if r.time_ns >= off + t + FRAME_NS {
                            break;
                        }
                        s.record(r.record.clone());
                        next[k] += 1;
                    }
                }
                tick += 1;
            }
        })
    };
    tokio::time::sleep(warmup).await;
    let (cpu0, wall0) = (process_cpu(), Instant::now());
    tokio::time::sleep(window).await;
    let (cpu, wall) = (process_cpu() - cpu0, wall0.elapsed());
    stop.store(true, Ordering::Relaxed);
    pacer.join().expect("pacer");
    let finishing = sessions.into_iter().map(|(s, _)| async move {
        s.end("user_hangup", Some("resolved"));
        let r = s.finish().await.expect("finish");
        assert!(r.upload.is_uploaded(), "{r:?}");
        r.dropped_samples + r.dropped_records
    });
    let dropped = futures::future::join_all(finishing).await.into_iter().sum();
    Run {
        cpu,
        wall,
        call_minutes: calls as f64 * wall.as_secs_f64() / 60.0,
        dropped,
    }
}

fn measure(w: &Arc<Workload>, calls: usize, window: Duration, tag: &str) -> Run {
    // the agent's runtime: two worker threads; the recorder's writer threads are its own
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dest = tempfile::tempdir().expect("temp dir");
    let spool = tempfile::tempdir().expect("temp dir");
    let rec = rt
        .block_on(
            Recorder::builder()
                .destination(format!("file://{}", dest.path().display()))
                .spool_dir(spool.path())
                .retry_interval(None)
                .build(),
        )
        .expect("recorder");
    let run = rt.block_on(live(&rec, w, calls, Duration::from_secs(1), window, tag));
    rt.block_on(rec.shutdown(Duration::from_secs(10)));
    drop(rt);
    run
}

pub fn rows(call: &SampleCall, quick: bool) -> Vec<Row> {
    let (calls, window_s, reps) = if quick { (50, 8, 1) } else { (200, 30, 3) };
    let w = Arc::new(Workload::from(call));
    let window = Duration::from_secs(window_s);
    let mut runs: Vec<Run> = (0..reps)
        .map(|i| measure(&w, calls, window, &i.to_string()))
        .collect();
    let dropped: u64 = runs.iter().map(|r| r.dropped).sum();
    runs.sort_by(|a, b| {
        (a.cpu.as_secs_f64() / a.call_minutes).total_cmp(&(b.cpu.as_secs_f64() / b.call_minutes))
    });
    let median = &runs[runs.len() / 2];
    let per_minute = median.cpu.as_secs_f64() / median.call_minutes;
    let per_core = 60.0 / per_minute;
    eprintln!(
        "capacity: {calls} live calls in real time, {:.0} s measured, {:.1} control records/s each: CPU {:.2} s, wall {:.2} s, {dropped} dropped",
        window.as_secs_f64(),
        w.control.len() as f64 / (w.duration_ns() as f64 / 1e9),
        median.cpu.as_secs_f64(),
        median.wall.as_secs_f64()
    );
    let note = if dropped > 0 {
        format!(" ({dropped} samples/records dropped: not valid)")
    } else {
        String::new()
    };
    vec![
        Row::new(
            format!(
                "recorder CPU per call-minute ({calls} live calls at once in real time; 2 × 16 kHz + {EVENTS_PER_S} events/s each)"
            ),
            format!("{:.1} ms{note}", per_minute * 1e3),
            "",
        ),
        Row::new(
            format!("calls one core records in real time (from {calls} live calls paced by the wall clock)"),
            format!("{per_core:.0} calls"),
            "",
        )
        .goal(
            format!("≥ {GOAL_CALLS:.0} calls/core"),
            dropped == 0 && per_core >= GOAL_CALLS,
        ),
    ]
}
