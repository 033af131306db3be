//! What one long session keeps in memory. A counting allocator measures the heap bytes live
//! in the process (a deterministic quantity, unlike RSS or time) while a session records a
//! busy call on a manual clock (5 minutes; `SESSION_MEMORY_MINUTES` to change): both tracks
//! of 16 kHz audio in 20 ms frames, 30 events per second, and a turn every 6 s with
//! transcripts and stage timings. After every recorded minute the queue is drained and the
//! live bytes sampled; what a session retains must not grow with the call's length beyond
//! the small per-turn and per-chunk entries the summary and the index need. The open chunks
//! must be charged to the memory budget, and released when the archive closes.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use calltape_recorder::{Attributes, Recorder, Session, Speaker, Stage};
use common::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Resident set size of the process (printed for comparison, never asserted: it depends on
/// the allocator and the machine).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// A frame of speech-like signal (a tone whose pitch and loudness move, plus noise): the
/// codec and the activity tracker see what they would see on a real call.
fn frame(track: u16, n: u64, seed: &mut u32) -> Vec<i16> {
    (0..320u64)
        .map(|i| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            let s = (n * 320 + i) as f64;
            let pitch = 120.0 + 40.0 * f64::from(track) + 30.0 * (s / 16_000.0).sin();
            let tone = (s * pitch * std::f64::consts::TAU / 16_000.0).sin() * 6_000.0;
            (tone + f64::from((*seed % 600) as i16 - 300)) as i16
        })
        .collect()
}

/// 7 s of frames per track, made once and looped (making them per call would cost the test
/// more than recording them).
fn frames() -> [Vec<Vec<i16>>; 2] {
    let mut seed = 0x9e37_79b9u32;
    [1u16, 2].map(|track| (0..350).map(|n| frame(track, n, &mut seed)).collect())
}

/// Records second `sec` of the call: audio on both tracks, 30 events, and the turn's records.
fn record_second(s: &Session, sec: u64, frames: &[Vec<Vec<i16>>; 2]) {
    let turn = (sec / 6 + 1) as u32;
    let in_turn = sec % 6;
    let t0 = sec * 1_000 * MS;
    if in_turn == 0 {
        s.at(t0).turn_start(turn, Speaker::User);
    }
    for f in 0..50u64 {
        let t = t0 + f * 20 * MS;
        let n = sec * 50 + f;
        let looped = (n % 350) as usize;
        s.at(t).audio(1, &frames[0][looped]);
        s.at(t).audio(2, &frames[1][looped]);
        if f % 5 < 3 {
            let mut a = Attributes::new();
            a.insert("old_state".into(), "listening".into());
            a.insert("new_state".into(), "thinking".into());
            a.insert("n".into(), n.into());
            s.at(t).event("agent_state_changed", a);
        }
    }
    match in_turn {
        2 => {
            s.at(t0 + 900 * MS).transcript_in(
                turn,
                Speaker::User,
                format!("I would like to move my appointment number {turn} to Friday"),
                true,
            );
            let mut stt = s.at(t0).stage(turn, Stage::Stt);
            stt.model("nova-3", "deepgram");
            stt.end_at(t0 + 950 * MS);
        }
        3 => {
            let mut llm = s.at(t0).stage(turn, Stage::Llm);
            llm.first_token_at(t0 + 300 * MS);
            llm.tokens(1_200, 80);
            llm.model("gpt-4o-mini", "openai");
            llm.attribute("temperature", 0.3);
            llm.end_at(t0 + 700 * MS);
            let mut tts = s.at(t0 + 400 * MS).stage(turn, Stage::Tts);
            tts.first_byte_at(t0 + 550 * MS);
            tts.characters(90);
            tts.end_at(t0 + 900 * MS);
        }
        4 => s.at(t0 + 100 * MS).transcript_in(
            turn,
            Speaker::Agent,
            "Sure, I moved it to Friday at ten. Is there anything else I can do for you?",
            true,
        ),
        5 => s.at(t0 + 900 * MS).turn_end(turn),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_sessions_retained_memory_stays_bounded() {
    // 5 minutes keep the test short; SESSION_MEMORY_MINUTES=10 gives BENCHMARKS.md's figure
    let minutes: u64 = std::env::var("SESSION_MEMORY_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(5)
        .max(4);
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(spool.path())
        .retry_interval(None)
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("long-call")).unwrap();
    let frames = frames();
    let mut samples = Vec::new();
    let mut rss = Vec::new();
    let mut charged = Vec::new();
    for minute in 0..minutes {
        for sec in minute * 60..(minute + 1) * 60 {
            record_second(&s, sec, &frames);
            s.drained().await;
        }
        samples.push(live());
        rss.push(rss_kib());
        // the queue is drained: what the budget holds now is the session's open chunks
        charged.push(rec.health().queued_bytes);
    }
    let per_minute: Vec<isize> = samples.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "live heap after each recorded minute: {samples:?} bytes; growth per minute: \
         {per_minute:?}; RSS: {rss:?} KiB; charged to the memory budget (open chunks): \
         {charged:?} bytes"
    );
    // the open chunks (a flush interval of audio on two tracks, and the control records) are
    // counted in the memory budget
    for &c in &charged {
        assert!(
            (2 * 2 * 16_000..256 * 1024).contains(&c),
            "open chunks charged: {charged:?}"
        );
    }
    // the first minute pays for warm-up (queues, compressors, buffers); from then on a minute
    // of this call may add its 10 turns and 180 chunk index entries, not its records or audio
    let growth = (samples[minutes as usize - 1] - samples[1]) / (minutes as isize - 2);
    println!("mean growth per minute after the first: {growth} bytes");
    assert!(
        growth < 48 * 1024,
        "a session keeps {growth} bytes more per recorded minute: {per_minute:?}"
    );
    let report = s.finish().await.unwrap();
    assert!(report.upload.is_uploaded(), "{report:?}");
    assert_eq!((report.dropped_samples, report.dropped_records), (0, 0));
    assert_eq!(
        rec.health().queued_bytes,
        0,
        "a closed archive's chunks are no longer charged"
    );
    let rb = read_back(&std::fs::read(dest.path().join(&report.upload.key)).unwrap());
    assert_eq!(rb.archive.summary.turns.len(), minutes as usize * 10);
    assert_eq!(
        rb.archive.summary.totals.audio_frames.get(&1),
        Some(&(minutes * 60 * 16_000))
    );
}
