//! The sans-io reader: it says which byte range it needs next and is fed bytes, so one reader
//! serves a local file, a memory buffer and object-store ranged GETs. Opening needs only the
//! file's tail (footer, summary, chunk index); chunks are then fetched one range each.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

use crate::chunk::{decode_chunk, Chunk};
use crate::error::{FormatError, Result};
use crate::frame::{
    check_preamble, decode_frame, Footer, FrameDecode, FrameKind, FOOTER_LEN, FRAME_OVERHEAD,
    MAX_FRAME_LEN, PREAMBLE_LEN,
};
use crate::index::{decode_entries, max_chunks, unpack_tail, ChunkEntry};
use crate::model::Header;
use crate::summary::Summary;

/// How much of the tail the first request asks for (256 KiB).
pub const TAIL_FETCH: u64 = 256 * 1024;

/// An opened archive: its summary and where every chunk lives.
#[derive(Debug, Clone)]
pub struct Archive {
    pub summary: Summary,
    pub index: Vec<ChunkEntry>,
    pub footer: Footer,
    pub file_len: u64,
}

impl Archive {
    pub fn header(&self) -> &Header {
        &self.summary.header
    }

    /// Chunks of `lane` that overlap `[from_ns, to_ns]`, in file order.
    pub fn chunks_in(
        &self,
        lane: u16,
        from_ns: u64,
        to_ns: u64,
    ) -> impl Iterator<Item = &ChunkEntry> {
        self.index
            .iter()
            .filter(move |e| e.lane == lane && e.overlaps(from_ns, to_ns))
    }

    /// Control-lane chunks that name `turn`.
    pub fn chunks_for_turn(&self, turn: u32) -> impl Iterator<Item = &ChunkEntry> {
        self.index.iter().filter(move |e| {
            e.lane == 0 && e.first_turn != 0 && e.first_turn <= turn && turn <= e.last_turn
        })
    }
}

/// What the opener wants next.
#[derive(Debug)]
pub enum OpenStep {
    /// Fetch these bytes and [`Opener::feed`] them.
    Need(Range<u64>),
    Ready(Box<Archive>),
}

/// Opens an archive from its tail. Feed it the range [`Opener::first_range`] asks for,
/// then whatever each [`OpenStep::Need`] names (at most one more range, for huge indexes).
#[derive(Debug)]
pub struct Opener {
    file_len: u64,
    buf_start: u64,
    buf: Vec<u8>,
}

impl Opener {
    pub fn new(file_len: u64) -> Self {
        Opener {
            file_len,
            buf_start: file_len,
            buf: Vec::new(),
        }
    }

    /// The first range to fetch: the last 256 KiB (the whole file if smaller).
    pub fn first_range(&self) -> Range<u64> {
        self.file_len.saturating_sub(TAIL_FETCH)..self.file_len
    }

    /// Feeds bytes for `range`; the range must end where the previously fed bytes begin
    /// (or at the end of the file the first time).
    pub fn feed(&mut self, range_start: u64, bytes: &[u8]) -> Result<OpenStep> {
        let range_end = range_start + bytes.len() as u64;
        if range_end != self.buf_start {
            return Err(FormatError::Invalid {
                what: "opener input",
                reason: format!(
                    "fed bytes {range_start}..{range_end}, expected a range ending at {}",
                    self.buf_start
                ),
            });
        }
        let mut joined = Vec::with_capacity(bytes.len() + self.buf.len());
        joined.extend_from_slice(bytes);
        joined.extend_from_slice(&self.buf);
        self.buf = joined;
        self.buf_start = range_start;
        self.step()
    }

    fn step(&mut self) -> Result<OpenStep> {
        let len = self.file_len;
        if self.buf_start == 0 {
            check_preamble(&self.buf)?;
        }
        if len < (PREAMBLE_LEN + FOOTER_LEN) as u64 {
            return Err(FormatError::NoFooter);
        }
        let footer_at = len - FOOTER_LEN as u64;
        if self.buf_start > footer_at {
            return Ok(OpenStep::Need(footer_at..self.buf_start));
        }
        let footer_bytes = self.slice(footer_at, len);
        let footer = Footer::decode(footer_bytes, footer_at, len)?;
        // the tail can never legitimately exceed two maximal frames
        let max_tail = 2 * (u64::from(MAX_FRAME_LEN) + FRAME_OVERHEAD as u64);
        if footer_at - footer.summary_offset > max_tail {
            return Err(FormatError::malformed(
                "footer",
                footer_at,
                "summary offset lies implausibly far from the end",
            ));
        }
        if self.buf_start > footer.summary_offset {
            return Ok(OpenStep::Need(footer.summary_offset..self.buf_start));
        }
        let summary = self.tail_frame(
            footer.summary_offset,
            footer.index_offset,
            FrameKind::Summary,
        )?;
        let summary_json = unpack_tail(summary, "summary", footer.summary_offset)?;
        let summary = Summary::parse(&summary_json, footer.summary_offset)?;
        let max = max_chunks(footer.summary_offset.saturating_sub(PREAMBLE_LEN as u64));
        if u64::from(footer.chunk_count) > max {
            return Err(FormatError::malformed(
                "footer",
                footer_at,
                format!(
                    "claims {} chunks, more than the {max} the data section can hold",
                    footer.chunk_count
                ),
            ));
        }
        let index = self.tail_frame(footer.index_offset, footer_at, FrameKind::ChunkIndex)?;
        let raw = unpack_tail(index, "chunk index", footer.index_offset)?;
        let index = decode_entries(&raw, footer.index_offset, max)?;
        if index.len() != footer.chunk_count as usize {
            return Err(FormatError::malformed(
                "chunk index",
                footer.index_offset,
                format!(
                    "{} entries, footer says {}",
                    index.len(),
                    footer.chunk_count
                ),
            ));
        }
        if let Some(bad) = index
            .iter()
            .find(|e| e.frame_range().end > footer.summary_offset)
        {
            return Err(FormatError::malformed(
                "chunk index",
                footer.index_offset,
                format!("chunk at {} runs past the data section", bad.offset),
            ));
        }
        Ok(OpenStep::Ready(Box::new(Archive {
            summary,
            index,
            footer,
            file_len: len,
        })))
    }

    fn slice(&self, from: u64, to: u64) -> &[u8] {
        &self.buf[(from - self.buf_start) as usize..(to - self.buf_start) as usize]
    }

    fn tail_frame(&self, from: u64, to: u64, want: FrameKind) -> Result<&[u8]> {
        let bytes = self.slice(from, to);
        match decode_frame(bytes, from)? {
            FrameDecode::Frame(f) if f.kind == want && f.total_len() == to - from => Ok(f.payload),
            FrameDecode::Frame(f) => Err(FormatError::malformed(
                want.name(),
                from,
                format!(
                    "found a {} of {} bytes where the footer points",
                    f.kind.name(),
                    f.total_len()
                ),
            )),
            FrameDecode::Incomplete(_) => Err(FormatError::Truncated {
                offset: from,
                needed: 0,
            }),
        }
    }
}

/// Decodes a chunk fetched for `entry` (the bytes of `entry.frame_range()`).
pub fn decode_chunk_frame(entry: &ChunkEntry, bytes: &[u8]) -> Result<Chunk> {
    match decode_frame(bytes, entry.offset)? {
        FrameDecode::Frame(f) if f.kind == FrameKind::Chunk => {
            let chunk = decode_chunk(f.payload, entry.offset)?;
            if chunk.header.lane != entry.lane {
                return Err(FormatError::malformed(
                    "chunk",
                    entry.offset,
                    "lane differs from the index entry",
                ));
            }
            Ok(chunk)
        }
        FrameDecode::Frame(f) => Err(FormatError::malformed(
            "chunk",
            entry.offset,
            format!("the index points at a {}", f.kind.name()),
        )),
        FrameDecode::Incomplete(n) => Err(FormatError::Truncated {
            offset: entry.offset,
            needed: n as u64 - bytes.len() as u64,
        }),
    }
}

/// Opens an archive from anything seekable (a file, a cursor), reading only its tail.
pub fn open<R: Read + Seek>(r: &mut R) -> Result<Archive> {
    let len = r.seek(SeekFrom::End(0))?;
    let mut opener = Opener::new(len);
    let mut range = opener.first_range();
    loop {
        let bytes = read_range(r, range.clone())?;
        match opener.feed(range.start, &bytes)? {
            OpenStep::Ready(a) => return Ok(*a),
            OpenStep::Need(next) => range = next,
        }
    }
}

/// Reads and decodes one chunk from anything seekable.
pub fn read_chunk<R: Read + Seek>(r: &mut R, entry: &ChunkEntry) -> Result<Chunk> {
    let bytes = read_range(r, entry.frame_range())?;
    decode_chunk_frame(entry, &bytes)
}

/// Reads exactly `range` (bounded by the frame limit) from anything seekable.
pub fn read_range<R: Read + Seek>(r: &mut R, range: Range<u64>) -> Result<Vec<u8>> {
    let len = range.end.saturating_sub(range.start);
    if len > 2 * u64::from(MAX_FRAME_LEN) + 64 {
        return Err(FormatError::TooLarge {
            what: "read",
            offset: range.start,
            len,
            limit: 2 * u64::from(MAX_FRAME_LEN),
        });
    }
    r.seek(SeekFrom::Start(range.start))?;
    let mut buf = Vec::with_capacity(len as usize);
    r.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(FormatError::Truncated {
            offset: range.start + buf.len() as u64,
            needed: len - buf.len() as u64,
        });
    }
    Ok(buf)
}
