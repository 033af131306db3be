//! The e2e gap measured from the audio itself (SPEC §9 "Speech heard in the audio"): the turn's
//! window of both tracks is read once, and the rules of `calltape_format::call::activity`
//! find the speech and the gap. `inspect --audio-check` and the TUI's "heard in audio" line
//! both come from here.

use calltape_format::call::activity::{
    gap_window, measure_gap, samples_per_frame, segments, EnvelopeBuilder, MeasuredGap, Segment,
    FRAME_NS,
};
use calltape_format::{Archive, Speaker, TurnSummary};

use crate::call::stream_audio;
use crate::error::Result;
use crate::source::ArchiveSource;

/// Speech on the first track with `role` in `[from, to)` (`from` on the frame grid), or `None`
/// when the call has no such track.
pub async fn speech(
    src: &ArchiveSource,
    archive: &Archive,
    role: Speaker,
    from: u64,
    to: u64,
) -> Result<Option<Vec<Segment>>> {
    let Some(track) = archive.header().tracks.iter().find(|t| t.role == role) else {
        return Ok(None);
    };
    let mut env = EnvelopeBuilder::new(samples_per_frame(
        track.sample_rate,
        track.channels,
        FRAME_NS,
    ));
    stream_audio(src, archive, track.id, from, to, |s| {
        env.push(s);
        Ok(())
    })
    .await?;
    Ok(Some(segments(&env.finish(), from, FRAME_NS)))
}

/// Measures the gap of `turn` from the audio, or `None` when the call has no audio for it
/// (no user or no agent track, or no reported end of the caller's speech to look around).
pub async fn measure(
    src: &ArchiveSource,
    archive: &Archive,
    turn: &TurnSummary,
) -> Result<Option<MeasuredGap>> {
    let l = &turn.latency;
    let Some((from, to)) = gap_window(
        l.user_speech_end_ns,
        l.agent_audio_start_ns,
        archive.summary.duration_ns,
    ) else {
        return Ok(None);
    };
    let (Some(user), Some(agent)) = (
        speech(src, archive, Speaker::User, from, to).await?,
        speech(src, archive, Speaker::Agent, from, to).await?,
    ) else {
        return Ok(None);
    };
    Ok(Some(measure_gap(&user, &agent, l.user_speech_end_ns)))
}
