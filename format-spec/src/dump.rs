//! The canonical JSON dump of an archive, frame by frame: what the conformance vectors'
//! expected `.json` files hold, and what any second implementation must print.

use serde_json::{json, Value};

use crate::chunk::{inflate, ChunkEncoding, ChunkHeader, RECORD_HEADER_LEN};
use crate::error::FormatError;
use crate::frame::FrameKind;
use crate::index::{decode_entries, max_chunks, unpack_tail};
use crate::model::{kind_name, Record};
use crate::scan::{FrameScanner, Scanned};

/// Dumps every unit of `bytes` in file order. Never fails: damage ends the dump with a
/// `damage` entry `{offset, error}` where `error` is one of `not_an_archive`,
/// `unsupported_version`, `bad_checksum`, `too_large`, `malformed`, `truncated`.
pub fn dump(bytes: &[u8]) -> Value {
    let mut scanner = FrameScanner::new();
    scanner.push(bytes);
    let mut out = json!({
        "header": null,
        "chunks": [],
        "other_frames": [],
        "summary": null,
        "index": null,
        "footer": null,
        "damage": null,
    });
    loop {
        match scanner.next_unit() {
            Ok(Some(Scanned::Frame { kind, offset, payload })) => match kind {
                FrameKind::Header => match serde_json::from_slice::<Value>(&payload) {
                    Ok(v) => out["header"] = v,
                    Err(_) => return damaged(out, offset, "malformed"),
                },
                FrameKind::Chunk => match dump_chunk(&payload, offset) {
                    Ok(v) => out["chunks"].as_array_mut().expect("array").push(v),
                    Err(e) => return damaged(out, offset, code(&e)),
                },
                FrameKind::Summary => match unpack_tail(&payload, "summary", offset)
                    .and_then(|raw| crate::summary::check_json_values(&raw, offset).map(|_| raw))
                    .ok()
                    .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
                    .filter(|v| {
                        let turns = v["turns"].as_array().map_or(0, Vec::len);
                        crate::summary::check_turn_count(turns, offset).is_ok()
                    }) {
                    Some(v) => out["summary"] = v,
                    None => return damaged(out, offset, "malformed"),
                },
                FrameKind::ChunkIndex => match unpack_tail(&payload, "chunk index", offset)
                    .and_then(|raw| decode_entries(&raw, offset, max_chunks(offset)))
                {
                    Ok(entries) => {
                        out["index"] = entries
                            .iter()
                            .map(|e| {
                                json!({
                                    "lane": e.lane, "start_ns": e.start_ns, "end_ns": e.end_ns,
                                    "offset": e.offset, "compressed_len": e.compressed_len,
                                    "uncompressed_len": e.uncompressed_len, "record_count": e.record_count,
                                    "first_turn": e.first_turn, "last_turn": e.last_turn,
                                })
                            })
                            .collect()
                    }
                    Err(e) => return damaged(out, offset, code(&e)),
                },
                FrameKind::Unknown(k) => out["other_frames"]
                    .as_array_mut()
                    .expect("array")
                    .push(json!({"offset": offset, "kind": k, "payload_hex": hex(&payload)})),
            },
            Ok(Some(Scanned::Footer { footer, .. })) => {
                out["footer"] = json!({
                    "summary_offset": footer.summary_offset,
                    "index_offset": footer.index_offset,
                    "chunk_count": footer.chunk_count,
                    "flags": footer.flags,
                });
            }
            Ok(None) => {
                if scanner.pending() > 0 {
                    return damaged(out, scanner.good_end(), "truncated");
                }
                return out;
            }
            Err(e) => return damaged(out, scanner.good_end(), code(&e)),
        }
    }
}

fn damaged(mut out: Value, offset: u64, error: &str) -> Value {
    out["damage"] = json!({"offset": offset, "error": error});
    out
}

fn code(e: &FormatError) -> &'static str {
    match e {
        FormatError::NotAnArchive => "not_an_archive",
        FormatError::UnsupportedVersion { .. } => "unsupported_version",
        FormatError::BadChecksum { .. } => "bad_checksum",
        FormatError::TooLarge { .. } | FormatError::TooMany { .. } => "too_large",
        FormatError::Truncated { .. } | FormatError::NoFooter => "truncated",
        _ => "malformed",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn dump_chunk(payload: &[u8], offset: u64) -> Result<Value, FormatError> {
    // decode fully first so a dump never shows a chunk the reader would reject
    let chunk = crate::chunk::decode_chunk(payload, offset)?;
    if chunk.skipped() {
        let h = chunk.header;
        return Ok(json!({
            "offset": offset,
            "lane": h.lane,
            "encoding": h.encoding,
            "start_ns": h.start_ns,
            "end_ns": h.end_ns,
            "record_count": h.record_count,
            "uncompressed_len": h.uncompressed_len,
            "first_turn": h.first_turn,
            "last_turn": h.last_turn,
            "records": [],
            "skipped": true,
        }));
    }
    let (h, body): (ChunkHeader, Vec<u8>) = inflate(payload, offset)?;
    // JSON payloads are dumped as stored, so unknown fields show too
    let records_bytes = match ChunkEncoding::from_byte(h.encoding) {
        Some(
            ChunkEncoding::AudioPcm16Lpc2
            | ChunkEncoding::AudioPcm16Rice
            | ChunkEncoding::AudioPcm16Qlpc,
        ) => {
            let n = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
            &body[4..4 + n]
        }
        _ => &body[..],
    };
    let mut records = Vec::with_capacity(chunk.records.len());
    let mut pos = 0usize;
    for rec in &chunk.records {
        let len = u32::from_le_bytes(
            records_bytes[pos + 10..pos + 14]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        let raw = &records_bytes[pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + len];
        pos += RECORD_HEADER_LEN + len;
        let data = match &rec.record {
            Record::Audio(a) => json!({
                "track": a.track,
                "channels": a.channels,
                "first_sample": a.first_sample,
                "samples": a.samples,
            }),
            Record::Unknown { payload, .. } => json!({"payload_hex": hex(payload)}),
            _ => serde_json::from_slice::<Value>(raw).unwrap_or(Value::Null),
        };
        let kind_no = rec.record.kind();
        records.push(json!({
            "time_ns": rec.time_ns,
            "kind": kind_no,
            "kind_name": kind_name(kind_no),
            "data": data,
        }));
    }
    Ok(json!({
        "offset": offset,
        "lane": h.lane,
        "encoding": h.encoding,
        "start_ns": h.start_ns,
        "end_ns": h.end_ns,
        "record_count": h.record_count,
        "uncompressed_len": h.uncompressed_len,
        "first_turn": h.first_turn,
        "last_turn": h.last_turn,
        "records": records,
    }))
}
