//! Call recordings to import: OGG/Opus (LiveKit) and WAV (Pipecat, or any tool), decoded
//! block by block so a two-hour call never sits in memory. Each decoder yields interleaved
//! 16-bit blocks placed on the file's own sample timeline (sample 0 = start of the file).

pub mod ogg_opus;
pub mod wav;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{ImportError, ImportWarning};

/// Sample rate and channel count of a decoded recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub sample_rate: u32,
    pub channels: u16,
}

/// Decoded samples: `samples` is interleaved (`channels` per frame) and its first frame lies
/// at `first_sample` on the file's timeline. A jump between blocks is silence.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioBlock {
    pub first_sample: u64,
    pub samples: Vec<i16>,
}

/// A streaming decoder of one recording.
pub trait AudioDecoder {
    fn format(&self) -> AudioFormat;
    /// The next block, `None` at the end.
    fn next_block(&mut self) -> Result<Option<AudioBlock>, ImportError>;
    /// Problems met while decoding (damaged packets, odd granule positions…), times on the
    /// file's timeline. Drained by the caller.
    fn take_warnings(&mut self) -> Vec<ImportWarning>;
}

/// The container of a recording, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Ogg,
    Wav,
}

/// Opens a recording, recognizing OGG (`OggS`) or WAV (`RIFF…WAVE`) by its magic bytes.
pub fn open(path: &Path) -> Result<Box<dyn AudioDecoder>, ImportError> {
    let shown = path.display().to_string();
    let io_err = |source| ImportError::Io {
        path: shown.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut magic = [0u8; 12];
    let n = read_up_to(&mut file, &mut magic).map_err(io_err)?;
    let container = match &magic[..n] {
        [b'O', b'g', b'g', b'S', ..] => Container::Ogg,
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E'] => Container::Wav,
        _ => {
            return Err(ImportError::Audio {
                path: shown,
                reason: "neither OGG/Opus nor WAV (unknown magic bytes); convert it to WAV, e.g. \
                         `sox IN -b 16 OUT.wav`"
                    .into(),
            })
        }
    };
    let file = File::open(path).map_err(io_err)?;
    let reader = BufReader::with_capacity(1 << 16, file);
    match container {
        Container::Ogg => Ok(Box::new(ogg_opus::OggOpusDecoder::new(reader, &shown)?)),
        Container::Wav => Ok(Box::new(wav::WavDecoder::new(reader, &shown)?)),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
