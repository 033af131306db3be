//! WAV recordings (hound): any integer depth or 32-bit float, converted to 16-bit, read in
//! blocks of 100 ms. Sample 0 of the file is its start; WAV has no gaps.

use std::io::Read;

use hound::{SampleFormat, WavReader};

use super::{AudioBlock, AudioDecoder, AudioFormat};
use crate::{ImportError, ImportWarning};

pub struct WavDecoder<R: Read> {
    reader: WavReader<R>,
    path: String,
    format: AudioFormat,
    bits: u16,
    float: bool,
    next_frame: u64,
    block_frames: usize,
}

impl<R: Read> WavDecoder<R> {
    pub fn new(reader: R, path: &str) -> Result<Self, ImportError> {
        let reader = WavReader::new(reader).map_err(|e| ImportError::Audio {
            path: path.into(),
            reason: format!("cannot read WAV header: {e}"),
        })?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(ImportError::Audio {
                path: path.into(),
                reason: "WAV declares 0 channels or 0 Hz".into(),
            });
        }
        let float = spec.sample_format == SampleFormat::Float;
        if float && spec.bits_per_sample != 32 {
            return Err(ImportError::Audio {
                path: path.into(),
                reason: format!(
                    "{}-bit float WAV is not supported (use 16-bit PCM or 32-bit float)",
                    spec.bits_per_sample
                ),
            });
        }
        Ok(WavDecoder {
            format: AudioFormat {
                sample_rate: spec.sample_rate,
                channels: spec.channels,
            },
            bits: spec.bits_per_sample,
            float,
            block_frames: (spec.sample_rate as usize / 10).max(1),
            reader,
            path: path.into(),
            next_frame: 0,
        })
    }

    fn read_err(&self, e: hound::Error) -> ImportError {
        ImportError::Audio {
            path: self.path.clone(),
            reason: format!("damaged WAV data after frame {}: {e}", self.next_frame),
        }
    }
}

impl<R: Read> AudioDecoder for WavDecoder<R> {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn next_block(&mut self) -> Result<Option<AudioBlock>, ImportError> {
        let want = self.block_frames * usize::from(self.format.channels);
        let mut samples = Vec::with_capacity(want);
        if self.float {
            for s in self.reader.samples::<f32>().take(want) {
                match s {
                    Ok(x) => samples.push((x.clamp(-1.0, 1.0) * 32767.0).round() as i16),
                    Err(e) => return Err(self.read_err(e)),
                }
            }
        } else {
            let bits = self.bits;
            for s in self.reader.samples::<i32>().take(want) {
                match s {
                    Ok(x) => samples.push(to_i16(x, bits)),
                    Err(e) => return Err(self.read_err(e)),
                }
            }
        }
        // a torn last frame (file cut mid-frame) is dropped
        samples.truncate(
            samples.len() / usize::from(self.format.channels) * usize::from(self.format.channels),
        );
        if samples.is_empty() {
            return Ok(None);
        }
        let first_sample = self.next_frame;
        self.next_frame += (samples.len() / usize::from(self.format.channels)) as u64;
        Ok(Some(AudioBlock {
            first_sample,
            samples,
        }))
    }

    fn take_warnings(&mut self) -> Vec<ImportWarning> {
        Vec::new()
    }
}

fn to_i16(x: i32, bits: u16) -> i16 {
    if bits > 16 {
        (x >> (bits - 16)) as i16
    } else {
        (x << (16 - bits)) as i16
    }
}
