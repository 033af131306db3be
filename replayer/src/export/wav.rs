//! WAV export: one track (mono as recorded) or both as stereo (user left, agent right), on the
//! session clock with recorded silence kept as zeros. Streamed chunk by chunk (stereo in
//! windows of a few seconds), so memory stays bounded whatever the call length.

use std::path::Path;

use calltape_format::{Archive, Speaker, Track};

use crate::call::{sample_at, stream_audio};
use crate::error::{AppError, Result};
use crate::source::ArchiveSource;

/// Which audio goes into the file (or to the player).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrackChoice {
    User,
    Agent,
    /// Two channels: user left, agent right.
    Stereo,
}

impl TrackChoice {
    pub fn label(self) -> &'static str {
        match self {
            TrackChoice::User => "user",
            TrackChoice::Agent => "agent",
            TrackChoice::Stereo => "user+agent",
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavWritten {
    pub sample_rate: u32,
    pub channels: u16,
    /// Samples per channel.
    pub frames: u64,
}

/// Stereo is assembled in windows of this many seconds.
const STEREO_WINDOW_S: u64 = 5;

/// The first track with `role`, or an error naming the tracks there are.
pub fn track_for(archive: &Archive, role: Speaker) -> Result<&Track> {
    archive
        .header()
        .tracks
        .iter()
        .find(|t| t.role == role)
        .ok_or_else(|| {
            AppError::Usage(format!(
                "this call has no {role} audio track (tracks: {})",
                crate::call::describe_tracks(archive)
            ))
        })
        .and_then(crate::call::playable)
}

fn create(
    path: &Path,
    spec: hound::WavSpec,
) -> Result<hound::WavWriter<std::io::BufWriter<std::fs::File>>> {
    hound::WavWriter::create(path, spec).map_err(|e| wav_err(path, e))
}

fn wav_err(path: &Path, e: hound::Error) -> AppError {
    AppError::Other(format!("writing {}: {e}", path.display()))
}

/// Writes `[from_ns, to_ns)` of the chosen audio to `path`. `progress` is told samples
/// per channel as they are written. On an error the partial file is removed.
pub async fn write_wav(
    src: &ArchiveSource,
    archive: &Archive,
    choice: TrackChoice,
    from_ns: u64,
    to_ns: u64,
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WavWritten> {
    let mut created = false;
    let range = (from_ns, to_ns);
    let written = write_wav_file(src, archive, choice, range, path, progress, &mut created).await;
    if written.is_err() && created {
        let _ = std::fs::remove_file(path);
    }
    written
}

async fn write_wav_file(
    src: &ArchiveSource,
    archive: &Archive,
    choice: TrackChoice,
    (from_ns, to_ns): (u64, u64),
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
    created: &mut bool,
) -> Result<WavWritten> {
    match choice {
        TrackChoice::User | TrackChoice::Agent => {
            let role = if choice == TrackChoice::User {
                Speaker::User
            } else {
                Speaker::Agent
            };
            let track = track_for(archive, role)?.clone();
            let spec = hound::WavSpec {
                channels: u16::from(track.channels.max(1)),
                sample_rate: track.sample_rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = create(path, spec)?;
            *created = true;
            let ch = u64::from(spec.channels);
            let frames = stream_audio(src, archive, track.id, from_ns, to_ns, |samples| {
                for &s in samples {
                    w.write_sample(s).map_err(|e| wav_err(path, e))?;
                }
                progress(samples.len() as u64 / ch);
                Ok(())
            })
            .await?;
            w.finalize().map_err(|e| wav_err(path, e))?;
            Ok(WavWritten {
                sample_rate: spec.sample_rate,
                channels: spec.channels,
                frames,
            })
        }
        TrackChoice::Stereo => {
            let user = track_for(archive, Speaker::User)?.clone();
            let agent = track_for(archive, Speaker::Agent)?.clone();
            // tracks of different rates meet at the higher one (nearest sample); tracks of
            // several channels are mixed down to one
            let rate = user.sample_rate.max(agent.sample_rate).max(1);
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = create(path, spec)?;
            *created = true;
            let first = sample_at(from_ns, rate);
            let end = sample_at(to_ns, rate).max(first);
            let window = STEREO_WINDOW_S * u64::from(rate);
            // ns at which sample n starts, rounded up so that sample_at() gives n back
            let ns_of = |n: u64| (u128::from(n) * 1_000_000_000).div_ceil(u128::from(rate)) as u64;
            let mut n = first;
            while n < end {
                let m = (n + window).min(end);
                let (a, b) = (ns_of(n), ns_of(m));
                let left = mono(
                    crate::call::audio_range(src, archive, user.id, a, b).await?,
                    user.channels,
                );
                let right = mono(
                    crate::call::audio_range(src, archive, agent.id, a, b).await?,
                    agent.channels,
                );
                for i in 0..(m - n) as usize {
                    w.write_sample(resampled(&left, i, user.sample_rate, rate))
                        .map_err(|e| wav_err(path, e))?;
                    w.write_sample(resampled(&right, i, agent.sample_rate, rate))
                        .map_err(|e| wav_err(path, e))?;
                }
                progress(m - n);
                n = m;
            }
            w.finalize().map_err(|e| wav_err(path, e))?;
            Ok(WavWritten {
                sample_rate: rate,
                channels: 2,
                frames: end - first,
            })
        }
    }
}

/// Interleaved samples of `channels` channels mixed down to one.
fn mono(samples: Vec<i16>, channels: u8) -> Vec<i16> {
    let ch = usize::from(channels.max(1));
    if ch == 1 {
        return samples;
    }
    samples
        .chunks(ch)
        .map(|f| (f.iter().map(|&x| i32::from(x)).sum::<i32>() / ch as i32) as i16)
        .collect()
}

/// Sample `i` of a `to`-Hz stream taken from a `from`-Hz one (nearest earlier sample).
fn resampled(s: &[i16], i: usize, from: u32, to: u32) -> i16 {
    let j = if from == to {
        i
    } else {
        (i as u64 * u64::from(from) / u64::from(to.max(1))) as usize
    };
    s.get(j).copied().unwrap_or(0)
}
