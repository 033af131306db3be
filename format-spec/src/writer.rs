//! The append-only archive writer: preamble and header first, then one chunk frame per lane
//! each time a chunk closes, and at `finish` the summary, the chunk index and the footer.
//! It never seeks; anything written before a crash up to the last closed chunk stays readable.

use std::collections::BTreeMap;
use std::io::Write;

use crate::chunk::{
    audio_end_ns, encode_record, seal_chunk_stored, seal_chunk_with, ChunkEncoding, ChunkHeader,
    CHUNK_HEADER_LEN, RECORD_HEADER_LEN,
};
use crate::error::{FormatError, Result};
use crate::frame::{encode_frame, encode_preamble, Footer, FrameKind, FOOTER_LEN, FRAME_OVERHEAD};
use crate::index::MAX_TAIL_UNCOMPRESSED;
use crate::index::{encode_entries, pack_tail, ChunkEntry};
use crate::limits::{
    self, MAX_CHUNK_JSON_VALUES, MAX_CHUNK_RECORDS, MAX_SUMMARY_JSON_VALUES, MAX_SUMMARY_TURNS,
};
use crate::model::{AudioCodec, Header, Record, TimedRecord, Track};
use crate::summary::{RecoveryNote, Summary, SummaryBuilder};

/// When chunks close and how hard they are compressed.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// A chunk closes once it spans this much call time (default 1 s).
    pub max_chunk_duration_ns: u64,
    /// A chunk closes once its uncompressed body reaches this size (default 1 MiB).
    pub max_chunk_bytes: usize,
    /// zstd level for control chunks.
    pub zstd_level: i32,
    /// zstd level for audio chunks.
    pub audio_zstd_level: i32,
    /// Chunk encodings whose bodies are stored in a zstd frame of raw blocks instead of
    /// being compressed ([`crate::chunk::seal_chunk_stored`]): for bodies zstd cannot shrink
    /// (default: none).
    pub stored_encodings: &'static [ChunkEncoding],
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_chunk_duration_ns: 1_000_000_000,
            max_chunk_bytes: 1 << 20,
            zstd_level: 3,
            audio_zstd_level: 3,
            stored_encodings: &[],
        }
    }
}

struct OpenChunk {
    encoding: ChunkEncoding,
    channels: usize,
    body: Vec<u8>,
    samples: Vec<i16>,
    start_ns: u64,
    end_ns: u64,
    count: u32,
    /// JSON values in the records so far (bounded by [`MAX_CHUNK_JSON_VALUES`]).
    json_values: usize,
    first_turn: u32,
    last_turn: u32,
}

impl OpenChunk {
    fn new(encoding: ChunkEncoding, channels: usize, time_ns: u64) -> Self {
        OpenChunk {
            encoding,
            channels,
            body: Vec::new(),
            samples: Vec::new(),
            start_ns: time_ns,
            end_ns: time_ns,
            count: 0,
            json_values: 0,
            first_turn: 0,
            last_turn: 0,
        }
    }

    fn uncompressed_len(&self) -> usize {
        self.body.len() + 2 * self.samples.len()
    }
}

/// Writes one archive to any `Write`. Call [`ArchiveWriter::finish`] at the end; dropping an
/// unfinished writer finishes it too, ignoring errors (use `finish` to see them).
pub struct ArchiveWriter<W: Write> {
    out: Option<W>,
    pos: u64,
    opts: WriterOptions,
    tracks: BTreeMap<u16, Track>,
    lanes: BTreeMap<u16, OpenChunk>,
    index: Vec<ChunkEntry>,
    summary: SummaryBuilder,
    /// One zstd compression context per level in use, reused by every chunk.
    compressors: Vec<(i32, zstd::bulk::Compressor<'static>)>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Writes the preamble and the header frame.
    pub fn new(out: W, header: Header) -> Result<Self> {
        Self::with_options(out, header, WriterOptions::default())
    }

    pub fn with_options(mut out: W, header: Header, opts: WriterOptions) -> Result<Self> {
        let mut tracks = BTreeMap::new();
        for t in &header.tracks {
            if t.id == 0 || tracks.insert(t.id, t.clone()).is_some() {
                return Err(FormatError::Invalid {
                    what: "header",
                    reason: format!("track id {} is 0 or used twice", t.id),
                });
            }
        }
        let mut bytes = encode_preamble(minor_version_for(&header)).to_vec();
        let json = serde_json::to_vec(&header).expect("header serializes");
        bytes.extend_from_slice(&encode_frame(FrameKind::Header, &json));
        out.write_all(&bytes)?;
        Ok(ArchiveWriter {
            out: Some(out),
            pos: bytes.len() as u64,
            opts,
            tracks,
            lanes: BTreeMap::new(),
            index: Vec::new(),
            summary: SummaryBuilder::new(header),
            compressors: Vec::new(),
        })
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn get_ref(&self) -> &W {
        self.out.as_ref().expect("writer present until finish")
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.out.as_mut().expect("writer present until finish")
    }

    /// The summary as it would be written now.
    pub fn summary(&self) -> Summary {
        self.summary.build()
    }

    /// Heap bytes the open chunks hold now (their buffers' capacity): what is written but not
    /// yet in a closed chunk, for a caller that keeps a memory budget.
    pub fn open_bytes(&self) -> usize {
        self.lanes
            .values()
            .map(|c| c.body.capacity() + 2 * c.samples.capacity())
            .sum()
    }

    /// Chunks closed so far.
    pub fn chunks(&self) -> &[ChunkEntry] {
        &self.index
    }

    /// Adds one record. Returns how many chunks this closed (and so wrote to the output). On
    /// an error the record was not added; if the output failed, the chunk it was to take
    /// stays open and is written by a later close.
    pub fn write(&mut self, rec: &TimedRecord) -> Result<usize> {
        let lane = rec.record.lane();
        let (encoding, channels, end_ns) = match &rec.record {
            Record::Audio(a) => {
                let track = self.tracks.get(&lane).ok_or_else(|| FormatError::Invalid {
                    what: "audio frame",
                    reason: format!("track {lane} is not declared in the header"),
                })?;
                if a.channels != track.channels {
                    return Err(FormatError::Invalid {
                        what: "audio frame",
                        reason: format!(
                            "{} channels on track {lane}, declared {}",
                            a.channels, track.channels
                        ),
                    });
                }
                let end = audio_end_ns(rec.time_ns, a.frames(), track.sample_rate);
                let encoding = match track.codec {
                    AudioCodec::Pcm16Lpc2 => ChunkEncoding::AudioPcm16Lpc2,
                    AudioCodec::Pcm16Rice => ChunkEncoding::AudioPcm16Rice,
                    AudioCodec::Pcm16Qlpc => ChunkEncoding::AudioPcm16Qlpc,
                    AudioCodec::Unknown => {
                        return Err(FormatError::Invalid {
                            what: "audio frame",
                            reason: format!("track {lane} has a codec this writer cannot write"),
                        })
                    }
                };
                (encoding, usize::from(track.channels), end)
            }
            _ => (ChunkEncoding::Records, 1, rec.time_ns),
        };
        let mut closed = 0;
        if let Some(open) = self.lanes.get(&lane) {
            // (a full chunk is open only if writing it failed: see `close_lane`)
            if rec.time_ns
                >= open
                    .start_ns
                    .saturating_add(self.opts.max_chunk_duration_ns)
                || open.uncompressed_len() >= self.opts.max_chunk_bytes
                || open.count >= MAX_CHUNK_RECORDS
            {
                closed += self.close_lane(lane)?;
            }
        }
        let open = self
            .lanes
            .entry(lane)
            .or_insert_with(|| OpenChunk::new(encoding, channels, rec.time_ns));
        let before = open.body.len();
        let samples = encoding.is_audio().then_some(&mut open.samples);
        encode_record(&mut open.body, rec, samples)?;
        let values = match rec.record {
            Record::Audio(_) | Record::Unknown { .. } => 0,
            _ => limits::json_values(&open.body[before + RECORD_HEADER_LEN..]),
        };
        if values > MAX_CHUNK_JSON_VALUES {
            open.body.truncate(before);
            return Err(FormatError::TooMany {
                what: "record JSON values",
                offset: 0,
                count: values as u64,
                limit: MAX_CHUNK_JSON_VALUES as u64,
            });
        }
        if open.json_values + values > MAX_CHUNK_JSON_VALUES {
            // the record starts the next chunk, so every chunk stays within what readers take
            open.body.truncate(before);
            closed += self.close_lane(lane)?;
            let open = self
                .lanes
                .entry(lane)
                .or_insert_with(|| OpenChunk::new(encoding, channels, rec.time_ns));
            encode_record(&mut open.body, rec, None)?;
        }
        let open = self.lanes.get_mut(&lane).expect("opened above");
        open.json_values += values;
        open.count += 1;
        open.start_ns = open.start_ns.min(rec.time_ns);
        open.end_ns = open.end_ns.max(end_ns);
        if let Some(t) = rec.record.turn().filter(|&t| t != 0) {
            open.first_turn = if open.first_turn == 0 {
                t
            } else {
                open.first_turn.min(t)
            };
            open.last_turn = open.last_turn.max(t);
        }
        let full =
            open.uncompressed_len() >= self.opts.max_chunk_bytes || open.count >= MAX_CHUNK_RECORDS;
        self.summary.observe(rec);
        if full {
            // the record is in: if the output fails to take the chunk, it stays open and the
            // error comes from the next close (an `Err` always means the record is not in)
            if let Ok(n) = self.close_lane(lane) {
                closed += n;
            }
        }
        Ok(closed)
    }

    /// Writes a frame of a kind this version does not define (5..=255), for extensions and
    /// tests: readers skip such frames and recovery keeps them.
    pub fn write_extension_frame(&mut self, kind: u8, payload: &[u8]) -> Result<()> {
        if kind <= 4 {
            return Err(FormatError::Invalid {
                what: "extension frame",
                reason: format!("kind {kind} is reserved"),
            });
        }
        let frame = encode_frame(FrameKind::Unknown(kind), payload);
        self.get_mut().write_all(&frame)?;
        self.pos += frame.len() as u64;
        Ok(())
    }

    /// Closes every open chunk that started at least the chunk duration before `now_ns`
    /// (call it on a timer so quiet lanes still reach the disk). Returns chunks closed.
    pub fn close_stale(&mut self, now_ns: u64) -> Result<usize> {
        let stale: Vec<u16> = self
            .lanes
            .iter()
            .filter(|(_, c)| now_ns >= c.start_ns.saturating_add(self.opts.max_chunk_duration_ns))
            .map(|(&l, _)| l)
            .collect();
        let mut n = 0;
        for lane in stale {
            n += self.close_lane(lane)?;
        }
        Ok(n)
    }

    /// Closes every open chunk now. Returns chunks closed.
    pub fn flush_chunks(&mut self) -> Result<usize> {
        let lanes: Vec<u16> = self.lanes.keys().copied().collect();
        let mut n = 0;
        for lane in lanes {
            n += self.close_lane(lane)?;
        }
        Ok(n)
    }

    fn close_lane(&mut self, lane: u16) -> Result<usize> {
        let Some(open) = self.lanes.remove(&lane) else {
            return Ok(0);
        };
        if open.count == 0 {
            return Ok(0);
        }
        let header = ChunkHeader {
            lane,
            encoding: open.encoding.to_byte(),
            start_ns: open.start_ns,
            end_ns: open.end_ns,
            record_count: open.count,
            uncompressed_len: 0,
            first_turn: open.first_turn,
            last_turn: open.last_turn,
        };
        let payload = if self.opts.stored_encodings.contains(&open.encoding) {
            seal_chunk_stored(
                header,
                open.encoding,
                &open.body,
                &open.samples,
                open.channels,
            )?
        } else {
            let level = match open.encoding {
                ChunkEncoding::Records => self.opts.zstd_level,
                _ => self.opts.audio_zstd_level,
            };
            let at = match self.compressors.iter().position(|c| c.0 == level) {
                Some(i) => i,
                None => {
                    self.compressors
                        .push((level, zstd::bulk::Compressor::new(level)?));
                    self.compressors.len() - 1
                }
            };
            seal_chunk_with(
                header,
                open.encoding,
                &open.body,
                &open.samples,
                open.channels,
                &mut self.compressors[at].1,
            )?
        };
        let frame = encode_frame(FrameKind::Chunk, &payload);
        let offset = self.pos;
        if let Err(e) = self.get_mut().write_all(&frame) {
            // the chunk stays open: an output that can take its bytes again (a spool file cut
            // back to `position()` once space is back) gets it on the next close
            self.lanes.insert(lane, open);
            return Err(e.into());
        }
        self.pos += frame.len() as u64;
        let uncompressed_len = u32::from_le_bytes(payload[24..28].try_into().expect("4 bytes"));
        self.index.push(ChunkEntry {
            lane,
            start_ns: open.start_ns,
            end_ns: open.end_ns,
            offset,
            compressed_len: (payload.len() - CHUNK_HEADER_LEN) as u32,
            uncompressed_len,
            record_count: open.count,
            first_turn: open.first_turn,
            last_turn: open.last_turn,
        });
        Ok(1)
    }

    /// Closes all chunks, writes summary, index and footer, flushes, and returns the output
    /// and the summary written.
    pub fn finish(mut self) -> Result<(W, Summary)> {
        let summary = self.finish_inner()?;
        let out = self.out.take().expect("writer present until finish");
        Ok((out, summary))
    }

    fn finish_inner(&mut self) -> Result<Summary> {
        if self.out.is_none() {
            return Err(FormatError::Finished);
        }
        self.flush_chunks()?;
        let summary = self.summary.build();
        let tail = encode_tail(self.pos, &summary, &self.index, 0)?;
        let out = self.get_mut();
        out.write_all(&tail)?;
        out.flush()?;
        self.pos += tail.len() as u64;
        Ok(summary)
    }
}

impl<W: Write> Drop for ArchiveWriter<W> {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = self.finish_inner();
        }
    }
}

/// The minor version a file with this header is written as (SPEC §2.1): the lowest that
/// defines every codec its tracks declare: 2 with a `pcm16_qlpc` track, else 1 with a
/// `pcm16_rice` track, else 0 (byte-identical to a 1.0 file).
pub fn minor_version_for(header: &Header) -> u8 {
    let codec_minor = |c: AudioCodec| match c {
        AudioCodec::Pcm16Qlpc => 2,
        AudioCodec::Pcm16Rice => 1,
        AudioCodec::Pcm16Lpc2 | AudioCodec::Unknown => 0,
    };
    header
        .tracks
        .iter()
        .map(|t| codec_minor(t.codec))
        .max()
        .unwrap_or(0)
}

/// Encodes summary frame + chunk index frame + footer for an archive whose data ends at `pos`.
/// Recovery uses it to close a file that was never closed.
/// Never writes a tail a reader refuses: a summary over the 64 MiB a reader inflates keeps
/// fewer turns (`totals.turns_truncated`), and what still does not fit is an error.
pub fn encode_tail(
    pos: u64,
    summary: &Summary,
    index: &[ChunkEntry],
    flags: u32,
) -> Result<Vec<u8>> {
    let summary_json = summary_within_limit(summary)?;
    let entries = encode_entries(index);
    if entries.len() > MAX_TAIL_UNCOMPRESSED as usize {
        return Err(FormatError::TooLarge {
            what: "chunk index",
            offset: pos,
            len: entries.len() as u64,
            limit: MAX_TAIL_UNCOMPRESSED.into(),
        });
    }
    let summary_frame = encode_frame(FrameKind::Summary, &pack_tail(&summary_json));
    let index_frame = encode_frame(FrameKind::ChunkIndex, &pack_tail(&entries));
    let footer = Footer {
        summary_offset: pos,
        index_offset: pos + summary_frame.len() as u64,
        chunk_count: index.len() as u32,
        flags,
    };
    let mut out = Vec::with_capacity(summary_frame.len() + index_frame.len() + FOOTER_LEN);
    out.extend_from_slice(&summary_frame);
    out.extend_from_slice(&index_frame);
    out.extend_from_slice(&footer.encode());
    debug_assert!(out.len() >= 2 * FRAME_OVERHEAD + FOOTER_LEN);
    Ok(out)
}

/// The summary's JSON, with the turn table cut (halving) until it fits what a reader
/// inflates and counts ([`MAX_TAIL_UNCOMPRESSED`], [`MAX_SUMMARY_JSON_VALUES`]).
fn summary_within_limit(summary: &Summary) -> Result<Vec<u8>> {
    let fits = |json: &[u8]| {
        json.len() <= MAX_TAIL_UNCOMPRESSED as usize
            && limits::json_values(json) <= MAX_SUMMARY_JSON_VALUES
    };
    let json = serde_json::to_vec(summary).expect("summary serializes");
    if fits(&json) && summary.turns.len() <= MAX_SUMMARY_TURNS {
        return Ok(json);
    }
    let mut cut = summary.clone();
    cut.totals.turns_truncated = true;
    cut.turns.truncate(MAX_SUMMARY_TURNS);
    loop {
        let json = serde_json::to_vec(&cut).expect("summary serializes");
        if fits(&json) {
            return Ok(json);
        }
        if cut.turns.is_empty() {
            return Err(FormatError::TooLarge {
                what: "summary",
                offset: 0,
                len: json.len() as u64,
                limit: MAX_TAIL_UNCOMPRESSED.into(),
            });
        }
        cut.turns.truncate(cut.turns.len() / 2);
    }
}

/// A summary marked as rebuilt by recovery.
pub fn recovered_summary(mut summary: Summary, note: RecoveryNote) -> Summary {
    summary.recovery = Some(note);
    summary
}
