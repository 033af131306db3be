//! The chunk index: one entry per chunk, delta- and varint-coded, then zstd-compressed,
//! so the index of a two-hour call fits in the tail a reader fetches first.

use crate::chunk::CHUNK_HEADER_LEN;
use crate::error::{FormatError, Result};
use crate::frame::FRAME_OVERHEAD;
use crate::limits::MIN_CHUNK_FRAME;
use crate::model::TurnId;

/// Largest inflated index or summary a reader accepts (64 MiB).
pub const MAX_TAIL_UNCOMPRESSED: u32 = 64 << 20;

/// Where one chunk lives and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    pub lane: u16,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Absolute offset of the chunk frame.
    pub offset: u64,
    /// Length of the zstd data (the frame payload less its 36-byte chunk header).
    pub compressed_len: u32,
    pub uncompressed_len: u32,
    pub record_count: u32,
    /// Turn range named by the chunk's records; 0 when none.
    pub first_turn: TurnId,
    pub last_turn: TurnId,
}

impl ChunkEntry {
    /// Bytes of the whole chunk frame: `offset .. offset + frame_len()`.
    pub fn frame_len(&self) -> u64 {
        u64::from(self.compressed_len) + (CHUNK_HEADER_LEN + FRAME_OVERHEAD) as u64
    }

    pub fn frame_range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset.saturating_add(self.frame_len())
    }

    /// True when the chunk's time range meets `[from_ns, to_ns]`.
    pub fn overlaps(&self, from_ns: u64, to_ns: u64) -> bool {
        self.start_ns <= to_ns && self.end_ns >= from_ns
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct VarintReader<'a> {
    buf: &'a [u8],
    pos: usize,
    offset: u64,
}

impl VarintReader<'_> {
    fn next(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(FormatError::malformed(
                    "chunk index",
                    self.offset,
                    "entries cut short",
                ));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(FormatError::malformed(
            "chunk index",
            self.offset,
            "varint longer than 10 bytes",
        ))
    }

    fn next_u32(&mut self) -> Result<u32> {
        u32::try_from(self.next()?).map_err(|_| {
            FormatError::malformed("chunk index", self.offset, "value does not fit 32 bits")
        })
    }
}

/// Encodes the index entries (before compression).
pub fn encode_entries(entries: &[ChunkEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 12 + 8);
    put_varint(&mut out, entries.len() as u64);
    let (mut prev_start, mut prev_offset) = (0u64, 0u64);
    for e in entries {
        put_varint(&mut out, e.lane.into());
        put_varint(&mut out, zigzag(e.start_ns.wrapping_sub(prev_start) as i64));
        put_varint(&mut out, e.end_ns.wrapping_sub(e.start_ns));
        put_varint(&mut out, zigzag(e.offset.wrapping_sub(prev_offset) as i64));
        put_varint(&mut out, e.compressed_len.into());
        put_varint(&mut out, e.uncompressed_len.into());
        put_varint(&mut out, e.record_count.into());
        put_varint(&mut out, e.first_turn.into());
        put_varint(
            &mut out,
            zigzag(i64::from(e.last_turn) - i64::from(e.first_turn)),
        );
        prev_start = e.start_ns;
        prev_offset = e.offset;
    }
    out
}

/// The most chunks a data section of `data_len` bytes can hold (each frame takes at least
/// [`MIN_CHUNK_FRAME`] bytes): the bound on an index's entry count.
pub fn max_chunks(data_len: u64) -> u64 {
    data_len / MIN_CHUNK_FRAME
}

/// Decodes index entries; `offset` is the index frame's position, for error messages.
/// `max` bounds the count (see [`max_chunks`]): an index inflating to millions of entries in
/// a small file is refused before anything is allocated for them.
pub fn decode_entries(buf: &[u8], offset: u64, max: u64) -> Result<Vec<ChunkEntry>> {
    let mut r = VarintReader {
        buf,
        pos: 0,
        offset,
    };
    let count = r.next()?;
    // each entry takes at least 9 bytes: never allocate more than the bytes can hold
    if count > (buf.len() / 9) as u64 {
        return Err(FormatError::malformed(
            "chunk index",
            offset,
            format!("claims {count} entries in {} bytes", buf.len()),
        ));
    }
    if count > max {
        return Err(FormatError::malformed(
            "chunk index",
            offset,
            format!(
                "claims {count} chunks, more than the {max} the data section before it can hold"
            ),
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    let (mut prev_start, mut prev_offset) = (0u64, 0u64);
    for _ in 0..count {
        let lane = u16::try_from(r.next()?)
            .map_err(|_| FormatError::malformed("chunk index", offset, "lane over 65535"))?;
        let start_ns = prev_start.wrapping_add(unzigzag(r.next()?) as u64);
        let end_ns = start_ns.wrapping_add(r.next()?);
        let chunk_offset = prev_offset.wrapping_add(unzigzag(r.next()?) as u64);
        let compressed_len = r.next_u32()?;
        let uncompressed_len = r.next_u32()?;
        let record_count = r.next_u32()?;
        let first_turn = r.next_u32()?;
        let last_turn = i64::from(first_turn) + unzigzag(r.next()?);
        let last_turn = u32::try_from(last_turn).map_err(|_| {
            FormatError::malformed("chunk index", offset, "turn range out of bounds")
        })?;
        out.push(ChunkEntry {
            lane,
            start_ns,
            end_ns,
            offset: chunk_offset,
            compressed_len,
            uncompressed_len,
            record_count,
            first_turn,
            last_turn,
        });
        prev_start = start_ns;
        prev_offset = chunk_offset;
    }
    Ok(out)
}

/// Compresses a tail section (index or summary) as `u32 inflated length` + one zstd frame.
pub fn pack_tail(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 4 + 16);
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&zstd::bulk::compress(raw, 9).expect("in-memory zstd"));
    out
}

/// Inverse of [`pack_tail`], bounded by [`MAX_TAIL_UNCOMPRESSED`].
pub fn unpack_tail(payload: &[u8], what: &'static str, offset: u64) -> Result<Vec<u8>> {
    if payload.len() < 4 {
        return Err(FormatError::malformed(
            what,
            offset,
            "shorter than its length prefix",
        ));
    }
    let len = u32::from_le_bytes(payload[0..4].try_into().expect("4 bytes"));
    if len > MAX_TAIL_UNCOMPRESSED {
        return Err(FormatError::TooLarge {
            what,
            offset,
            len: len.into(),
            limit: MAX_TAIL_UNCOMPRESSED.into(),
        });
    }
    let raw = crate::chunk::decompress_bounded(&payload[4..], len as usize)
        .map_err(|e| FormatError::malformed(what, offset, format!("zstd: {e}")))?;
    if raw.len() != len as usize {
        return Err(FormatError::malformed(
            what,
            offset,
            "inflated length differs from its prefix",
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = ChunkEntry> {
        (
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(lane, start_ns, end_ns, offset, c, u, r, f, l)| ChunkEntry {
                    lane,
                    start_ns,
                    end_ns,
                    offset,
                    compressed_len: c,
                    uncompressed_len: u,
                    record_count: r,
                    first_turn: f,
                    last_turn: l,
                },
            )
    }

    proptest! {
        #[test]
        fn entries_round_trip(entries in proptest::collection::vec(entry(), 0..50)) {
            let raw = encode_entries(&entries);
            prop_assert_eq!(decode_entries(&raw, 0, u64::MAX).unwrap(), entries);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_entries(&bytes, 0, u64::MAX);
            let _ = unpack_tail(&bytes, "summary", 0);
        }
    }
}
