//! Playing a turn's audio through an external player (`$CALLTAPE_PLAYER`, else paplay, aplay,
//! ffplay or afplay from PATH), fed a WAV written with hound; or writing that WAV to disk.
//! The player is a child process, so playing never blocks the UI; it is killed on stop/quit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::error::{AppError, Result};
use crate::export::wav::TrackChoice;

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

/// Writes `[from_ns, to_ns)` of the chosen tracks as a 16-bit WAV: the same file `calltape
/// export --wav` writes.
pub async fn write_wav(
    call: &LoadedCall,
    tracks: TrackChoice,
    from_ns: u64,
    to_ns: u64,
    path: &Path,
) -> Result<()> {
    crate::export::wav::write_wav(
        &call.source,
        &call.archive,
        tracks,
        from_ns,
        to_ns,
        path,
        &|_| {},
    )
    .await
    .map(|_| ())
}
