//! Top-level framing: the file magic, framed units (kind, length, payload, CRC32C) and the
//! fixed-size footer. Encoders return bytes; nothing here does I/O.

use crate::error::{FormatError, Result};

/// First bytes of every archive: `\x89CALLTAPE` would be 9; we use 8 bytes of magic,
/// then the major and minor version and two reserved zero bytes (12 bytes in all).
pub const MAGIC: [u8; 8] = *b"\x89CTAPE\r\n";
pub const MAJOR_VERSION: u8 = 1;
/// The highest minor version this crate knows (1.1 added chunk encoding 2, `pcm16_rice`;
/// 1.2 chunk encoding 3, `pcm16_qlpc`). Readers accept any minor of their major; writers
/// write the lowest minor a file needs.
pub const MINOR_VERSION: u8 = 2;
pub const PREAMBLE_LEN: usize = 12;

/// Frame header: kind (u8) + payload length (u32 LE). The CRC32C (u32 LE) follows the payload.
pub const FRAME_HEADER_LEN: usize = 5;
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + 4;

/// Largest frame payload a reader accepts (64 MiB).
pub const MAX_FRAME_LEN: u32 = 64 << 20;

/// The footer's trailing magic.
pub const FOOTER_MAGIC: [u8; 8] = *b"CTAPEEND";
pub const FOOTER_LEN: usize = 40;

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Header,
    Chunk,
    Summary,
    ChunkIndex,
    Unknown(u8),
}

impl FrameKind {
    pub fn from_byte(b: u8) -> Self {
        match b {
            1 => FrameKind::Header,
            2 => FrameKind::Chunk,
            3 => FrameKind::Summary,
            4 => FrameKind::ChunkIndex,
            other => FrameKind::Unknown(other),
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            FrameKind::Header => 1,
            FrameKind::Chunk => 2,
            FrameKind::Summary => 3,
            FrameKind::ChunkIndex => 4,
            FrameKind::Unknown(b) => b,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameKind::Header => "header frame",
            FrameKind::Chunk => "chunk frame",
            FrameKind::Summary => "summary frame",
            FrameKind::ChunkIndex => "chunk index frame",
            FrameKind::Unknown(_) => "unknown frame",
        }
    }
}

/// The 12-byte preamble: magic, major, `minor`, two zero bytes.
pub fn encode_preamble(minor: u8) -> [u8; PREAMBLE_LEN] {
    let mut p = [0u8; PREAMBLE_LEN];
    p[..8].copy_from_slice(&MAGIC);
    p[8] = MAJOR_VERSION;
    p[9] = minor;
    p
}

/// Checks the preamble; returns (major, minor).
pub fn check_preamble(bytes: &[u8]) -> Result<(u8, u8)> {
    if bytes.len() < PREAMBLE_LEN {
        if MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
            return Err(FormatError::Truncated {
                offset: bytes.len() as u64,
                needed: (PREAMBLE_LEN - bytes.len()) as u64,
            });
        }
        return Err(FormatError::NotAnArchive);
    }
    if bytes[..8] != MAGIC {
        return Err(FormatError::NotAnArchive);
    }
    let (major, minor) = (bytes[8], bytes[9]);
    if major != MAJOR_VERSION {
        return Err(FormatError::UnsupportedVersion {
            major,
            minor,
            supported: MAJOR_VERSION,
        });
    }
    Ok((major, minor))
}

/// Encodes one frame: kind, length, payload, CRC32C over kind+length+payload.
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + FRAME_OVERHEAD);
    encode_frame_into(&mut out, kind, payload);
    out
}

pub fn encode_frame_into(out: &mut Vec<u8>, kind: FrameKind, payload: &[u8]) {
    let start = out.len();
    out.push(kind.to_byte());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A frame found in a byte buffer, borrowing its payload.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    pub kind: FrameKind,
    /// Absolute offset of the frame's first byte.
    pub offset: u64,
    pub payload: &'a [u8],
}

impl FrameRef<'_> {
    /// Total bytes the frame occupies in the file.
    pub fn total_len(&self) -> u64 {
        (self.payload.len() + FRAME_OVERHEAD) as u64
    }
}

/// What [`decode_frame`] found at the start of a buffer.
#[derive(Debug)]
pub enum FrameDecode<'a> {
    Frame(FrameRef<'a>),
    /// More bytes are needed: at least this many in all, from the frame start.
    Incomplete(usize),
}

/// Decodes the frame at the start of `buf`, which lies at absolute `offset` in the file.
/// Checks the length limit before anything is allocated, and the CRC.
pub fn decode_frame(buf: &[u8], offset: u64) -> Result<FrameDecode<'_>> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(FrameDecode::Incomplete(FRAME_HEADER_LEN));
    }
    let kind = FrameKind::from_byte(buf[0]);
    let len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if kind == FrameKind::Unknown(0) {
        return Err(FormatError::malformed(
            "frame",
            offset,
            "frame kind 0 (zeroed or unwritten bytes)",
        ));
    }
    if len > MAX_FRAME_LEN {
        return Err(FormatError::TooLarge {
            what: kind.name(),
            offset,
            len: len.into(),
            limit: MAX_FRAME_LEN.into(),
        });
    }
    let total = FRAME_OVERHEAD + len as usize;
    if buf.len() < total {
        return Ok(FrameDecode::Incomplete(total));
    }
    let body_end = FRAME_HEADER_LEN + len as usize;
    let stored = u32::from_le_bytes(buf[body_end..total].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&buf[..body_end]);
    if stored != computed {
        return Err(FormatError::BadChecksum {
            what: kind.name(),
            offset,
            stored,
            computed,
        });
    }
    Ok(FrameDecode::Frame(FrameRef {
        kind,
        offset,
        payload: &buf[FRAME_HEADER_LEN..body_end],
    }))
}

/// The fixed-size footer at the very end of a closed archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Offset of the summary frame.
    pub summary_offset: u64,
    /// Offset of the chunk index frame; it ends where the footer starts.
    pub index_offset: u64,
    pub chunk_count: u32,
    pub flags: u32,
}

/// Footer flag: the summary was rebuilt by recovery, not written at a clean close.
pub const FLAG_RECOVERED: u32 = 1;

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[0..8].copy_from_slice(&self.summary_offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.index_offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.chunk_count.to_le_bytes());
        b[20..24].copy_from_slice(&self.flags.to_le_bytes());
        // 24..28 reserved, zero.
        let crc = crc32c::crc32c(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b[32..40].copy_from_slice(&FOOTER_MAGIC);
        b
    }

    /// Decodes a footer found at absolute `offset` of a file `file_len` bytes long.
    pub fn decode(b: &[u8], offset: u64, file_len: u64) -> Result<Footer> {
        if b.len() != FOOTER_LEN || b[32..40] != FOOTER_MAGIC {
            return Err(FormatError::NoFooter);
        }
        let stored = u32::from_le_bytes(b[28..32].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(&b[0..28]);
        if stored != computed {
            return Err(FormatError::BadChecksum {
                what: "footer",
                offset,
                stored,
                computed,
            });
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let footer = Footer {
            summary_offset: u64_at(0),
            index_offset: u64_at(8),
            chunk_count: u32_at(16),
            flags: u32_at(20),
        };
        if footer.summary_offset < PREAMBLE_LEN as u64
            || footer.index_offset <= footer.summary_offset
            || footer.index_offset >= offset
            || offset + FOOTER_LEN as u64 != file_len
        {
            return Err(FormatError::malformed(
                "footer",
                offset,
                format!(
                    "summary at {} and index at {} do not fit a {} byte file",
                    footer.summary_offset, footer.index_offset, file_len
                ),
            ));
        }
        Ok(footer)
    }

    pub fn recovered(&self) -> bool {
        self.flags & FLAG_RECOVERED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_crc() {
        let f = encode_frame(FrameKind::Chunk, b"hello");
        match decode_frame(&f, 100).unwrap() {
            FrameDecode::Frame(r) => {
                assert_eq!(r.kind, FrameKind::Chunk);
                assert_eq!(r.payload, b"hello");
                assert_eq!(r.total_len(), f.len() as u64);
            }
            FrameDecode::Incomplete(_) => panic!("complete frame"),
        }
        let mut bad = f.clone();
        bad[6] ^= 1;
        assert!(matches!(
            decode_frame(&bad, 100),
            Err(FormatError::BadChecksum { offset: 100, .. })
        ));
        assert!(matches!(
            decode_frame(&f[..7], 0).unwrap(),
            FrameDecode::Incomplete(n) if n == f.len()
        ));
    }

    #[test]
    fn oversized_length_is_refused_before_allocation() {
        let mut f = vec![2u8];
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_frame(&f, 0),
            Err(FormatError::TooLarge { .. })
        ));
    }

    #[test]
    fn footer_round_trip() {
        let ft = Footer {
            summary_offset: 100,
            index_offset: 200,
            chunk_count: 3,
            flags: FLAG_RECOVERED,
        };
        let b = ft.encode();
        assert_eq!(Footer::decode(&b, 300, 340).unwrap(), ft);
        assert!(Footer::decode(&b, 300, 341).is_err());
    }
}
