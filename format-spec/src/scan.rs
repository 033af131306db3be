//! Forward scanning: walks an archive frame by frame from the start, checking every CRC.
//! Used by recovery, `verify`, and to follow a file that is still being written. Sans-io:
//! push bytes as they arrive, pull whole frames out.

use crate::error::{FormatError, Result};
use crate::frame::{
    check_preamble, decode_frame, Footer, FrameDecode, FrameKind, FOOTER_LEN, FOOTER_MAGIC,
    PREAMBLE_LEN,
};

/// One complete, CRC-checked unit found by the scanner.
#[derive(Debug, Clone)]
pub enum Scanned {
    Frame {
        kind: FrameKind,
        offset: u64,
        payload: Vec<u8>,
    },
    Footer {
        offset: u64,
        footer: Footer,
    },
}

/// Scans frames in file order. After an error it stays stopped at the bad offset.
#[derive(Debug, Default)]
pub struct FrameScanner {
    /// Absolute offset of `buf[0]`.
    offset: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed (compacted lazily).
    start: usize,
    preamble_ok: bool,
    /// The minor version in the preamble, once read.
    minor: u8,
    after_index: bool,
    done: bool,
    failed: bool,
}

impl FrameScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the next bytes of the file.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The file's minor version (SPEC §2.1), once the preamble has been read; 0 before.
    pub fn minor(&self) -> u8 {
        self.minor
    }

    /// Offset just past the last complete, valid unit returned: everything before it is good.
    pub fn good_end(&self) -> u64 {
        self.offset
    }

    /// Bytes pushed but not yet returned as a complete unit.
    pub fn pending(&self) -> usize {
        self.rest().len()
    }

    /// True once the footer was read.
    pub fn finished(&self) -> bool {
        self.done
    }

    /// The next unit; `Ok(None)` when more bytes are needed (or the footer was read).
    /// An error names the offset of the first bad byte; the scanner then stops there.
    pub fn next_unit(&mut self) -> Result<Option<Scanned>> {
        if self.done || self.failed {
            return Ok(None);
        }
        let r = self.next_inner();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Scanned>> {
        if !self.preamble_ok {
            if self.rest().len() < PREAMBLE_LEN {
                if !crate::frame::MAGIC.starts_with(&self.rest()[..self.rest().len().min(8)]) {
                    return Err(FormatError::NotAnArchive);
                }
                return Ok(None);
            }
            self.minor = check_preamble(self.rest())?.1;
            self.consume(PREAMBLE_LEN);
            self.preamble_ok = true;
        }
        if self.after_index
            && self.rest().len() >= FOOTER_LEN
            && self.rest()[32..40] == FOOTER_MAGIC
        {
            let file_len = self.offset + FOOTER_LEN as u64;
            let footer = Footer::decode(&self.rest()[..FOOTER_LEN], self.offset, file_len)?;
            let offset = self.offset;
            self.consume(FOOTER_LEN);
            self.done = true;
            return Ok(Some(Scanned::Footer { offset, footer }));
        }
        if self.after_index && self.rest().len() < FOOTER_LEN {
            // could be the start of a footer: wait for all of it
            return Ok(None);
        }
        match decode_frame(&self.buf[self.start..], self.offset)? {
            FrameDecode::Incomplete(_) => Ok(None),
            FrameDecode::Frame(f) => {
                let kind = f.kind;
                let offset = f.offset;
                let payload = f.payload.to_vec();
                let total = f.total_len() as usize;
                self.consume(total);
                self.after_index = kind == FrameKind::ChunkIndex;
                Ok(Some(Scanned::Frame {
                    kind,
                    offset,
                    payload,
                }))
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Call at end of input: describes why bytes after [`good_end`](Self::good_end) remain, if any.
    pub fn leftover(&self) -> Option<String> {
        if self.rest().is_empty() || self.failed {
            return None;
        }
        if !self.preamble_ok {
            return Some(format!(
                "file ends inside the preamble ({} bytes)",
                self.rest().len()
            ));
        }
        let what = match self.rest().first().map(|&b| FrameKind::from_byte(b)) {
            _ if self.after_index => "footer",
            Some(k) => k.name(),
            None => "frame",
        };
        Some(format!(
            "truncated {what} at byte {} ({} bytes present)",
            self.offset,
            self.rest().len()
        ))
    }
}
