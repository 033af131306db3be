//! What live calls cost in real time: N sessions (live clock, default configuration, so
//! `sync_data` on) each recording, paced by the wall clock, a 20 ms frame on a user and an
//! agent track (16 kHz, real recorded human speech) and 30 events per second, for D seconds.
//! Prints the process's CPU time (user + system, `getrusage`) per call-minute over that
//! window, calls per core (60 s divided by it), what was dropped, how late the pacing ran,
//! and p50/p99/max of the record calls made during the window.
//!
//! The speech is the voice recordings of Debian's `alsa-utils` package
//! (`/usr/share/sounds/alsa/*.wav`, "Front Center", "Rear Left", …: a person speaking, 48 kHz
//! mono, about 11 s in all, taken down to 16 kHz here). Install it with
//! `apt-get install alsa-utils` (`.ci/run` lists it in APT_PACKAGES); without it the bench
//! stops with a message saying so. `CALLTAPE_SPEECH_DIR` points it at another directory of
//! 16-bit mono WAV files.
//!
//! Inside the timed CPU window: everything the process does — the writer threads (encoding,
//! writing, syncing), the tokio runtime, and the pacing thread that makes the calls (so the
//! figure errs on the high side). Outside: starting the sessions, the first
//! `CALLTAPE_LIVE_WARMUP_MS` (default 2000) of recording, finishing and uploading. Kernel
//! work done in other threads on the process's behalf (the filesystem's journal thread,
//! writeback workers) is not in `getrusage` and not counted. Each record call is timed on
//! its own (`Instant::now()` around it; an event's attribute map is built inside).
//!
//! `cargo bench -p calltape-recorder --bench live_calls` (200 calls, 20 s); set
//! `CALLTAPE_LIVE_CALLS` and `CALLTAPE_LIVE_SECS` to change either.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calltape_recorder::{Attributes, SessionInfo, Speaker};
use support::{cpu_time, env_or, file_recorder, runtime};

const RATE: usize = 16_000;
const FRAME: usize = RATE / 50;
/// Where Debian's `alsa-utils` puts its voice recordings.
const ALSA_SOUNDS: &str = "/usr/share/sounds/alsa";

/// The samples of a 16-bit PCM mono WAV file and its sample rate; `None` for anything else.
fn read_wav(path: &Path) -> Option<(u32, Vec<i16>)> {
    let mut r = hound::WavReader::open(path).ok()?;
    let spec = r.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 {
        return None;
    }
    let samples: Result<Vec<i16>, _> = r.samples::<i16>().collect();
    Some((spec.sample_rate, samples.ok()?))
}

/// Real speech at 16 kHz: every speech recording in the directory, one after the other
/// (48 kHz files averaged down three samples to one). Exits with a message if none is there.
fn speech() -> (String, Vec<i16>) {
    let dir = std::env::var_os("CALLTAPE_SPEECH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ALSA_SOUNDS));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                // alsa-utils' Noise.wav is a noise burst, not speech
                .filter(|p| p.file_stem().is_none_or(|s| s != "Noise"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let mut out = Vec::new();
    let mut used = 0;
    for p in &paths {
        match read_wav(p) {
            Some((16_000, s)) => out.extend_from_slice(&s),
            Some((48_000, s)) => out.extend(
                s.chunks_exact(3)
                    .map(|c| ((i32::from(c[0]) + i32::from(c[1]) + i32::from(c[2])) / 3) as i16),
            ),
            _ => continue,
        }
        used += 1;
    }
    if out.len() < RATE {
        eprintln!(
            "live_calls: no speech recordings (16-bit mono WAV, 16 or 48 kHz) in {}: install \
             Debian's alsa-utils package (`apt-get install alsa-utils`, which ships recordings \
             of a human voice in {ALSA_SOUNDS}) or set CALLTAPE_SPEECH_DIR",
            dir.display()
        );
        std::process::exit(2);
    }
    (format!("{used} recordings from {}", dir.display()), out)
}

/// Durations of record calls, in ns.
#[derive(Default)]
struct Times(Vec<u32>);

impl Times {
    fn add(&mut self, d: Duration) {
        self.0.push(d.as_nanos().min(u128::from(u32::MAX)) as u32);
    }

    fn summary(&mut self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0.sort_unstable();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q) as usize];
        format!(
            "p50 {} ns / p99 {} ns / max {} µs ({} calls)",
            at(0.5),
            at(0.99),
            self.0[self.0.len() - 1] / 1_000,
            self.0.len()
        )
    }
}

fn main() {
    let calls = env_or("CALLTAPE_LIVE_CALLS", 200) as usize;
    let secs = env_or("CALLTAPE_LIVE_SECS", 20);
    let warmup = Duration::from_millis(env_or("CALLTAPE_LIVE_WARMUP_MS", 2_000));
    let (source, speech) = speech();
    let rt = runtime();
    let dest = tempfile::tempdir().expect("temp dir");
    let spool = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let rec = file_recorder(dest.path(), spool.path()).await;
        let sessions: Vec<_> = (0..calls)
            .map(|i| {
                rec.start_session(
                    SessionInfo::new(format!("live-{i}"))
                        .track(Speaker::User, RATE as u32, 1)
                        .track(Speaker::Agent, RATE as u32, 1),
                )
                .expect("session")
            })
            .collect();
        let measuring = Arc::new(AtomicBool::new(false));
        let pacer = {
            let sessions = sessions.clone();
            let measuring = measuring.clone();
            std::thread::spawn(move || {
                let frames = speech.len() / FRAME;
                let (mut audio_t, mut event_t) = (Times::default(), Times::default());
                let mut late_max = Duration::ZERO;
                let start = Instant::now();
                let mut tick = 0u64;
                while start.elapsed() < warmup + Duration::from_secs(secs) + Duration::from_secs(1)
                {
                    let at = start + Duration::from_millis(20 * tick);
                    match at.checked_duration_since(Instant::now()) {
                        Some(wait) => std::thread::sleep(wait),
                        None => late_max = late_max.max(at.elapsed()),
                    }
                    let timed = measuring.load(Ordering::Relaxed);
                    for (i, s) in sessions.iter().enumerate() {
                        // each call is somewhere else in the speech; the agent half a loop on
                        let u = (tick as usize + i * 37) % frames * FRAME;
                        let a = (tick as usize + i * 37 + frames / 2) % frames * FRAME;
                        let t0 = Instant::now();
                        s.audio(1, &speech[u..u + FRAME]);
                        let t1 = Instant::now();
                        s.audio(2, &speech[a..a + FRAME]);
                        let t2 = Instant::now();
                        if timed {
                            audio_t.add(t1 - t0);
                            audio_t.add(t2 - t1);
                        }
                        // 30 events per second: 3 every 5 frames, spread over the calls
                        if (tick + i as u64) % 5 < 3 {
                            let t0 = Instant::now();
                            let mut a = Attributes::new();
                            a.insert("tick".into(), tick.into());
                            s.event("agent_state_changed", a);
                            if timed {
                                event_t.add(t0.elapsed());
                            }
                        }
                    }
                    tick += 1;
                }
                (audio_t, event_t, late_max)
            })
        };
        tokio::time::sleep(warmup).await;
        measuring.store(true, Ordering::Relaxed);
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
        measuring.store(false, Ordering::Relaxed);
        let (mut audio_t, mut event_t, late_max) = pacer.join().expect("pacer");
        let call_minutes = calls as f64 * wall.as_secs_f64() / 60.0;
        let (mut samples, mut records, mut bytes) = (0, 0, 0);
        for s in sessions {
            let report = s.finish().await.expect("finish");
            assert!(report.upload.is_uploaded(), "{report:?}");
            samples += report.dropped_samples;
            records += report.dropped_records;
            bytes += report.upload.bytes;
        }
        let per_minute = cpu.as_secs_f64() * 1e3 / call_minutes;
        println!("live_calls: speech: {source}");
        println!(
            "live_calls: {calls} calls for {:.1} s (real time): {:.0} ms CPU, {per_minute:.1} ms \
             CPU per call-minute ({:.0} calls per core); dropped {samples} samples, {records} \
             records; pacing at most {} ms late; {:.0} KiB archived per call-minute",
            wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e3,
            60_000.0 / per_minute,
            late_max.as_millis(),
            bytes as f64
                / 1024.0
                / (calls as f64 * (warmup.as_secs_f64() + secs as f64 + 1.0) / 60.0),
        );
        println!(
            "live_calls: record calls in the window: audio {}",
            audio_t.summary()
        );
        println!(
            "live_calls: record calls in the window: event {}",
            event_t.summary()
        );
        rec.shutdown(Duration::from_secs(10)).await;
    });
}
