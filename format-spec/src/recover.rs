//! Recovery: scan an archive that was never closed (crash, kill -9, full disk), keep every
//! chunk up to the first bad byte, and close it with a rebuilt summary. Reports exactly what
//! was kept and what was lost.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::Serialize;

use crate::chunk::{decode_chunk, CHUNK_HEADER_LEN};
use crate::error::{FormatError, Result};
use crate::frame::{encode_frame, encode_preamble, Footer, FrameKind, FLAG_RECOVERED};
use crate::index::ChunkEntry;
use crate::model::Header;
use crate::reader::Archive;
use crate::scan::{FrameScanner, Scanned};
use crate::summary::{RecoveryNote, Summary, SummaryBuilder};
use crate::writer::encode_tail;

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryReport {
    /// The file already had a valid footer: nothing to recover.
    pub intact: bool,
    /// Bytes of the input that are good (from its start).
    pub kept_bytes: u64,
    /// Bytes after those, discarded.
    pub lost_bytes: u64,
    pub chunks_kept: u32,
    pub records_kept: u64,
    /// Session time of the last record kept.
    pub last_time_ns: u64,
    /// Why the scan stopped early, with the byte offset; empty if the input was intact.
    pub reason: String,
}

/// The outcome of scanning: everything needed to write a closed archive.
#[derive(Debug, Clone)]
pub struct Scan {
    pub header: Header,
    pub summary: Summary,
    pub index: Vec<ChunkEntry>,
    pub report: RecoveryReport,
}

impl Scan {
    /// The scan as an opened archive (of a file `file_len` bytes long): its index points at
    /// the chunks found in the scanned file, so the [`RecordReader`](crate::RecordReader)
    /// reads a crashed file exactly as a closed one. The footer is synthetic: it is flagged
    /// as recovered unless the scan found the file intact, and its offsets point at the end
    /// of the good bytes.
    pub fn into_archive(self, file_len: u64) -> Archive {
        let end = self.report.kept_bytes;
        Archive {
            footer: Footer {
                summary_offset: end,
                index_offset: end,
                chunk_count: self.index.len() as u32,
                flags: if self.report.intact {
                    0
                } else {
                    FLAG_RECOVERED
                },
            },
            summary: self.summary,
            index: self.index,
            file_len,
        }
    }
}

/// Whether an error opening a file from its tail leaves a forward scan worth trying
/// (a missing or damaged tail), as opposed to a file that is not an archive at all, a newer
/// major version, or an I/O failure.
pub fn scan_can_help(e: &FormatError) -> bool {
    !matches!(
        e,
        FormatError::NotAnArchive | FormatError::UnsupportedVersion { .. } | FormatError::Io(_)
    )
}

/// Opens `input` from its tail; when the tail is missing or damaged, scans it from the start
/// instead. Returns the archive and, after a scan, what it kept and lost (with the error
/// that made the tail unusable). Either way the records are then read the same way.
pub fn open_or_scan<R: Read + Seek>(
    input: &mut R,
) -> Result<(Archive, Option<(RecoveryReport, FormatError)>)> {
    match crate::reader::open(input) {
        Ok(archive) => Ok((archive, None)),
        Err(e) if scan_can_help(&e) => {
            let len = input.seek(SeekFrom::End(0))?;
            input.seek(SeekFrom::Start(0))?;
            let scanned = scan(std::io::BufReader::new(&mut *input))?;
            let report = scanned.report.clone();
            Ok((scanned.into_archive(len), Some((report, e))))
        }
        Err(e) => Err(e),
    }
}

/// Scans `input` from its start. Chunks are decoded and checked; the scan stops at the
/// first frame that fails its CRC, fails to decode, or is cut short.
pub fn scan<R: Read>(input: R) -> Result<Scan> {
    scan_with(input, |_| Ok(()))
}

/// Forward scanning as a state machine (sans-io): push the file's bytes as they come, take
/// the good frames out one by one while it decodes every chunk and builds the summary and
/// the chunk index. Serves [`scan`], recovery, and following a file still being written.
/// It stops at the first damaged frame; [`ArchiveScanner::stopped`] says why.
#[derive(Default)]
pub struct ArchiveScanner {
    frames: FrameScanner,
    builder: Option<SummaryBuilder>,
    index: Vec<ChunkEntry>,
    records_kept: u64,
    last_time_ns: u64,
    intact: bool,
    stop: Option<String>,
}

impl std::fmt::Debug for ArchiveScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveScanner")
            .field("good_end", &self.good_end())
            .field("chunks", &self.index.len())
            .field("intact", &self.intact)
            .field("stop", &self.stop)
            .finish()
    }
}

/// A good frame the scanner kept, with its chunk index entry when it is a chunk.
#[derive(Debug, Clone)]
pub struct KeptFrame {
    /// The input's minor version (a copy keeps it).
    pub minor: u8,
    pub kind: FrameKind,
    pub offset: u64,
    pub payload: Vec<u8>,
    pub entry: Option<ChunkEntry>,
}

impl ArchiveScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the next bytes of the file.
    pub fn push(&mut self, data: &[u8]) {
        self.frames.push(data);
    }

    /// The next good frame; `Ok(None)` when more bytes are needed, or once the footer was
    /// read or the scan stopped at damage. An error means the input is no archive at all
    /// (nothing before the damage to keep).
    pub fn next_frame(&mut self) -> Result<Option<KeptFrame>> {
        loop {
            if let Some(kept) = self.step()? {
                return Ok(kept);
            }
        }
    }

    /// One frame: `Some(None)` = more bytes needed or done, `None` = a frame was skipped.
    fn step(&mut self) -> Result<Option<Option<KeptFrame>>> {
        if self.stop.is_some() {
            return Ok(Some(None));
        }
        let (kind, offset, payload) = match self.frames.next_unit() {
            Ok(None) => return Ok(Some(None)),
            Ok(Some(Scanned::Footer { .. })) => {
                self.intact = true;
                return Ok(Some(None));
            }
            Ok(Some(Scanned::Frame {
                kind,
                offset,
                payload,
            })) => (kind, offset, payload),
            Err(e) if self.builder.is_none() => return Err(e),
            Err(e) => {
                self.stop = Some(e.to_string());
                return Ok(Some(None));
            }
        };
        let mut entry = None;
        match kind {
            FrameKind::Header => {
                if self.builder.is_some() {
                    self.stop = Some(format!("second header frame at byte {offset}"));
                    return Ok(Some(None));
                }
                let header: Header = crate::model::parse_json_object(&payload).map_err(|e| {
                    FormatError::malformed("header frame", offset, format!("bad JSON: {e}"))
                })?;
                self.builder = Some(SummaryBuilder::new(header));
            }
            FrameKind::Chunk => {
                let Some(b) = self.builder.as_mut() else {
                    return Err(FormatError::malformed(
                        "archive",
                        offset,
                        "a chunk comes before the header",
                    ));
                };
                let chunk = match decode_chunk(&payload, offset) {
                    Ok(c) => c,
                    Err(e) => {
                        self.stop = Some(format!("damaged chunk: {e}"));
                        return Ok(Some(None));
                    }
                };
                for r in &chunk.records {
                    b.observe(r);
                    self.last_time_ns = self.last_time_ns.max(r.time_ns);
                }
                self.records_kept += chunk.records.len() as u64;
                let h = chunk.header;
                let e = ChunkEntry {
                    lane: h.lane,
                    start_ns: h.start_ns,
                    end_ns: h.end_ns,
                    offset,
                    compressed_len: (payload.len() - CHUNK_HEADER_LEN) as u32,
                    uncompressed_len: h.uncompressed_len,
                    record_count: h.record_count,
                    first_turn: h.first_turn,
                    last_turn: h.last_turn,
                };
                self.index.push(e);
                entry = Some(e);
            }
            // an old summary/index (from an interrupted close) is rebuilt, not copied
            FrameKind::Summary | FrameKind::ChunkIndex => return Ok(None),
            FrameKind::Unknown(_) => {}
        }
        Ok(Some(Some(KeptFrame {
            minor: self.frames.minor(),
            kind,
            offset,
            payload,
            entry,
        })))
    }

    /// Nothing more will come: the footer was read or the scan stopped at damage.
    pub fn finished(&self) -> bool {
        self.intact || self.stop.is_some()
    }

    /// The footer was read: the file was closed.
    pub fn intact(&self) -> bool {
        self.intact
    }

    /// Why the scan stopped early, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stop.as_deref()
    }

    /// Offset just past the last good frame.
    pub fn good_end(&self) -> u64 {
        self.frames.good_end()
    }

    pub fn header(&self) -> Option<&Header> {
        self.builder.as_ref().map(SummaryBuilder::header)
    }

    /// The summary of what was kept so far (none before the header frame).
    pub fn summary(&self) -> Option<Summary> {
        self.builder.as_ref().map(SummaryBuilder::build)
    }

    /// The chunks kept so far, in file order.
    pub fn index(&self) -> &[ChunkEntry] {
        &self.index
    }

    /// The archive kept so far (of a file `file_len` bytes long), readable with the
    /// [`RecordReader`](crate::RecordReader); none before the header frame.
    pub fn archive(&self, file_len: u64) -> Option<Archive> {
        let summary = self.summary()?;
        let end = self.good_end();
        Some(Archive {
            footer: Footer {
                summary_offset: end,
                index_offset: end,
                chunk_count: self.index.len() as u32,
                flags: if self.intact { 0 } else { FLAG_RECOVERED },
            },
            summary,
            index: self.index.clone(),
            file_len,
        })
    }

    /// Ends the scan of an input `total` bytes long: what was kept, what was lost and why.
    pub fn finish(self, total: u64) -> Result<Scan> {
        let Some(builder) = self.builder else {
            return Err(if total == 0 {
                FormatError::NotAnArchive
            } else {
                FormatError::Truncated {
                    offset: self.frames.good_end(),
                    needed: 1,
                }
            });
        };
        let kept_bytes = self.frames.good_end();
        let mut report = RecoveryReport {
            intact: self.intact,
            kept_bytes,
            lost_bytes: total.saturating_sub(kept_bytes),
            chunks_kept: self.index.len() as u32,
            records_kept: self.records_kept,
            last_time_ns: self.last_time_ns,
            reason: match self.stop {
                Some(s) => s,
                None => self.frames.leftover().unwrap_or_default(),
            },
        };
        if report.intact && report.lost_bytes > 0 && report.reason.is_empty() {
            report.reason = format!("{} bytes after the footer", report.lost_bytes);
        }
        let header = builder.header().clone();
        let mut summary = builder.build();
        if !report.intact {
            summary.recovery = Some(RecoveryNote {
                kept_bytes: report.kept_bytes,
                lost_bytes: report.lost_bytes,
                chunks_kept: report.chunks_kept,
                reason: report.reason.clone(),
            });
        }
        Ok(Scan {
            header,
            summary,
            index: self.index,
            report,
        })
    }
}

/// Like [`scan`], also handing each good frame, in order, to `sink`.
fn scan_with<R: Read>(
    mut input: R,
    mut sink: impl FnMut(&KeptFrame) -> Result<()>,
) -> Result<Scan> {
    let mut scanner = ArchiveScanner::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    loop {
        while let Some(frame) = scanner.next_frame()? {
            sink(&frame)?;
        }
        if scanner.finished() {
            break;
        }
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        scanner.push(&buf[..n]);
    }
    // count the rest of the input, even past a damaged frame
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    scanner.finish(total)
}

/// Writes a closed copy of `input` to `output`: every good frame, then a rebuilt summary,
/// index and footer (flagged as recovered unless the input was intact).
pub fn recover_to<R: Read, W: Write>(input: R, mut output: W) -> Result<RecoveryReport> {
    let mut pos: u64 = 0;
    let mut index = Vec::new();
    let mut write_err: Option<std::io::Error> = None;
    let scan = scan_with(input, |frame| {
        let KeptFrame {
            minor,
            kind,
            ref payload,
            entry,
            ..
        } = *frame;
        let mut bytes = Vec::with_capacity(payload.len() + 32);
        if pos == 0 {
            // the preamble goes before the first kept frame, whatever its kind
            bytes.extend_from_slice(&encode_preamble(minor));
        }
        if let Some(mut e) = entry {
            e.offset = pos + bytes.len() as u64;
            index.push(e);
        }
        bytes.extend_from_slice(&encode_frame(kind, payload));
        if let Err(e) = output.write_all(&bytes) {
            write_err.get_or_insert(e);
        }
        pos += bytes.len() as u64;
        Ok(())
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    let flags = if scan.report.intact {
        0
    } else {
        FLAG_RECOVERED
    };
    output.write_all(&encode_tail(pos, &scan.summary, &index, flags)?)?;
    output.flush()?;
    Ok(scan.report)
}

/// Recovers a file in place: cuts it after the last good frame and appends a rebuilt
/// summary, index and footer. Does nothing to an intact file. Syncs before returning.
pub fn recover_in_place(path: &Path) -> Result<RecoveryReport> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let scan = scan(std::io::BufReader::new(&mut file))?;
    if scan.report.intact {
        return Ok(scan.report);
    }
    // encoded before truncating: a tail that cannot be written leaves the file as it was
    let tail = encode_tail(
        scan.report.kept_bytes,
        &scan.summary,
        &scan.index,
        FLAG_RECOVERED,
    )?;
    file.set_len(scan.report.kept_bytes)?;
    file.seek(SeekFrom::Start(scan.report.kept_bytes))?;
    file.write_all(&tail)?;
    file.sync_all()?;
    Ok(scan.report)
}
