//! The e2e gap measured from the audio itself (SPEC §9, last paragraph): from the end of the
//! caller's last sound to the start of the agent's first sound, on the session clock. When it
//! disagrees with the reported breakdown, the metrics (or the clocks) are wrong.

use calltape_format::{Archive, Speaker, TurnSummary};

use crate::call::audio_range;
use crate::error::Result;
use crate::source::ArchiveSource;

/// Analysis frame: 10 ms.
const FRAME_NS: u64 = 10_000_000;
/// A frame is sound when its RMS is above this (about −40 dBFS).
const ACTIVE_RMS: f64 = 328.0;
/// Audio before the reported end of user speech that is looked at.
const BEFORE_NS: u64 = 2_000_000_000;
/// Audio after the reported agent start that is looked at.
const AFTER_NS: u64 = 3_000_000_000;

/// One turn's gap as heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioGap {
    /// End of the last user sound before the agent's first sound (session ns).
    pub user_end_ns: u64,
    /// Start of the agent's first sound after the reported end of user speech.
    pub agent_start_ns: u64,
}

impl AudioGap {
    pub fn gap_ns(&self) -> i64 {
        self.agent_start_ns as i64 - self.user_end_ns as i64
    }
}

/// Per-frame "is there sound" flags for `[from, to)` of the first track with `role`.
async fn activity(
    src: &ArchiveSource,
    archive: &Archive,
    role: Speaker,
    from: u64,
    to: u64,
) -> Result<Option<Vec<bool>>> {
    let Some(track) = archive.header().tracks.iter().find(|t| t.role == role) else {
        return Ok(None);
    };
    let samples = audio_range(src, archive, track.id, from, to).await?;
    let ch = usize::from(track.channels.max(1));
    let per_frame = (u64::from(track.sample_rate) * FRAME_NS / 1_000_000_000).max(1) as usize * ch;
    Ok(Some(
        samples
            .chunks(per_frame)
            .map(|f| {
                let sum: f64 = f.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
                (sum / f.len() as f64).sqrt() > ACTIVE_RMS
            })
            .collect(),
    ))
}

/// Measures the gap of `turn` from the audio, or `None` when the call has no audio for it
/// or no sound is found where it should be.
pub async fn measure(
    src: &ArchiveSource,
    archive: &Archive,
    turn: &TurnSummary,
) -> Result<Option<AudioGap>> {
    let (Some(user_end), Some(agent_start)) = (
        turn.latency.user_speech_end_ns,
        turn.latency.agent_audio_start_ns,
    ) else {
        return Ok(None);
    };
    // align the window to whole frames from 0 so frames line up on both tracks
    let from = user_end.saturating_sub(BEFORE_NS) / FRAME_NS * FRAME_NS;
    let to = (agent_start.max(user_end) + AFTER_NS).min(archive.summary.duration_ns.max(from));
    if to <= from {
        return Ok(None);
    }
    let (Some(user), Some(agent)) = (
        activity(src, archive, Speaker::User, from, to).await?,
        activity(src, archive, Speaker::Agent, from, to).await?,
    ) else {
        return Ok(None);
    };
    let frame_start = |i: usize| from + i as u64 * FRAME_NS;
    // the agent's first sound from shortly before the reported end of user speech on
    let search_from = user_end.saturating_sub(500_000_000);
    let Some(a) = agent
        .iter()
        .enumerate()
        .position(|(i, &on)| on && frame_start(i) >= search_from)
    else {
        return Ok(None);
    };
    let Some(u) = user[..a.min(user.len())].iter().rposition(|&on| on) else {
        return Ok(None);
    };
    Ok(Some(AudioGap {
        user_end_ns: frame_start(u + 1),
        agent_start_ns: frame_start(a),
    }))
}
