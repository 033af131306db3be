//! Playing a turn's audio through an external player (`$CALLTAPE_PLAYER`, else paplay, aplay,
//! ffplay or afplay from PATH), fed a WAV written with hound; or writing that WAV to disk.
//! The player is a child process, so playing never blocks the UI; it is killed on stop/quit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use calltape_format::Speaker;

use crate::call::stream_audio;
use crate::error::{AppError, Result};

use super::opening::LoadedCall;

/// An audio player command: the WAV path is appended as the last argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerCmd {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl PlayerCmd {
    pub fn name(&self) -> String {
        self.program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// `$CALLTAPE_PLAYER` (a program, optionally followed by arguments), else the first of
/// paplay, aplay, ffplay, afplay found on PATH.
pub fn find_player() -> Option<PlayerCmd> {
    if let Ok(cmd) = std::env::var("CALLTAPE_PLAYER") {
        let mut words = cmd.split_whitespace();
        if let Some(program) = words.next() {
            return Some(PlayerCmd {
                program: PathBuf::from(program),
                args: words.map(str::to_string).collect(),
            });
        }
    }
    let candidates: [(&str, &[&str]); 4] = [
        ("paplay", &[]),
        ("aplay", &["-q"]),
        ("ffplay", &["-nodisp", "-autoexit", "-loglevel", "quiet"]),
        ("afplay", &[]),
    ];
    let path = std::env::var_os("PATH")?;
    for (name, args) in candidates {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(PlayerCmd {
                    program: p,
                    args: args.iter().map(|s| s.to_string()).collect(),
                });
            }
        }
    }
    None
}

/// Which audio of a turn to play or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracks {
    User,
    Agent,
    /// Stereo: the user on the left, the agent on the right.
    Both,
}

impl Tracks {
    pub fn label(self) -> &'static str {
        match self {
            Tracks::User => "user",
            Tracks::Agent => "agent",
            Tracks::Both => "user+agent",
        }
    }
}

/// A player process running on a WAV file; both go away on drop.
#[derive(Debug)]
pub struct Playing {
    child: Child,
    wav: PathBuf,
    pub label: String,
}

impl Playing {
    pub fn spawn(player: &PlayerCmd, wav: PathBuf, label: String) -> Result<Playing> {
        let child = Command::new(&player.program)
            .args(&player.args)
            .arg(&wav)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| AppError::Io {
                what: format!("start audio player {}", player.program.display()),
                source: e,
            });
        match child {
            Ok(child) => Ok(Playing { child, wav, label }),
            Err(e) => {
                let _ = std::fs::remove_file(&wav);
                Err(e)
            }
        }
    }

    /// True once the player exited by itself.
    pub fn finished(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Playing {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.wav);
    }
}

fn track_of(call: &LoadedCall, role: Speaker) -> Option<calltape_format::Track> {
    call.archive
        .header()
        .tracks
        .iter()
        .find(|t| t.role == role)
        .cloned()
}

/// Writes `[from_ns, to_ns)` of the chosen tracks as a 16-bit WAV, streaming a few seconds at
/// a time (memory stays bounded whatever the range).
pub async fn write_wav(
    call: &LoadedCall,
    tracks: Tracks,
    from_ns: u64,
    to_ns: u64,
    path: &Path,
) -> Result<()> {
    let io = |e: hound::Error| AppError::Other(format!("write {}: {e}", path.display()));
    let user = track_of(call, Speaker::User);
    let agent = track_of(call, Speaker::Agent);
    let (src, archive) = (&call.source, &call.archive);
    match tracks {
        Tracks::User | Tracks::Agent => {
            let t = if tracks == Tracks::User { user } else { agent }.ok_or_else(|| {
                AppError::Usage(format!("this call has no {} audio track", tracks.label()))
            })?;
            let spec = hound::WavSpec {
                channels: u16::from(t.channels.max(1)),
                sample_rate: t.sample_rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(path, spec).map_err(io)?;
            stream_audio(src, archive, t.id, from_ns, to_ns, |s| {
                for &x in s {
                    w.write_sample(x).map_err(io)?;
                }
                Ok(())
            })
            .await?;
            w.finalize().map_err(io)
        }
        Tracks::Both => {
            let (Some(u), Some(a)) = (user, agent) else {
                return Err(AppError::Usage(
                    "this call lacks a user or an agent audio track".into(),
                ));
            };
            let rate = u.sample_rate.max(a.sample_rate).max(1);
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(path, spec).map_err(io)?;
            const STEP: u64 = 5_000_000_000;
            let mut t = from_ns;
            while t < to_ns {
                let end = (t + STEP).min(to_ns);
                let left = mono(
                    crate::call::audio_range(src, archive, u.id, t, end).await?,
                    u.channels,
                );
                let right = mono(
                    crate::call::audio_range(src, archive, a.id, t, end).await?,
                    a.channels,
                );
                let n =
                    (crate::call::sample_at(end, rate) - crate::call::sample_at(t, rate)) as usize;
                for i in 0..n {
                    w.write_sample(resampled(&left, i, u.sample_rate, rate))
                        .map_err(io)?;
                    w.write_sample(resampled(&right, i, a.sample_rate, rate))
                        .map_err(io)?;
                }
                t = end;
            }
            w.finalize().map_err(io)
        }
    }
}

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

/// Sample `i` of a `to`-Hz stream taken from a `from`-Hz one (nearest sample).
fn resampled(s: &[i16], i: usize, from: u32, to: u32) -> i16 {
    let j = if from == to {
        i
    } else {
        (i as u64 * u64::from(from) / u64::from(to.max(1))) as usize
    };
    s.get(j).copied().unwrap_or(0)
}
