//! What live calls cost in real time: N sessions (live clock, default configuration) each
//! recording, paced by the wall clock, a 20 ms frame on a user and an agent track (16 kHz,
//! a tone plus noise, so the codec has work) and 30 events per second, for D seconds. Prints
//! the process's CPU time (user + system, `getrusage`) per call-minute over that window (the
//! pacing thread that makes the calls included), and what was dropped.
//!
//! `cargo bench -p calltape-recorder --bench live_calls` (100 calls, 20 s); set
//! `CALLTAPE_LIVE_CALLS` and `CALLTAPE_LIVE_SECS` to change either.

mod support;

use std::time::{Duration, Instant};

use calltape_recorder::{Attributes, SessionInfo, Speaker};
use support::{cpu_time, env_or, file_recorder, runtime};

/// One second of a 220 Hz tone with xorshift noise, 16 kHz.
fn signal(seed: u32) -> Vec<i16> {
    let mut x = seed | 1;
    (0..16_000)
        .map(|n| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let tone = (n as f64 * 220.0 * std::f64::consts::TAU / 16_000.0).sin() * 6_000.0;
            (tone + f64::from(x % 800) - 400.0) as i16
        })
        .collect()
}

fn main() {
    let calls = env_or("CALLTAPE_LIVE_CALLS", 100) as usize;
    let secs = env_or("CALLTAPE_LIVE_SECS", 20);
    let rt = runtime();
    let dest = tempfile::tempdir().expect("temp dir");
    let spool = tempfile::tempdir().expect("temp dir");
    let (user, agent) = (signal(7), signal(11));
    rt.block_on(async {
        let rec = file_recorder(dest.path(), spool.path()).await;
        let sessions: Vec<_> = (0..calls)
            .map(|i| {
                rec.start_session(
                    SessionInfo::new(format!("live-{i}"))
                        .track(Speaker::User, 16_000, 1)
                        .track(Speaker::Agent, 16_000, 1),
                )
                .expect("session")
            })
            .collect();
        let pacer = {
            let sessions = sessions.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut tick = 0u64;
                while start.elapsed() < Duration::from_secs(secs + 1) {
                    let at = start + Duration::from_millis(20 * tick);
                    if let Some(wait) = at.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let first = (tick as usize % 50) * 320;
                    for (i, s) in sessions.iter().enumerate() {
                        s.audio(1, &user[first..first + 320]);
                        s.audio(2, &agent[first..first + 320]);
                        // 30 events per second: 3 every 5 frames, spread over the calls
                        if (tick + i as u64) % 5 < 3 {
                            let mut a = Attributes::new();
                            a.insert("tick".into(), tick.into());
                            s.event("agent_state_changed", a);
                        }
                    }
                    tick += 1;
                }
            })
        };
        // measure one second in, for `secs`
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
        pacer.join().expect("pacer");
        let call_minutes = calls as f64 * wall.as_secs_f64() / 60.0;
        let (mut samples, mut records) = (0, 0);
        for s in sessions {
            let report = s.finish().await.expect("finish");
            assert!(report.upload.is_uploaded(), "{report:?}");
            samples += report.dropped_samples;
            records += report.dropped_records;
        }
        let per_minute = cpu.as_secs_f64() * 1e3 / call_minutes;
        println!(
            "live_calls: {calls} calls for {:.1} s: {:.0} ms CPU, {per_minute:.1} ms CPU per \
             call-minute ({:.0} calls per core); dropped {samples} samples, {records} records",
            wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e3,
            60_000.0 / per_minute
        );
        rec.shutdown(Duration::from_secs(10)).await;
    });
}
