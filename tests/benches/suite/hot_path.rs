//! Latency of the recorder's hot path: every `record_*` call timed on its own (p50 / p99 /
//! max, and how many took over 100 µs) for events and 20 ms audio frames, while other
//! sessions of the same recorder record white noise (incompressible) as fast as their writer
//! takes it, with a backlog, so a writer is compressing the whole time.
//!
//! Beside it, a baseline under the same load: the same loop doing only what such a call
//! cannot avoid (allocating and filling the record). Its tail is the machine's noise floor
//! (preemption, page faults, allocator), which the recorder's tail should match.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calltape_format::{Event, Record, TimedRecord};
use calltape_recorder::{Attributes, Recorder, Session, SessionInfo, Speaker};
use object_store::memory::InMemory;
use object_store::ObjectStoreExt;

use crate::table::Row;

/// A call slower than this counts as blocked.
const BLOCKED_NS: u64 = 100_000;
/// Goal for the 99th percentile.
const GOAL_P99_NS: u64 = 2_000;
/// 20 ms at 16 kHz mono.
const FRAME: usize = 320;
const FRAME_NS: u64 = 20_000_000;

/// Per-call latencies of one kind of call, over all repetitions.
struct Latency {
    /// Median over repetitions of each repetition's p50 / p99.
    p50: u64,
    p99: u64,
    max: u64,
    blocked: usize,
    calls: usize,
}

impl Latency {
    fn of(reps: Vec<Vec<u64>>) -> Latency {
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        let (mut max, mut blocked, mut calls) = (0, 0, 0);
        for mut ns in reps {
            ns.sort_unstable();
            p50.push(ns[ns.len() / 2]);
            p99.push(ns[(ns.len() * 99 / 100).min(ns.len() - 1)]);
            max = max.max(ns[ns.len() - 1]);
            blocked += ns.iter().filter(|&&x| x > BLOCKED_NS).count();
            calls += ns.len();
        }
        p50.sort_unstable();
        p99.sort_unstable();
        Latency {
            p50: p50[p50.len() / 2],
            p99: p99[p99.len() / 2],
            max,
            blocked,
            calls,
        }
    }

    fn summary(&self) -> String {
        format!(
            "p50 {} / p99 {} / max {}",
            ns(self.p50),
            ns(self.p99),
            ns(self.max)
        )
    }
}

fn ns(x: u64) -> String {
    if x < 10_000 {
        format!("{x} ns")
    } else if x < 10_000_000 {
        format!("{:.0} µs", x as f64 / 1e3)
    } else {
        format!("{:.0} ms", x as f64 / 1e6)
    }
}

/// A recorder with the measured session and a load session fed noise by its own thread.
struct Bench {
    rt: tokio::runtime::Runtime,
    recorder: Recorder,
    session: Session,
    stop: Arc<AtomicBool>,
    load: Option<std::thread::JoinHandle<u64>>,
    started: Instant,
    _spool: tempfile::TempDir,
}

fn info(id: &str) -> SessionInfo {
    SessionInfo::new(id)
        .track(Speaker::User, 16_000, 1)
        .track(Speaker::Agent, 16_000, 1)
}

/// Bytes the load keeps queued: some 80 ms of compression, so its writer never idles.
const LOAD_BACKLOG: usize = 8 << 20;
/// Audio bytes per load archive before the load moves on to a new session.
const LOAD_ARCHIVE: u64 = 64 << 20;

/// Records white noise (incompressible) as fast as the writer takes it, keeping a backlog;
/// every 64 MiB the call ends (uploaded and deleted in the background) and a new one starts.
fn load(
    stop: &AtomicBool,
    recorder: &Recorder,
    handle: &tokio::runtime::Handle,
    store: &Arc<InMemory>,
) -> u64 {
    let start = |n: u32| {
        let _g = handle.enter();
        recorder
            .start_session(info(&format!("load-{n}")))
            .expect("load session")
    };
    let mut n = 0;
    let mut session = start(n);
    let mut x: u32 = 1;
    let mut t = 0u64;
    let mut finishing = Vec::new();
    let mut frames = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if recorder.health().queued_bytes > LOAD_BACKLOG {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        let frame: Vec<i16> = (0..FRAME)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as i16
            })
            .collect();
        session.at(t).audio(1, &frame);
        t += FRAME_NS;
        frames += 1;
        if t / FRAME_NS * FRAME as u64 * 2 >= LOAD_ARCHIVE {
            n += 1;
            let done = std::mem::replace(&mut session, start(n));
            let store = store.clone();
            finishing.push(handle.spawn(async move {
                if let Ok(r) = done.finish().await {
                    let _ = store.delete(&r.upload.key.as_str().into()).await;
                }
            }));
            t = 0;
        }
    }
    finishing.push(handle.spawn(async move {
        let _ = session.finish().await;
    }));
    for f in finishing {
        let _ = handle.block_on(f);
    }
    frames * FRAME as u64 * 2
}

impl Bench {
    fn start() -> Bench {
        // an agent process: a multi-threaded runtime on this 2-core machine
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let spool = tempfile::tempdir().expect("temp dir");
        // archives go to memory and are deleted once uploaded: the load writes gigabytes
        let store = Arc::new(InMemory::new());
        let recorder = rt
            .block_on(
                Recorder::builder()
                    .store(store.clone(), "")
                    .spool_dir(spool.path())
                    .queue_capacity(1 << 15)
                    .retry_interval(None)
                    .build(),
            )
            .expect("recorder");
        let session = {
            let _g = rt.enter();
            recorder.start_session(info("measured")).expect("session")
        };
        let stop = Arc::new(AtomicBool::new(false));
        let load = {
            let (stop, recorder, handle) = (stop.clone(), recorder.clone(), rt.handle().clone());
            std::thread::spawn(move || load(&stop, &recorder, &handle, &store))
        };
        Bench {
            rt,
            recorder,
            session,
            stop,
            load: Some(load),
            started: Instant::now(),
            _spool: spool,
        }
    }

    /// Times `calls` calls of `call(i)` one by one, after a warm-up. `prepare(i)` runs before
    /// each, untimed; every 1 000 calls the writer is waited for, untimed.
    fn measure<P>(
        &self,
        calls: usize,
        mut prepare: impl FnMut(u64) -> P,
        mut call: impl FnMut(u64, P),
    ) -> Vec<u64> {
        const WARM_UP: usize = 2_000;
        let mut out = Vec::with_capacity(calls);
        for i in 0..WARM_UP + calls {
            let arg = prepare(i as u64);
            let t0 = Instant::now();
            call(i as u64, arg);
            let dt = t0.elapsed().as_nanos() as u64;
            if i >= WARM_UP {
                out.push(dt);
            }
            if i % 1_000 == 999 {
                self.rt.block_on(self.session.drained());
            }
        }
        out
    }

    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(load) = self.load.take() {
            let secs = self.started.elapsed().as_secs_f64();
            let bytes = load.join().unwrap_or(0);
            eprintln!(
                "hot path: the load recorded {:.0} MB of noise in {secs:.1} s ({:.0} MB/s through its writer)",
                bytes as f64 / 1e6,
                bytes as f64 / 1e6 / secs
            );
        }
        let st = self.session.status();
        let dropped = (st.dropped_samples, st.dropped_records);
        let session = self.session;
        self.rt.block_on(async {
            let _ = session.finish().await;
            self.recorder.shutdown(Duration::from_secs(10)).await;
        });
        self.rt.shutdown_timeout(Duration::from_secs(10));
        dropped
    }
}

pub fn rows(quick: bool) -> Vec<Row> {
    let (calls, reps) = if quick { (20_000, 1) } else { (100_000, 5) };
    let bench = Bench::start();
    // let the load get going
    std::thread::sleep(Duration::from_millis(300));

    let name = "agent_state_changed";
    let mut attrs = Attributes::new();
    attrs.insert("old_state".into(), "thinking".into());
    attrs.insert("new_state".into(), "speaking".into());
    let frame: Vec<i16> = (0..FRAME as i16).map(|i| i * 37).collect();
    // what the baselines build, kept until the next untimed `prepare` every 1 000 calls
    let records: RefCell<Vec<Box<TimedRecord>>> = RefCell::new(Vec::with_capacity(1_000));
    let frames: RefCell<Vec<Vec<i16>>> = RefCell::new(Vec::with_capacity(1_000));

    let (mut event, mut event_base, mut audio, mut audio_base) = (vec![], vec![], vec![], vec![]);
    let mut t_audio = 0u64;
    for _ in 0..reps {
        event.push(bench.measure(
            calls,
            |_| attrs.clone(),
            |_, a| bench.session.event(name, a),
        ));
        // the baseline builds the same record in its box and keeps it (freeing is the
        // writer's job in the recorder too)
        event_base.push(bench.measure(
            calls,
            |i| {
                if i % 1_000 == 0 {
                    records.borrow_mut().clear();
                }
                attrs.clone()
            },
            |i, a| {
                let r = Box::new(TimedRecord::new(
                    i,
                    Record::Event(Event {
                        turn: None,
                        name: name.into(),
                        attributes: a,
                    }),
                ));
                records.borrow_mut().push(black_box(r));
            },
        ));
        audio.push(bench.measure(
            calls,
            |_| {
                t_audio += FRAME_NS;
                t_audio
            },
            |_, t| bench.session.at(t).audio(1, black_box(&frame)),
        ));
        audio_base.push(bench.measure(
            calls,
            |i| {
                if i % 1_000 == 0 {
                    frames.borrow_mut().clear();
                }
            },
            |_, ()| frames.borrow_mut().push(black_box(&frame).to_vec()),
        ));
    }
    let (dropped_samples, dropped_records) = bench.stop();
    if dropped_samples + dropped_records > 0 {
        eprintln!(
            "hot path: the measured session dropped {dropped_samples} samples, {dropped_records} records"
        );
    }

    let event = Latency::of(event);
    let event_base = Latency::of(event_base);
    let audio = Latency::of(audio);
    let audio_base = Latency::of(audio_base);
    let row = |figure: &str, l: &Latency, base: &Latency| {
        Row::new(figure, l.summary(), format!("baseline {}", base.summary()))
            .ratio(l.p99 as f64 / base.p99.max(1) as f64)
            .goal(format!("p99 ≤ {}", ns(GOAL_P99_NS)), l.p99 <= GOAL_P99_NS)
    };
    let blocked = |l: &Latency| format!("{} of {}", l.blocked, l.calls);
    vec![
        row(
            "hot path: event call, writer busy (ratio: p99 vs baseline)",
            &event,
            &event_base,
        ),
        row(
            "hot path: 20 ms audio frame (16 kHz mono), writer busy",
            &audio,
            &audio_base,
        ),
        Row::new(
            format!("hot path: calls over {} (event, audio)", ns(BLOCKED_NS)),
            format!("{}, {}", blocked(&event), blocked(&audio)),
            format!(
                "baseline {}, {}",
                blocked(&event_base),
                blocked(&audio_base)
            ),
        ),
    ]
}
