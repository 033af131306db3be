//! OGG/Opus recordings (RFC 7845), as LiveKit Agents writes them: decoded by a pure-Rust Opus
//! decoder (no system library) at 48 kHz, one OGG page at a time. Sample placement follows the granule positions: the
//! OpusHead pre-skip is dropped from the start, the last page's granule trims the encoder
//! padding at the end, and a granule jump between pages is silence kept as a jump.

use std::io::{Read, Seek};

use ogg::reading::PacketReader;
use ogg::Packet;
use serde_json::json;

use super::{AudioBlock, AudioDecoder, AudioFormat};
use crate::{ImportError, ImportWarning};

/// Opus always decodes at 48 kHz here (the granule position counts 48 kHz samples).
pub const OPUS_RATE: u32 = 48_000;
/// Longest Opus packet: 120 ms at 48 kHz.
const MAX_PACKET_FRAMES: usize = 5_760;

/// The fields of the `OpusHead` identification header the decoder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    pub input_sample_rate: u32,
    /// Q7.8 dB.
    pub output_gain: i16,
    pub mapping_family: u8,
}

impl OpusHead {
    pub fn parse(p: &[u8]) -> Option<OpusHead> {
        if p.len() < 19 || &p[..8] != b"OpusHead" || p[8] >> 4 != 0 {
            return None;
        }
        Some(OpusHead {
            channels: p[9],
            pre_skip: u16::from_le_bytes([p[10], p[11]]),
            input_sample_rate: u32::from_le_bytes([p[12], p[13], p[14], p[15]]),
            output_gain: i16::from_le_bytes([p[16], p[17]]),
            mapping_family: p[18],
        })
    }
}

pub struct OggOpusDecoder<R: Read + Seek> {
    packets: PacketReader<R>,
    path: String,
    serial: u32,
    head: OpusHead,
    decoder: opus_decoder::OpusDecoder,
    channels: usize,
    gain: Option<f32>,
    /// Decoded samples of the packets ending on the current page (granule `group_granule`).
    group: Vec<i16>,
    group_granule: Option<u64>,
    /// A packet read ahead that belongs to the next page.
    held: Option<Packet>,
    /// Timeline position (48 kHz frames after pre-skip) of the next sample; `None` before the
    /// first page.
    next_pos: Option<i64>,
    scratch: Vec<i16>,
    warnings: Vec<ImportWarning>,
    other_streams: Vec<u32>,
    damaged_packets: u64,
    overlap_warned: bool,
    finished: bool,
}

impl<R: Read + Seek> OggOpusDecoder<R> {
    pub fn new(reader: R, path: &str) -> Result<Self, ImportError> {
        let bad = |reason: String| ImportError::Audio {
            path: path.into(),
            reason,
        };
        let mut packets = PacketReader::new(reader);
        let first = packets
            .read_packet()
            .map_err(|e| bad(format!("not a readable OGG stream: {e}")))?
            .ok_or_else(|| bad("empty OGG file".into()))?;
        let head = OpusHead::parse(&first.data).ok_or_else(|| {
            bad(
                "the OGG stream is not Opus (no OpusHead); convert it to WAV, e.g. \
                 `sox IN -b 16 OUT.wav`"
                    .into(),
            )
        })?;
        let channels = match (head.channels, head.mapping_family) {
            (1, _) => 1,
            (2, 0) | (2, 1) => 2,
            (n, f) => {
                return Err(bad(format!(
                    "{n}-channel Opus (mapping family {f}) is not supported: expected mono or \
                     stereo"
                )))
            }
        };
        let decoder = opus_decoder::OpusDecoder::new(OPUS_RATE, channels)
            .map_err(|e| bad(format!("cannot start the Opus decoder: {e}")))?;
        let gain = (head.output_gain != 0)
            .then(|| 10f32.powf(f32::from(head.output_gain) / (20.0 * 256.0)));
        let n = usize::from(head.channels);
        Ok(OggOpusDecoder {
            packets,
            path: path.into(),
            serial: first.stream_serial(),
            head,
            decoder,
            channels: n,
            gain,
            group: Vec::new(),
            group_granule: None,
            held: None,
            next_pos: None,
            scratch: vec![0; MAX_PACKET_FRAMES * n],
            warnings: Vec::new(),
            other_streams: Vec::new(),
            damaged_packets: 0,
            overlap_warned: false,
            finished: false,
        })
    }

    pub fn head(&self) -> OpusHead {
        self.head
    }

    fn pos_ns(pos: i64) -> u64 {
        (pos.max(0) as u128 * 1_000_000_000 / u128::from(OPUS_RATE)) as u64
    }

    fn warn(&mut self, code: &str, pos: i64, message: String, details: serde_json::Value) {
        self.warnings.push(ImportWarning {
            code: code.into(),
            message: format!("{}: {message}", self.path),
            time_ns: Self::pos_ns(pos),
            turn: None,
            details,
        });
    }

    fn decode_packet(&mut self, data: &[u8]) {
        // a decoder bug on a hostile packet must not take the import down: a panic counts as
        // a packet that does not decode, and the decoder starts afresh
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.decoder.decode(data, &mut self.scratch, false)
        }));
        let result = match decoded {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => {
                self.decoder.reset();
                Err("the decoder failed on it".to_string())
            }
        };
        let frames = match result {
            Ok(n) => n.min(MAX_PACKET_FRAMES),
            Err(e) => {
                // keep the timeline: the packet's duration as silence
                let n = packet_frames(data).unwrap_or(960).min(MAX_PACKET_FRAMES);
                self.damaged_packets += 1;
                if self.damaged_packets <= 3 {
                    let pos = self.next_pos.unwrap_or(0);
                    self.warn(
                        "audio_damaged_packet",
                        pos,
                        format!("an Opus packet does not decode ({e}); {n} frames of silence put in its place"),
                        json!({"bytes": data.len()}),
                    );
                }
                self.scratch[..n * self.channels].fill(0);
                n
            }
        };
        let decoded = &mut self.scratch[..frames * self.channels];
        if let Some(g) = self.gain {
            for s in decoded.iter_mut() {
                *s = (f32::from(*s) * g).round().clamp(-32768.0, 32767.0) as i16;
            }
        }
        self.group.extend_from_slice(decoded);
    }

    /// Places the current page's samples on the timeline and returns them as a block.
    fn finish_group(&mut self, last: bool) -> Option<AudioBlock> {
        let granule = self.group_granule.take()?;
        let samples = std::mem::take(&mut self.group);
        if samples.is_empty() {
            return None;
        }
        let n = (samples.len() / self.channels) as i64;
        let pre_skip = i64::from(self.head.pre_skip);
        let end = granule.min(i64::MAX as u64) as i64 - pre_skip;
        let start = match self.next_pos {
            // a stream made of one page: it starts at 0, the granule trims the end
            None if last => -pre_skip,
            None => end - n,
            Some(next) if last => next,
            Some(next) => {
                let start = end - n;
                if start > next {
                    let gap_ms = (start - next) * 1000 / i64::from(OPUS_RATE);
                    self.warn(
                        "audio_gap",
                        next,
                        format!("the granule positions skip {gap_ms} ms; kept as silence"),
                        json!({"granule": granule, "gap_frames": start - next}),
                    );
                    start
                } else if start < next {
                    if !self.overlap_warned {
                        self.overlap_warned = true;
                        self.warn(
                            "audio_granule_backwards",
                            next,
                            "a page's granule position lies before the audio already decoded; \
                             its samples were appended instead"
                                .into(),
                            json!({"granule": granule, "overlap_frames": next - start}),
                        );
                    }
                    next
                } else {
                    start
                }
            }
        };
        // end trimming applies to the last page only; elsewhere the page ends at start + n
        let stop = if last { end.min(start + n) } else { start + n };
        let from = start.max(0);
        self.next_pos = Some(stop.max(from));
        if stop <= from {
            return None;
        }
        let skip = (from - start) as usize * self.channels;
        let take = (stop - from) as usize * self.channels;
        let mut block = samples;
        block.truncate(skip + take);
        block.drain(..skip);
        Some(AudioBlock {
            first_sample: from as u64,
            samples: block,
        })
    }
}

impl<R: Read + Seek> AudioDecoder for OggOpusDecoder<R> {
    fn format(&self) -> AudioFormat {
        AudioFormat {
            sample_rate: OPUS_RATE,
            channels: u16::from(self.head.channels),
        }
    }

    fn next_block(&mut self) -> Result<Option<AudioBlock>, ImportError> {
        while !self.finished {
            let packet = match self.held.take() {
                Some(p) => Some(p),
                None => match self.packets.read_packet() {
                    Ok(p) => p,
                    Err(e) => {
                        // a torn or damaged tail: keep what decoded so far
                        let pos = self.next_pos.unwrap_or(0);
                        self.warn(
                            "audio_truncated",
                            pos,
                            format!("the OGG stream is damaged or cut short ({e}); audio after this point is lost"),
                            serde_json::Value::Null,
                        );
                        None
                    }
                },
            };
            let Some(packet) = packet else {
                self.finished = true;
                if self.damaged_packets > 3 {
                    let n = self.damaged_packets;
                    self.warn(
                        "audio_damaged_packet",
                        self.next_pos.unwrap_or(0),
                        format!(
                            "{n} Opus packets in all did not decode and were replaced by silence"
                        ),
                        json!({"packets": n}),
                    );
                }
                return Ok(self.finish_group(true));
            };
            if packet.stream_serial() != self.serial {
                let s = packet.stream_serial();
                if !self.other_streams.contains(&s) {
                    self.other_streams.push(s);
                    self.warn(
                        "audio_extra_stream",
                        self.next_pos.unwrap_or(0),
                        format!("OGG logical stream {s:#x} is not the first Opus stream; ignored"),
                        json!({"serial": s}),
                    );
                }
                continue;
            }
            if packet.data.starts_with(b"OpusTags") || packet.data.starts_with(b"OpusHead") {
                continue;
            }
            let granule = packet.absgp_page();
            if self.group_granule.is_some_and(|g| g != granule) {
                self.held = Some(packet);
                if let Some(block) = self.finish_group(false) {
                    return Ok(Some(block));
                }
                continue;
            }
            self.group_granule = Some(granule);
            let eos = packet.last_in_stream();
            self.decode_packet(&packet.data);
            if eos {
                self.finished = true;
                return Ok(self.finish_group(true));
            }
        }
        Ok(None)
    }

    fn take_warnings(&mut self) -> Vec<ImportWarning> {
        std::mem::take(&mut self.warnings)
    }
}

/// Samples per channel at 48 kHz that an Opus packet holds, from its TOC byte and frame count
/// (RFC 6716 §3.1), or `None` for a packet too short to say.
fn packet_frames(data: &[u8]) -> Option<usize> {
    let toc = *data.first()?;
    let config = usize::from(toc >> 3);
    // frame length in 48 kHz samples per configuration (SILK, hybrid, CELT ranges)
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][config % 4],
        12..=15 => [480, 960][config % 2],
        _ => [120, 240, 480, 960][config % 4],
    };
    let count = match toc & 0x3 {
        0 => 1,
        1 | 2 => 2,
        _ => usize::from(*data.get(1)? & 0x3f),
    };
    Some(frame * count)
}

#[cfg(test)]
mod packet_tests {
    use super::packet_frames;

    #[test]
    fn frames_from_the_toc_byte() {
        // config 1 (SILK NB 20 ms), one frame
        assert_eq!(packet_frames(&[1 << 3]), Some(960));
        // config 31 (CELT FB 20 ms), code 1: two frames
        assert_eq!(packet_frames(&[(31 << 3) | 1]), Some(1920));
        // config 16 (CELT NB 2.5 ms), code 3 with 6 frames
        assert_eq!(packet_frames(&[(16 << 3) | 3, 6]), Some(720));
        // config 14 (hybrid FB 10 ms)
        assert_eq!(packet_frames(&[14 << 3]), Some(480));
        assert_eq!(packet_frames(&[]), None);
        assert_eq!(packet_frames(&[3]), None);
    }
}
