//! Chunks: a lane's records over about one second, compressed with zstd as one unit.
//! The chunk frame payload is a 36-byte [`ChunkHeader`] followed by one zstd frame.

use serde::de::DeserializeOwned;

use crate::error::{FormatError, Result};
use crate::limits::{self, MAX_CHUNK_JSON_VALUES, MAX_CHUNK_RECORDS};
use crate::model::{kind, AudioCodec, AudioFrame, Record, TimedRecord, Track, TurnId};
use crate::{audio, qlpc, rice};

pub const CHUNK_HEADER_LEN: usize = 36;
/// Largest uncompressed chunk body a reader will inflate (32 MiB): no zstd bombs.
pub const MAX_CHUNK_UNCOMPRESSED: u32 = 32 << 20;
/// Largest single record payload (16 MiB).
pub const MAX_RECORD_LEN: u32 = 16 << 20;
/// Per-record header inside a chunk body: kind u16, time_ns u64, length u32.
pub const RECORD_HEADER_LEN: usize = 14;
/// Head of an audio record payload: track u16, channels u8, reserved u8, first_sample u64, frames u32.
pub const AUDIO_HEAD_LEN: usize = 16;

/// How a chunk body is laid out before compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEncoding {
    /// 0: a sequence of records, zstd-compressed.
    Records,
    /// 1: records section + audio sample planes (codec `pcm16_lpc2`), zstd-compressed.
    AudioPcm16Lpc2,
    /// 2: records section + Rice-coded audio (codec `pcm16_rice`), zstd-compressed.
    AudioPcm16Rice,
    /// 3: records section + block LPC / G.711-grid coded audio (codec `pcm16_qlpc`), zstd.
    AudioPcm16Qlpc,
}

impl ChunkEncoding {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(ChunkEncoding::Records),
            1 => Some(ChunkEncoding::AudioPcm16Lpc2),
            2 => Some(ChunkEncoding::AudioPcm16Rice),
            3 => Some(ChunkEncoding::AudioPcm16Qlpc),
            _ => None,
        }
    }
    pub fn to_byte(self) -> u8 {
        match self {
            ChunkEncoding::Records => 0,
            ChunkEncoding::AudioPcm16Lpc2 => 1,
            ChunkEncoding::AudioPcm16Rice => 2,
            ChunkEncoding::AudioPcm16Qlpc => 3,
        }
    }

    /// Whether audio samples leave the records for a section of their own.
    pub fn is_audio(self) -> bool {
        !matches!(self, ChunkEncoding::Records)
    }
}

/// The fixed header at the start of every chunk frame payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub lane: u16,
    pub encoding: u8,
    pub start_ns: u64,
    pub end_ns: u64,
    pub record_count: u32,
    pub uncompressed_len: u32,
    /// First and last turn id named by a record in the chunk; 0 when none.
    pub first_turn: TurnId,
    pub last_turn: TurnId,
}

impl ChunkHeader {
    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[0..2].copy_from_slice(&self.lane.to_le_bytes());
        b[2] = self.encoding;
        b[4..12].copy_from_slice(&self.start_ns.to_le_bytes());
        b[12..20].copy_from_slice(&self.end_ns.to_le_bytes());
        b[20..24].copy_from_slice(&self.record_count.to_le_bytes());
        b[24..28].copy_from_slice(&self.uncompressed_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.first_turn.to_le_bytes());
        b[32..36].copy_from_slice(&self.last_turn.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8], offset: u64) -> Result<Self> {
        if b.len() < CHUNK_HEADER_LEN {
            return Err(FormatError::malformed(
                "chunk",
                offset,
                "payload shorter than the 36-byte chunk header",
            ));
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Ok(ChunkHeader {
            lane: u16::from_le_bytes([b[0], b[1]]),
            encoding: b[2],
            start_ns: u64_at(4),
            end_ns: u64_at(12),
            record_count: u32_at(20),
            uncompressed_len: u32_at(24),
            first_turn: u32_at(28),
            last_turn: u32_at(32),
        })
    }
}

/// Appends one record's bytes (header + payload) to a chunk body under construction.
/// For audio encodings (1, 2), audio samples go to `samples` instead.
pub fn encode_record(
    body: &mut Vec<u8>,
    rec: &TimedRecord,
    samples: Option<&mut Vec<i16>>,
) -> Result<()> {
    let start = body.len();
    body.extend_from_slice(&rec.record.kind().to_le_bytes());
    body.extend_from_slice(&rec.time_ns.to_le_bytes());
    body.extend_from_slice(&[0u8; 4]);
    let payload_start = body.len();
    match &rec.record {
        r if r.write_json_payload(body) => {}
        Record::Audio(a) => {
            let channels = usize::from(a.channels.max(1));
            if a.samples.len() % channels != 0 {
                body.truncate(start);
                return Err(FormatError::Invalid {
                    what: "audio frame",
                    reason: format!(
                        "{} samples do not divide into {} channels",
                        a.samples.len(),
                        channels
                    ),
                });
            }
            body.extend_from_slice(&a.track.to_le_bytes());
            body.push(a.channels.max(1));
            body.push(0);
            body.extend_from_slice(&a.first_sample.to_le_bytes());
            body.extend_from_slice(&(a.frames() as u32).to_le_bytes());
            match samples {
                Some(plane) => plane.extend_from_slice(&a.samples),
                None => {
                    for s in &a.samples {
                        body.extend_from_slice(&s.to_le_bytes());
                    }
                }
            }
        }
        Record::Unknown { payload, .. } => body.extend_from_slice(payload),
        _ => unreachable!("every JSON kind was written above"),
    }
    let len = body.len() - payload_start;
    if len > MAX_RECORD_LEN as usize {
        body.truncate(start);
        return Err(FormatError::TooLarge {
            what: "record",
            offset: 0,
            len: len as u64,
            limit: MAX_RECORD_LEN.into(),
        });
    }
    body[payload_start - 4..payload_start].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Builds the chunk frame payload (header + compressed body) from a finished body, with a
/// one-shot zstd context at `level`. Writers keep a [`zstd::bulk::Compressor`] and call
/// [`seal_chunk_with`] instead.
pub fn seal_chunk(
    header: ChunkHeader,
    encoding: ChunkEncoding,
    records: &[u8],
    samples: &[i16],
    channels: usize,
    level: i32,
) -> Result<Vec<u8>> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    seal_chunk_with(
        header,
        encoding,
        records,
        samples,
        channels,
        &mut compressor,
    )
}

/// [`seal_chunk`] with a reusable zstd compression context (same bytes, less setup).
pub fn seal_chunk_with(
    header: ChunkHeader,
    encoding: ChunkEncoding,
    records: &[u8],
    samples: &[i16],
    channels: usize,
    compressor: &mut zstd::bulk::Compressor<'static>,
) -> Result<Vec<u8>> {
    let body = chunk_body(encoding, records, samples, channels)?;
    let compressed = compressor.compress(&body)?;
    Ok(chunk_payload(header, encoding, body.len(), &compressed))
}

/// [`seal_chunk`] without running a compressor: the body goes into a zstd frame of raw
/// blocks ([`stored_zstd_frame`]), which every zstd decoder reads. For bodies zstd cannot
/// shrink (a Rice bitstream), same meaning, a little more size, no compression time.
pub fn seal_chunk_stored(
    header: ChunkHeader,
    encoding: ChunkEncoding,
    records: &[u8],
    samples: &[i16],
    channels: usize,
) -> Result<Vec<u8>> {
    let body = chunk_body(encoding, records, samples, channels)?;
    let mut frame = Vec::with_capacity(stored_zstd_frame_len(body.len()));
    stored_zstd_frame(&body, &mut frame);
    Ok(chunk_payload(header, encoding, body.len(), &frame))
}

fn chunk_payload(
    mut header: ChunkHeader,
    encoding: ChunkEncoding,
    body_len: usize,
    zstd_frame: &[u8],
) -> Vec<u8> {
    header.encoding = encoding.to_byte();
    header.uncompressed_len = body_len as u32;
    let mut out = Vec::with_capacity(CHUNK_HEADER_LEN + zstd_frame.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(zstd_frame);
    out
}

/// The uncompressed chunk body of `encoding` (SPEC §4), at most [`MAX_CHUNK_UNCOMPRESSED`].
fn chunk_body<'a>(
    encoding: ChunkEncoding,
    records: &'a [u8],
    samples: &[i16],
    channels: usize,
) -> Result<std::borrow::Cow<'a, [u8]>> {
    let body = match encoding {
        ChunkEncoding::Records => std::borrow::Cow::Borrowed(records),
        ChunkEncoding::AudioPcm16Lpc2 => {
            let mut b = Vec::with_capacity(4 + records.len() + 2 * samples.len());
            b.extend_from_slice(&(records.len() as u32).to_le_bytes());
            b.extend_from_slice(records);
            audio::encode_planes(samples, channels, &mut b);
            std::borrow::Cow::Owned(b)
        }
        ChunkEncoding::AudioPcm16Rice | ChunkEncoding::AudioPcm16Qlpc => {
            if samples.len() > rice::MAX_SAMPLES {
                return Err(FormatError::TooLarge {
                    what: "chunk audio",
                    offset: 0,
                    len: samples.len() as u64,
                    limit: rice::MAX_SAMPLES as u64,
                });
            }
            let mut b = Vec::with_capacity(4 + records.len() + 2 * samples.len());
            b.extend_from_slice(&(records.len() as u32).to_le_bytes());
            b.extend_from_slice(records);
            if encoding == ChunkEncoding::AudioPcm16Rice {
                rice::encode(samples, channels, &mut b);
            } else {
                qlpc::encode(samples, channels, &mut b);
            }
            std::borrow::Cow::Owned(b)
        }
    };
    if body.len() > MAX_CHUNK_UNCOMPRESSED as usize {
        return Err(FormatError::TooLarge {
            what: "chunk body",
            offset: 0,
            len: body.len() as u64,
            limit: MAX_CHUNK_UNCOMPRESSED.into(),
        });
    }
    Ok(body)
}

/// Largest block of a zstd frame (RFC 8878 §3.1.1.2.4: `Block_Maximum_Size` is 128 KiB).
const ZSTD_MAX_BLOCK: usize = 128 << 10;

/// Bytes [`stored_zstd_frame`] makes for a body of `len` bytes.
pub fn stored_zstd_frame_len(len: usize) -> usize {
    4 + 1 + 4 + 3 * len.div_ceil(ZSTD_MAX_BLOCK).max(1) + len
}

/// Appends `data` (at most 4 GiB - 1) as one zstd frame of raw blocks (RFC 8878): magic,
/// a frame header declaring a single segment and the content size in 4 bytes, no checksum,
/// no dictionary, then blocks of at most 128 KiB, each a 3-byte block header (last-block
/// bit, block type 0 = Raw, size) followed by the bytes as they are. Empty data is one empty
/// last block.
pub fn stored_zstd_frame(data: &[u8], out: &mut Vec<u8>) {
    debug_assert!(u32::try_from(data.len()).is_ok());
    out.reserve(stored_zstd_frame_len(data.len()));
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame_Header_Descriptor: Frame_Content_Size_flag 2 (4-byte field), Single_Segment 1
    out.push(0b1010_0000);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let mut blocks = data.chunks(ZSTD_MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]);
        return;
    }
    while let Some(block) = blocks.next() {
        let last = u32::from(blocks.peek().is_none());
        let head = last | ((block.len() as u32) << 3);
        out.extend_from_slice(&head.to_le_bytes()[..3]);
        out.extend_from_slice(block);
    }
}

/// A decoded chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub header: ChunkHeader,
    /// Empty for a skipped chunk (an encoding this reader does not know).
    pub records: Vec<TimedRecord>,
}

impl Chunk {
    /// The chunk's encoding is unknown to this reader: its body was not read (SPEC §4), and
    /// `records` is empty whatever `header.record_count` says.
    pub fn skipped(&self) -> bool {
        ChunkEncoding::from_byte(self.header.encoding).is_none()
    }
}

/// Session time at which an audio frame of `frames` samples per channel, recorded at
/// `time_ns` on a track of `sample_rate` Hz, ends: what a chunk header's `end_ns` covers.
pub fn audio_end_ns(time_ns: u64, frames: u64, sample_rate: u32) -> u64 {
    time_ns.saturating_add(
        (u128::from(frames) * 1_000_000_000 / u128::from(sample_rate.max(1)))
            .min(u128::from(u64::MAX)) as u64,
    )
}

/// What a chunk's header says that its records contradict, one sentence each (empty when it
/// is consistent). The writer derives the header from the records (SPEC §4): lane, time range
/// (an audio record ends at [`audio_end_ns`]), turn range and encoding; a reader that trusts a
/// lying header skips the chunk when it looks for a lane, a time or a turn, so `verify`
/// checks it. A skipped chunk (unknown encoding) has no records to check against.
pub fn header_problems(chunk: &Chunk, tracks: &[Track]) -> Vec<String> {
    let h = &chunk.header;
    let mut out = Vec::new();
    if chunk.skipped() {
        return out;
    }
    if chunk.records.is_empty() {
        out.push("holds no records (a writer never closes an empty chunk)".to_string());
        return out;
    }
    let (mut start, mut end) = (u64::MAX, 0u64);
    let (mut first_turn, mut last_turn) = (0u32, 0u32);
    let mut wrong_lane = None;
    for r in &chunk.records {
        start = start.min(r.time_ns);
        let rec_end = match &r.record {
            Record::Audio(a) => {
                let rate = tracks
                    .iter()
                    .find(|t| t.id == a.track)
                    .map(|t| t.sample_rate);
                audio_end_ns(r.time_ns, a.frames(), rate.unwrap_or(0))
            }
            _ => r.time_ns,
        };
        end = end.max(rec_end);
        if let Some(t) = r.record.turn().filter(|&t| t != 0) {
            first_turn = if first_turn == 0 {
                t
            } else {
                first_turn.min(t)
            };
            last_turn = last_turn.max(t);
        }
        let known = !matches!(r.record, Record::Unknown { .. });
        if known && r.record.lane() != h.lane && wrong_lane.is_none() {
            wrong_lane = Some((r.record.kind_name(), r.record.lane()));
        }
    }
    if let Some((kind, lane)) = wrong_lane {
        out.push(format!(
            "header says lane {}, but it holds a {kind} record of lane {lane}",
            h.lane
        ));
    }
    if (h.start_ns, h.end_ns) != (start, end) {
        out.push(format!(
            "header says records span {}..{} ns, they span {start}..{end} ns",
            h.start_ns, h.end_ns
        ));
    }
    if (h.first_turn, h.last_turn) != (first_turn, last_turn) {
        out.push(format!(
            "header says turns {}..{}, its records name turns {first_turn}..{last_turn}",
            h.first_turn, h.last_turn
        ));
    }
    let expected = if h.lane == 0 {
        Some(ChunkEncoding::Records)
    } else {
        tracks
            .iter()
            .find(|t| t.id == h.lane)
            .and_then(|t| match t.codec {
                AudioCodec::Pcm16Lpc2 => Some(ChunkEncoding::AudioPcm16Lpc2),
                AudioCodec::Pcm16Rice => Some(ChunkEncoding::AudioPcm16Rice),
                AudioCodec::Pcm16Qlpc => Some(ChunkEncoding::AudioPcm16Qlpc),
                AudioCodec::Unknown => None,
            })
    };
    match expected {
        Some(e) if e.to_byte() != h.encoding => out.push(format!(
            "encoding {} where lane {} is written with encoding {}",
            h.encoding,
            h.lane,
            e.to_byte()
        )),
        None if h.lane != 0 => out.push(format!(
            "lane {} is no audio track the header declares with a known codec",
            h.lane
        )),
        _ => {}
    }
    out
}

/// Inflates a chunk body, refusing to produce more than the header's (bounded) length.
pub fn inflate(payload: &[u8], offset: u64) -> Result<(ChunkHeader, Vec<u8>)> {
    let header = ChunkHeader::decode(payload, offset)?;
    if header.uncompressed_len > MAX_CHUNK_UNCOMPRESSED {
        return Err(FormatError::TooLarge {
            what: "chunk body",
            offset,
            len: header.uncompressed_len.into(),
            limit: MAX_CHUNK_UNCOMPRESSED.into(),
        });
    }
    let body = decompress_bounded(
        &payload[CHUNK_HEADER_LEN..],
        header.uncompressed_len as usize,
    )
    .map_err(|e| FormatError::malformed("chunk", offset, format!("zstd: {e}")))?;
    if body.len() != header.uncompressed_len as usize {
        return Err(FormatError::malformed(
            "chunk",
            offset,
            format!(
                "body inflates to {} bytes, header says {}",
                body.len(),
                header.uncompressed_len
            ),
        ));
    }
    Ok((header, body))
}

thread_local! {
    /// One zstd decompression context per thread, reused by every chunk and tail section.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Inflates one zstd input into a new buffer of at most `capacity` bytes (as
/// `zstd::bulk::decompress`), with this thread's reusable decompression context.
pub(crate) fn decompress_bounded(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        // a reentrant call (none today) would find the context borrowed: use a fresh one
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return zstd::bulk::decompress(data, capacity);
        };
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        let d = slot.as_mut().expect("just set");
        let mut out = Vec::with_capacity(capacity);
        d.decompress_to_buffer(data, &mut out)?;
        Ok(out)
    })
}

/// Decodes a chunk frame payload found at absolute `offset`. A chunk of an encoding this
/// reader does not know is skipped: only its 36-byte header is read, and it comes back with
/// no records (see [`Chunk::skipped`]), so older readers open newer files.
pub fn decode_chunk(payload: &[u8], offset: u64) -> Result<Chunk> {
    let header = ChunkHeader::decode(payload, offset)?;
    let Some(encoding) = ChunkEncoding::from_byte(header.encoding) else {
        return Ok(Chunk {
            header,
            records: Vec::new(),
        });
    };
    if header.record_count > MAX_CHUNK_RECORDS {
        return Err(FormatError::TooMany {
            what: "chunk record count",
            offset,
            count: header.record_count.into(),
            limit: MAX_CHUNK_RECORDS.into(),
        });
    }
    let (header, body) = inflate(payload, offset)?;
    let max = header.record_count as usize;
    let records = match encoding {
        ChunkEncoding::Records => decode_records(&body, Samples::Inline, max, offset)?,
        ChunkEncoding::AudioPcm16Lpc2
        | ChunkEncoding::AudioPcm16Rice
        | ChunkEncoding::AudioPcm16Qlpc => {
            if body.len() < 4 {
                return Err(FormatError::malformed(
                    "chunk",
                    offset,
                    "audio body too short",
                ));
            }
            let rec_len = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
            if rec_len > body.len() - 4 {
                return Err(FormatError::malformed(
                    "chunk",
                    offset,
                    "audio records section overruns the body",
                ));
            }
            let rest = &body[4 + rec_len..];
            let samples = match encoding {
                ChunkEncoding::AudioPcm16Rice => Samples::Rice(rest),
                ChunkEncoding::AudioPcm16Qlpc => Samples::Qlpc(rest),
                _ => Samples::Planes(rest),
            };
            decode_records(&body[4..4 + rec_len], samples, max, offset)?
        }
    };
    if records.len() != header.record_count as usize {
        return Err(FormatError::malformed(
            "chunk",
            offset,
            format!(
                "holds {} records, header says {}",
                records.len(),
                header.record_count
            ),
        ));
    }
    Ok(Chunk { header, records })
}

/// Where a chunk's audio samples are.
#[derive(Clone, Copy)]
enum Samples<'a> {
    /// In the audio records themselves (encoding 0).
    Inline,
    /// pcm16_lpc2 byte planes after the records (encoding 1).
    Planes(&'a [u8]),
    /// pcm16_rice bitstream after the records (encoding 2).
    Rice(&'a [u8]),
    /// pcm16_qlpc bitstream after the records (encoding 3).
    Qlpc(&'a [u8]),
}

/// Decodes the records of a chunk body; `max` is the header's `record_count` (already
/// bounded by [`MAX_CHUNK_RECORDS`]): one more is an error before it costs anything, so a
/// body of millions of empty records never becomes millions of structs.
fn decode_records(
    body: &[u8],
    samples_at: Samples,
    max: usize,
    offset: u64,
) -> Result<Vec<TimedRecord>> {
    let planes = match samples_at {
        Samples::Inline => None,
        Samples::Planes(p) | Samples::Rice(p) | Samples::Qlpc(p) => Some(p),
    };
    if let Samples::Planes(p) = samples_at {
        if p.len() % 2 != 0 {
            return Err(FormatError::malformed(
                "chunk",
                offset,
                "odd sample plane length",
            ));
        }
    }
    let mut all_samples: Vec<i16> = Vec::new();
    let mut heads: Vec<(usize, usize, u8)> = Vec::new(); // (record index, sample count, channels)
    let mut out = Vec::with_capacity(max.min(body.len() / RECORD_HEADER_LEN));
    let mut json_values = 0usize;
    let mut pos = 0usize;
    while pos < body.len() {
        if out.len() == max {
            return Err(FormatError::malformed(
                "chunk",
                offset,
                format!("holds more records than the {max} its header says"),
            ));
        }
        if body.len() - pos < RECORD_HEADER_LEN {
            return Err(FormatError::malformed(
                "chunk",
                offset,
                "record header cut short",
            ));
        }
        let kind_no = u16::from_le_bytes([body[pos], body[pos + 1]]);
        let time_ns = u64::from_le_bytes(body[pos + 2..pos + 10].try_into().expect("8 bytes"));
        let len =
            u32::from_le_bytes(body[pos + 10..pos + 14].try_into().expect("4 bytes")) as usize;
        pos += RECORD_HEADER_LEN;
        if len > MAX_RECORD_LEN as usize {
            return Err(FormatError::TooLarge {
                what: "record",
                offset,
                len: len as u64,
                limit: MAX_RECORD_LEN.into(),
            });
        }
        if len > body.len() - pos {
            return Err(FormatError::malformed(
                "chunk",
                offset,
                format!("record of {len} bytes overruns the chunk body"),
            ));
        }
        let payload = &body[pos..pos + len];
        pos += len;
        if (kind::TURN_START..=kind::SESSION_END).contains(&kind_no) {
            json_values = json_values.saturating_add(limits::json_values(payload));
            if json_values > MAX_CHUNK_JSON_VALUES {
                return Err(FormatError::TooMany {
                    what: "chunk JSON values",
                    offset,
                    count: json_values as u64,
                    limit: MAX_CHUNK_JSON_VALUES as u64,
                });
            }
        }
        let record = match kind_no {
            kind::TURN_START => Record::TurnStart(json(payload, offset)?),
            kind::TURN_END => Record::TurnEnd(json(payload, offset)?),
            kind::TRANSCRIPT => Record::Transcript(json(payload, offset)?),
            kind::STAGE_TIMING => Record::StageTiming(json(payload, offset)?),
            kind::TOOL_CALL => Record::ToolCall(json(payload, offset)?),
            kind::STATE_SNAPSHOT => Record::StateSnapshot(json(payload, offset)?),
            kind::EVENT => Record::Event(json(payload, offset)?),
            kind::LOG => Record::Log(json(payload, offset)?),
            kind::USAGE => Record::Usage(json(payload, offset)?),
            kind::DROPPED => Record::Dropped(json(payload, offset)?),
            kind::SESSION_END => Record::SessionEnd(json(payload, offset)?),
            kind::AUDIO => {
                if payload.len() < AUDIO_HEAD_LEN {
                    return Err(FormatError::malformed(
                        "chunk",
                        offset,
                        "audio record head cut short",
                    ));
                }
                let track = u16::from_le_bytes([payload[0], payload[1]]);
                let channels = payload[2].max(1);
                let first_sample = u64::from_le_bytes(payload[4..12].try_into().expect("8 bytes"));
                let frames =
                    u32::from_le_bytes(payload[12..16].try_into().expect("4 bytes")) as usize;
                let count = frames.checked_mul(usize::from(channels)).ok_or_else(|| {
                    FormatError::malformed("chunk", offset, "audio sample count overflows")
                })?;
                let samples = match planes {
                    Some(_) => {
                        heads.push((out.len(), count, channels));
                        Vec::new()
                    }
                    None => {
                        let raw = &payload[AUDIO_HEAD_LEN..];
                        if raw.len() != count * 2 {
                            return Err(FormatError::malformed(
                                "chunk",
                                offset,
                                "inline audio length does not match its frame count",
                            ));
                        }
                        raw.chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]]))
                            .collect()
                    }
                };
                Record::Audio(AudioFrame {
                    track,
                    channels,
                    first_sample,
                    samples,
                })
            }
            other => Record::Unknown {
                kind: other,
                payload: payload.to_vec(),
            },
        };
        out.push(TimedRecord { time_ns, record });
    }
    let channels = heads.first().map_or(1, |h| usize::from(h.2));
    let wanted = heads
        .iter()
        .try_fold(0usize, |a, h| a.checked_add(h.1))
        .ok_or_else(|| FormatError::malformed("chunk", offset, "audio sample count overflows"))?;
    match samples_at {
        Samples::Inline => {}
        Samples::Planes(planes) => {
            let total = planes.len() / 2;
            if wanted != total {
                return Err(FormatError::malformed(
                    "chunk",
                    offset,
                    format!("audio records want {wanted} samples, planes hold {total}"),
                ));
            }
            audio::decode_planes(planes, total, channels, &mut all_samples);
        }
        Samples::Rice(bits) | Samples::Qlpc(bits) => {
            let codec = match samples_at {
                Samples::Rice(_) => "pcm16_rice",
                _ => "pcm16_qlpc",
            };
            if heads.iter().any(|h| usize::from(h.2) != channels) {
                return Err(FormatError::malformed(
                    "chunk",
                    offset,
                    format!("{codec} audio records differ in channels"),
                ));
            }
            if wanted > rice::MAX_SAMPLES {
                return Err(FormatError::TooLarge {
                    what: "chunk audio",
                    offset,
                    len: wanted as u64,
                    limit: rice::MAX_SAMPLES as u64,
                });
            }
            let decoded = match samples_at {
                Samples::Rice(_) => rice::decode(bits, wanted, channels, &mut all_samples),
                _ => qlpc::decode(bits, wanted, channels, &mut all_samples),
            };
            decoded
                .map_err(|e| FormatError::malformed("chunk", offset, format!("{codec}: {e}")))?;
        }
    }
    if planes.is_some() {
        let mut at = 0;
        for (idx, count, _) in heads {
            if let Record::Audio(a) = &mut out[idx].record {
                a.samples = all_samples[at..at + count].to_vec();
            }
            at += count;
        }
    }
    Ok(out)
}

fn json<T: DeserializeOwned>(payload: &[u8], offset: u64) -> Result<T> {
    crate::model::parse_json_object(payload)
        .map_err(|e| FormatError::malformed("record", offset, format!("bad JSON payload: {e}")))
}
