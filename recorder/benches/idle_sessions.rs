//! What idle calls cost in real time: N sessions (live clock, default configuration, a user
//! and an agent track) that recorded one event and then nothing, left open for D seconds of
//! wall time. Prints the process's CPU time (user + system, `getrusage`) per session-minute
//! over that window, so the cost the writer's wake-ups add per open call shows directly, and
//! the process's peak RSS.
//!
//! `cargo bench -p calltape-recorder --bench idle_sessions` (200 sessions, 20 s); set
//! `CALLTAPE_IDLE_SESSIONS` and `CALLTAPE_IDLE_SECS` to change either.

mod support;

use std::time::{Duration, Instant};

use calltape_recorder::{Attributes, SessionInfo, Speaker};
use support::{cpu_time, env_or, file_recorder, runtime, rusage};

fn main() {
    let sessions = env_or("CALLTAPE_IDLE_SESSIONS", 200) as usize;
    let secs = env_or("CALLTAPE_IDLE_SECS", 20);
    let rt = runtime();
    let dest = tempfile::tempdir().expect("temp dir");
    let spool = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let rec = file_recorder(dest.path(), spool.path()).await;
        let open: Vec<_> = (0..sessions)
            .map(|i| {
                let s = rec
                    .start_session(
                        SessionInfo::new(format!("idle-{i}"))
                            .track(Speaker::User, 16_000, 1)
                            .track(Speaker::Agent, 16_000, 1),
                    )
                    .expect("session");
                s.event("call_started", Attributes::new());
                s
            })
            .collect();
        // let the first chunks close, then measure only the idle time
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
        let session_minutes = sessions as f64 * wall.as_secs_f64() / 60.0;
        println!(
            "idle_sessions: {sessions} sessions for {:.1} s: {:.1} ms CPU, {:.3} ms CPU per \
             session-minute, peak RSS {:.1} MiB",
            wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3 / session_minutes,
            rusage().ru_maxrss as f64 / 1024.0
        );
        for s in open {
            let report = s.finish().await.expect("finish");
            assert!(report.upload.is_uploaded(), "{report:?}");
        }
        rec.shutdown(Duration::from_secs(10)).await;
    });
}
