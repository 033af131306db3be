//! Cost of the recording hot path while the background writers are busy compressing.
//!
//! Two parts: criterion's usual statistics per call, and a latency distribution
//! (p50 / p99 / max over 100 000 calls, each timed on its own) printed as
//! `hot_path/<call>: p50 … p99 … max …`. Each distribution call is timed with its arguments
//! built inside the timed region (the event's attribute map, the transcript's text). Around
//! each timed call (outside the timed region) `getrusage(RUSAGE_THREAD)` counts the thread's
//! voluntary context switches: a call that slept in the kernel (a contended lock, the
//! allocator's included) shows as one; involuntary ones (the scheduler preempting the
//! thread) are counted apart. Meanwhile `HOT_PATH_LOAD_SESSIONS` other sessions (default 4)
//! record incompressible audio flat out, so the writer threads compress, write and free
//! beside the measured calls.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calltape_recorder::{Attributes, Recorder, Session, SessionInfo, Speaker};
use criterion::{criterion_group, criterion_main, Criterion};

struct Bench {
    rt: tokio::runtime::Runtime,
    _rec: Recorder,
    session: Session,
    stop: Arc<AtomicBool>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn setup() -> Bench {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dest = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let rec = rt.block_on(async {
        Recorder::builder()
            .destination(format!("file://{}", dest.path().display()))
            .spool_dir(spool.path())
            .memory_budget(1 << 30)
            .queue_capacity(1 << 16)
            .retry_interval(None)
            .build()
            .await
            .unwrap()
    });
    let info = |id: &str| {
        SessionInfo::new(id)
            .track(Speaker::User, 16_000, 1)
            .track(Speaker::Agent, 16_000, 1)
    };
    let session = {
        let _g = rt.enter();
        rec.start_session(info("measured")).unwrap()
    };
    // the load: another call recording white noise (incompressible) flat out
    let load = {
        let _g = rt.enter();
        rec.start_session(info("load")).unwrap()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let loads = std::env::var("HOT_PATH_LOAD_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4u32);
    for n in 0..loads {
        let load = {
            let _g = rt.enter();
            rec.start_session(info(&format!("load-{n}"))).unwrap()
        };
        spawn_load(load, stop.clone(), rt.handle().clone(), n + 1);
    }
    drop(load);
    Bench {
        rt,
        _rec: rec,
        session,
        stop,
        _dirs: (dest, spool),
    }
}

/// Another call recording white noise (incompressible) flat out on its own thread.
fn spawn_load(load: Session, s2: Arc<AtomicBool>, handle: tokio::runtime::Handle, seed: u32) {
    std::thread::spawn(move || {
        let mut x: u32 = seed;
        let mut t = 0u64;
        while !s2.load(Ordering::Relaxed) {
            let frame: Vec<i16> = (0..320)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as i16
                })
                .collect();
            load.at(t).audio(2, &frame);
            t += 20_000_000;
            if t.is_multiple_of(2_000_000_000) {
                handle.block_on(load.drained());
            }
        }
    });
}

/// Context switches of the calling thread so far: (voluntary, involuntary).
fn context_switches() -> (i64, i64) {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    assert_eq!(rc, 0, "getrusage failed");
    (u.ru_nvcsw, u.ru_nivcsw)
}

fn distribution(b: &Bench, name: &str, mut call: impl FnMut(u64)) {
    const N: usize = 100_000;
    let mut ns = Vec::with_capacity(N);
    let (mut slept, mut slept_slow, mut preempted) = (0u32, 0u32, 0u32);
    for i in 0..N {
        let (v0, i0) = context_switches();
        let t0 = Instant::now();
        call(i as u64);
        let took = t0.elapsed().as_nanos() as u64;
        let (v1, i1) = context_switches();
        ns.push(took);
        if v1 > v0 {
            slept += 1;
            slept_slow += u32::from(took > 100_000);
        }
        preempted += u32::from(i1 > i0);
        if i % 2_000 == 1_999 {
            b.rt.block_on(b.session.drained());
        }
    }
    ns.sort_unstable();
    let p = |q: f64| ns[((N as f64 * q) as usize).min(N - 1)];
    println!(
        "hot_path/{name}: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns ({N} calls); \
         calls that slept (voluntary context switch): {slept} ({slept_slow} over 100 µs), \
         preempted: {preempted}",
        p(0.50),
        p(0.99),
        p(0.999),
        ns[N - 1]
    );
}

fn hot_path(c: &mut Criterion) {
    let b = setup();
    // let the load get going
    std::thread::sleep(Duration::from_millis(300));
    let frame = vec![1000i16; 320];
    let s = &b.session;

    distribution(&b, "event", |i| {
        let mut a = Attributes::new();
        a.insert("i".into(), i.into());
        s.event("agent_state_changed", a);
    });
    distribution(&b, "event_3_attributes", |i| {
        let mut a = Attributes::new();
        a.insert("old_state".into(), "listening".into());
        a.insert("new_state".into(), "thinking".into());
        a.insert("n".into(), i.into());
        s.event("agent_state_changed", a);
    });
    distribution(&b, "transcript", |_| {
        s.transcript(Speaker::User, "book a table for two", false);
    });
    distribution(&b, "audio_20ms_16k", |i| {
        s.at(i * 20_000_000).audio(1, black_box(&frame));
    });

    // criterion: only the calls are timed; draining the queue between batches is not
    let mut i = 0u64;
    let mut timed = |bench: &mut criterion::Bencher<'_>, call: &dyn Fn(u64)| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                if i.is_multiple_of(2_000) {
                    b.rt.block_on(s.drained());
                }
                let t0 = Instant::now();
                call(i);
                total += t0.elapsed();
            }
            total
        })
    };
    let mut g = c.benchmark_group("hot_path");
    g.bench_function("event", |bench| {
        timed(bench, &|_| {
            s.event("agent_state_changed", Attributes::new())
        })
    });
    g.bench_function("audio_20ms_16k", |bench| {
        timed(bench, &|i| s.at(i * 20_000_000).audio(1, black_box(&frame)))
    });
    g.finish();
    b.stop.store(true, Ordering::Relaxed);
    let st = s.status();
    println!(
        "hot_path: dropped during the bench: {} samples, {} records",
        st.dropped_samples, st.dropped_records
    );
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
