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

/// Like [`scan`], also handing each good unit's bytes, in order, to `sink`.
fn scan_with<R: Read>(mut input: R, mut sink: impl FnMut(Unit<'_>) -> Result<()>) -> Result<Scan> {
    let mut scanner = FrameScanner::new();
    let mut builder: Option<SummaryBuilder> = None;
    let mut index = Vec::new();
    let mut report = RecoveryReport {
        intact: false,
        kept_bytes: 0,
        lost_bytes: 0,
        chunks_kept: 0,
        records_kept: 0,
        last_time_ns: 0,
        reason: String::new(),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut total: u64 = 0;
    let mut eof = false;
    let mut stop: Option<String> = None;
    'outer: loop {
        loop {
            match scanner.next_unit() {
                Ok(Some(Scanned::Footer { .. })) => {
                    report.intact = true;
                }
                Ok(Some(Scanned::Frame {
                    kind,
                    offset,
                    payload,
                })) => match kind {
                    FrameKind::Header => {
                        if builder.is_some() {
                            stop = Some(format!("second header frame at byte {offset}"));
                            break 'outer;
                        }
                        let header: Header =
                            crate::model::parse_json_object(&payload).map_err(|e| {
                                FormatError::malformed(
                                    "header frame",
                                    offset,
                                    format!("bad JSON: {e}"),
                                )
                            })?;
                        sink(Unit {
                            minor: scanner.minor(),
                            kind,
                            payload: &payload,
                            entry: None,
                        })?;
                        builder = Some(SummaryBuilder::new(header));
                    }
                    FrameKind::Chunk => {
                        let Some(b) = builder.as_mut() else {
                            return Err(FormatError::malformed(
                                "archive",
                                offset,
                                "a chunk comes before the header",
                            ));
                        };
                        match decode_chunk(&payload, offset) {
                            Ok(chunk) => {
                                for r in &chunk.records {
                                    b.observe(r);
                                    report.last_time_ns = report.last_time_ns.max(r.time_ns);
                                }
                                report.records_kept += chunk.records.len() as u64;
                                report.chunks_kept += 1;
                                let h = chunk.header;
                                let entry = ChunkEntry {
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
                                sink(Unit {
                                    minor: scanner.minor(),
                                    kind,
                                    payload: &payload,
                                    entry: Some(entry),
                                })?;
                                index.push(entry);
                            }
                            Err(e) => {
                                stop = Some(format!("damaged chunk: {e}"));
                                break 'outer;
                            }
                        }
                    }
                    // an old summary/index (from an interrupted close) is rebuilt, not copied
                    FrameKind::Summary | FrameKind::ChunkIndex => {}
                    FrameKind::Unknown(_) => sink(Unit {
                        minor: scanner.minor(),
                        kind,
                        payload: &payload,
                        entry: None,
                    })?,
                },
                Ok(None) => break,
                Err(e) => {
                    if builder.is_none() {
                        return Err(e);
                    }
                    stop = Some(e.to_string());
                    break 'outer;
                }
            }
        }
        if eof || scanner.finished() {
            break;
        }
        let n = input.read(&mut buf)?;
        if n == 0 {
            eof = true;
        } else {
            total += n as u64;
            scanner.push(&buf[..n]);
        }
    }
    // count the rest of the input, even past a damaged frame
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let Some(builder) = builder else {
        return Err(if total == 0 {
            FormatError::NotAnArchive
        } else {
            FormatError::Truncated {
                offset: scanner.good_end(),
                needed: 1,
            }
        });
    };
    report.kept_bytes = scanner.good_end();
    report.lost_bytes = total - report.kept_bytes;
    report.reason = match stop {
        Some(s) => s,
        None => scanner.leftover().unwrap_or_default(),
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
        index,
        report,
    })
}

/// A good frame handed to the sink, with its index entry when it is a chunk.
struct Unit<'a> {
    /// The input's minor version, which the copy keeps.
    minor: u8,
    kind: FrameKind,
    payload: &'a [u8],
    entry: Option<ChunkEntry>,
}

/// Writes a closed copy of `input` to `output`: every good frame, then a rebuilt summary,
/// index and footer (flagged as recovered unless the input was intact).
pub fn recover_to<R: Read, W: Write>(input: R, mut output: W) -> Result<RecoveryReport> {
    let mut pos: u64 = 0;
    let mut index = Vec::new();
    let mut write_err: Option<std::io::Error> = None;
    let scan = scan_with(input, |unit| {
        let Unit {
            minor,
            kind,
            payload,
            entry,
        } = unit;
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
    output.write_all(&encode_tail(pos, &scan.summary, &index, flags))?;
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
    file.set_len(scan.report.kept_bytes)?;
    file.seek(SeekFrom::Start(scan.report.kept_bytes))?;
    file.write_all(&encode_tail(
        scan.report.kept_bytes,
        &scan.summary,
        &scan.index,
        FLAG_RECOVERED,
    ))?;
    file.sync_all()?;
    Ok(scan.report)
}
