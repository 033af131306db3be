//! Where a Pipecat call's recording (the WAV of Pipecat's `AudioBufferProcessor`: stereo, user
//! left, bot right) lies on the session clock, and how far its clock strays from the frames'.
//!
//! Sample 0 is the first audio the `AudioBufferProcessor` got once recording: recording starts
//! at the push of its `AudioBufferStartRecordingFrame`, else when it passes the `StartFrame` on
//! (`auto_start_recording`), and audio flows from the client's connection
//! (`ClientConnectedFrame`) on; the later of the two (see [`super::whisker`]). The processor
//! fills wall-clock gaps with silence only at some points, so the file's clock can run short or
//! long against the frames'. That is measured, not assumed: the bot's speech onsets in the file (speech found by the format's one
//! rule, [`calltape_format::call::activity`]) are matched to the `playback` starts
//! (`BotStartedSpeakingFrame`), and the offsets at the first and last match give the stretch.

use calltape_format::call::activity::ActivityTracker;
use calltape_format::{Record, Stage, TimedRecord};
use serde_json::json;

use crate::audio::AudioDecoder;
use crate::{ImportError, Warnings};

/// An onset further than this from a playback start is not its match (1 s).
const MATCH_NS: i64 = 1_000_000_000;
/// A stretch or an offset beyond this is warned about (the format's mismatch threshold).
const NOTICE_NS: i64 = calltape_format::call::latency::MISMATCH_NS;

/// What was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Playback starts matched to a speech onset in the file.
    pub matched: usize,
    pub playbacks: usize,
    /// Onset minus playback start at the first and the last match (ns).
    pub first_offset_ns: i64,
    pub last_offset_ns: i64,
    /// Session time between the first and the last matched playback start (ns).
    pub span_ns: i64,
}

impl Alignment {
    /// How much the file's clock gained (positive) or lost over the matched span (ns).
    pub fn drift_ns(&self) -> i64 {
        self.last_offset_ns - self.first_offset_ns
    }
}

/// Measures `audio` (placed with sample 0 at session ns `start_ns`) against the playback
/// stages among `records`, and notes the result in `notes` (an `audio_alignment` event), and
/// in `warnings` when the offset or the stretch is beyond 250 ms or nothing matched.
pub fn measure(
    mut audio: Box<dyn AudioDecoder>,
    start_ns: i64,
    records: &[TimedRecord],
    notes: &mut Vec<TimedRecord>,
    warnings: &mut Warnings,
) -> Result<Option<Alignment>, ImportError> {
    let format = audio.format();
    let channels = usize::from(format.channels.max(1));
    let bot = channels.min(2) - 1;
    let Some(mut tracker) = ActivityTracker::new(format.sample_rate, 1) else {
        return Ok(None);
    };
    let mut mono = Vec::new();
    while let Some(block) = audio.next_block()? {
        mono.clear();
        mono.extend(block.samples.chunks_exact(channels).map(|f| f[bot]));
        tracker.push(block.first_sample, &mono);
    }
    let onsets: Vec<i64> = tracker
        .segments()
        .iter()
        .map(|s| (s.start_ns as i64).saturating_add(start_ns))
        .collect();
    let mut playbacks: Vec<i64> = records
        .iter()
        .filter_map(|r| match &r.record {
            Record::StageTiming(st) if st.stage == Stage::Playback => Some(st.start_ns as i64),
            _ => None,
        })
        .collect();
    playbacks.sort_unstable();
    // each playback start is matched near where the previous match says it should be, so a
    // clock that drifts steadily is followed
    let mut offsets: Vec<(i64, i64)> = Vec::new();
    for &p in &playbacks {
        let expected = p + offsets.last().map_or(0, |m| m.1);
        let Some(&o) = onsets.iter().min_by_key(|&&o| (o - expected).abs()) else {
            break;
        };
        if (o - expected).abs() <= MATCH_NS {
            offsets.push((p, o - p));
        }
    }
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        warnings.general(
            "audio_alignment",
            format!(
                "no bot speech in the recording lies within 1 s of any of the {} \
                 BotStartedSpeaking frames: the recording's start may be misplaced (check \
                 --audio-offset)",
                playbacks.len()
            ),
            json!({"start_ns": start_ns, "playbacks": playbacks.len()}),
        );
        return Ok(None);
    };
    let a = Alignment {
        matched: offsets.len(),
        playbacks: playbacks.len(),
        first_offset_ns: first.1,
        last_offset_ns: last.1,
        span_ns: last.0 - first.0,
    };
    let details = json!({
        "start_ns": start_ns,
        "matched": a.matched,
        "playbacks": a.playbacks,
        "first_offset_ns": a.first_offset_ns,
        "last_offset_ns": a.last_offset_ns,
        "drift_ns": a.drift_ns(),
        "span_ns": a.span_ns,
    });
    let off = a.first_offset_ns.abs().max(a.last_offset_ns.abs());
    let message = format!(
        "the recording's bot speech starts {:.0} ms (first) to {:.0} ms (last) after the \
         BotStartedSpeaking frames, {} of {} matched: its clock {} {:.0} ms over {:.1} s",
        a.first_offset_ns as f64 / 1e6,
        a.last_offset_ns as f64 / 1e6,
        a.matched,
        a.playbacks,
        if a.drift_ns() >= 0 { "gains" } else { "loses" },
        a.drift_ns().abs() as f64 / 1e6,
        a.span_ns as f64 / 1e9,
    );
    if off > NOTICE_NS || a.drift_ns().abs() > NOTICE_NS {
        warnings.general("audio_alignment", message.clone(), details.clone());
    }
    let mut attributes = calltape_format::Attributes::new();
    attributes.insert("message".into(), json!(message));
    if let serde_json::Value::Object(d) = details {
        attributes.extend(d);
    }
    notes.push(TimedRecord::new(
        start_ns.max(0) as u64,
        Record::Event(calltape_format::Event {
            turn: None,
            name: "audio_alignment".into(),
            attributes,
        }),
    ));
    Ok(Some(a))
}
