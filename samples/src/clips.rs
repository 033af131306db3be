//! The committed speech clips (samples/clips, made by make_clips.sh with espeak-ng):
//! 16 kHz mono WAV, one per scripted line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Sample rate of every clip and of the simulated calls' tracks.
pub const RATE: u32 = 16_000;

pub struct Clips {
    dir: PathBuf,
    cache: HashMap<String, Vec<i16>>,
}

impl Clips {
    /// The clips directory of this checkout.
    pub fn bundled() -> Clips {
        Clips::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("clips"))
    }

    pub fn at(dir: PathBuf) -> Clips {
        Clips {
            dir,
            cache: HashMap::new(),
        }
    }

    /// Samples of `name` (e.g. `slow_02_user.wav`).
    pub fn get(&mut self, name: &str) -> Result<&[i16], String> {
        if !self.cache.contains_key(name) {
            let path = self.dir.join(name);
            let mut reader = hound::WavReader::open(&path)
                .map_err(|e| format!("cannot read clip {}: {e}", path.display()))?;
            let spec = reader.spec();
            if spec.sample_rate != RATE || spec.channels != 1 || spec.bits_per_sample != 16 {
                return Err(format!(
                    "clip {} is {} Hz, {} ch, {} bit; expected 16 kHz mono 16-bit (run clips/make_clips.sh)",
                    path.display(),
                    spec.sample_rate,
                    spec.channels,
                    spec.bits_per_sample
                ));
            }
            let samples = reader
                .samples::<i16>()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cannot decode clip {}: {e}", path.display()))?;
            self.cache.insert(name.to_string(), samples);
        }
        Ok(&self.cache[name])
    }
}
