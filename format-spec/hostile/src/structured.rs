//! Structure-aware fuzz inputs: fuzzer bytes are read as a seed choice and a list of edits to
//! a real archive's parts (chunk header fields, records, JSON numbers, raw body bytes, index
//! entries, footer, summary), and the archive is then put back together with every zstd
//! body re-compressed, `uncompressed_len`, frame lengths and CRCs recomputed, and the index
//! and footer matching (unless an edit lies in them on purpose). So the mutations reach the
//! chunk, record, audio (both codecs), index and summary decoders instead of dying at a CRC.

use calltape_format::chunk::{ChunkHeader, CHUNK_HEADER_LEN, MAX_CHUNK_UNCOMPRESSED};
use calltape_format::frame::{encode_frame, Footer, FrameKind, FOOTER_LEN, PREAMBLE_LEN};
use calltape_format::index::{encode_entries, pack_tail};
use calltape_format::ChunkEntry;

use crate::cases;
use crate::forge::record;

/// The archives edits start from: the conformance vectors (every audio codec, unknown kinds
/// and encodings) and a few of the hostile cases in honest form.
pub fn seeds() -> Vec<Vec<u8>> {
    vec![
        include_bytes!("../../vectors/full.calltape").to_vec(),
        include_bytes!("../../vectors/audio.calltape").to_vec(),
        include_bytes!("../../vectors/audio_rice.calltape").to_vec(),
        include_bytes!("../../vectors/minimal.calltape").to_vec(),
        include_bytes!("../../vectors/unknown_kind.calltape").to_vec(),
        include_bytes!("../../vectors/unknown_encoding.calltape").to_vec(),
        cases::lying_header(cases::Lie::FirstTurn(2)),
        cases::audio_call(16_000, 0),
        cases::text_call("hello \u{1b}[2J"),
        include_bytes!("../../vectors/audio_lpc.calltape").to_vec(),
    ]
}

/// Values that break code: zeros, ones, powers of two and their neighbours, maxima.
const INTERESTING: [u64; 18] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    65_537,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    (1 << 53) + 1,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
];

/// Numbers written into JSON in place of another.
const JSON_NUMBERS: [&str; 9] = [
    "0",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "-9223372036854775808",
    "1e308",
    "1.5",
    "200000",
];

/// Reads the fuzzer's bytes as numbers; past the end everything is 0.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |v, i| v | (u64::from(self.u8()) << (8 * i)))
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// An interesting value, or one near `current`, or raw input.
    fn value(&mut self, current: u64) -> u64 {
        match self.u8() % 4 {
            0 | 1 => INTERESTING[usize::from(self.u8()) % INTERESTING.len()],
            2 => current
                .wrapping_add(u64::from(self.u8() % 3))
                .wrapping_sub(1),
            _ => self.u64(),
        }
    }
}

/// A record of an encoding-0 body.
#[derive(Clone)]
struct Rec {
    kind: u16,
    time_ns: u64,
    payload: Vec<u8>,
}

/// A chunk taken apart: its header and its body, split into records when it is encoding 0
/// and splits cleanly.
#[derive(Clone)]
struct Part {
    header: ChunkHeader,
    records: Option<Vec<Rec>>,
    body: Vec<u8>,
}

impl Part {
    fn body(&self) -> Vec<u8> {
        match &self.records {
            Some(recs) => recs
                .iter()
                .flat_map(|r| record(r.kind, r.time_ns, &r.payload))
                .collect(),
            None => self.body.clone(),
        }
    }
}

fn split_records(body: &[u8]) -> Option<Vec<Rec>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let head = body.get(pos..pos + 14)?;
        let len = u32::from_le_bytes(head[10..14].try_into().ok()?) as usize;
        let payload = body.get(pos + 14..pos + 14 + len)?;
        out.push(Rec {
            kind: u16::from_le_bytes([head[0], head[1]]),
            time_ns: u64::from_le_bytes(head[2..10].try_into().ok()?),
            payload: payload.to_vec(),
        });
        pos += 14 + len;
    }
    Some(out)
}

/// An archive taken apart.
struct Parts {
    preamble: Vec<u8>,
    header_json: Vec<u8>,
    chunks: Vec<Part>,
    /// Extension frames, kept in place after the chunk they follow (index into `chunks`).
    others: Vec<(usize, u8, Vec<u8>)>,
    summary_json: Vec<u8>,
}

fn take_apart(file: &[u8]) -> Option<Parts> {
    let preamble = file.get(..PREAMBLE_LEN)?.to_vec();
    let mut parts = Parts {
        preamble,
        header_json: Vec::new(),
        chunks: Vec::new(),
        others: Vec::new(),
        summary_json: b"{}".to_vec(),
    };
    let mut pos = PREAMBLE_LEN;
    while pos + 9 <= file.len() {
        let kind = file[pos];
        let len = u32::from_le_bytes(file[pos + 1..pos + 5].try_into().ok()?) as usize;
        let payload = file.get(pos + 5..pos + 5 + len)?;
        pos += 9 + len;
        match FrameKind::from_byte(kind) {
            FrameKind::Header => parts.header_json = payload.to_vec(),
            FrameKind::Chunk => {
                let header = ChunkHeader::decode(payload, 0).ok()?;
                let body = zstd::bulk::decompress(
                    &payload[CHUNK_HEADER_LEN..],
                    header.uncompressed_len as usize,
                )
                .unwrap_or_default();
                let records = (header.encoding == 0)
                    .then(|| split_records(&body))
                    .flatten();
                parts.chunks.push(Part {
                    header,
                    records,
                    body,
                });
            }
            FrameKind::Summary => {
                if payload.len() > 4 {
                    parts.summary_json =
                        zstd::bulk::decompress(&payload[4..], 64 << 20).unwrap_or_default();
                }
            }
            FrameKind::ChunkIndex => break,
            FrameKind::Unknown(k) => parts.others.push((parts.chunks.len(), k, payload.to_vec())),
        }
    }
    Some(parts)
}

/// Replaces the `n`-th JSON number in `text` (counting from 0, wrapping) with `with`.
fn replace_number(text: &mut Vec<u8>, n: usize, with: &str) {
    let mut starts = Vec::new();
    let mut in_string = false;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if in_string {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < text.len()
                && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            {
                i += 1;
            }
            starts.push((start, i));
            continue;
        }
        i += 1;
    }
    if starts.is_empty() {
        return;
    }
    let (a, b) = starts[n % starts.len()];
    text.splice(a..b, with.bytes());
}

fn set_header_field(h: &mut ChunkHeader, field: u8, input: &mut Input) {
    match field % 8 {
        0 => h.lane = input.value(h.lane.into()) as u16,
        1 => h.encoding = input.value(h.encoding.into()) as u8,
        2 => h.start_ns = input.value(h.start_ns),
        3 => h.end_ns = input.value(h.end_ns),
        4 => h.record_count = input.value(h.record_count.into()) as u32,
        5 => h.first_turn = input.value(h.first_turn.into()) as u32,
        6 => h.last_turn = input.value(h.last_turn.into()) as u32,
        _ => h.uncompressed_len = input.value(h.uncompressed_len.into()) as u32,
    }
}

fn set_entry_field(e: &mut ChunkEntry, field: u8, v: u64) {
    match field % 9 {
        0 => e.lane = v as u16,
        1 => e.start_ns = v,
        2 => e.end_ns = v,
        3 => e.offset = v,
        4 => e.compressed_len = v as u32,
        5 => e.uncompressed_len = v as u32,
        6 => e.record_count = v as u32,
        7 => e.first_turn = v as u32,
        _ => e.last_turn = v as u32,
    }
}

/// Builds an archive from fuzzer bytes: byte 0 picks the seed, then each edit is an opcode
/// and its operands. Always returns a file (the seed itself when the input is empty).
pub fn build(data: &[u8]) -> Vec<u8> {
    let seeds = seeds();
    let mut input = Input { data, pos: 0 };
    let seed = &seeds[usize::from(input.u8()) % seeds.len()];
    let Some(mut parts) = take_apart(seed) else {
        return seed.clone();
    };
    let mut entry_edits: Vec<(usize, u8, u64)> = Vec::new();
    let mut keep_count = vec![false; parts.chunks.len()];
    let mut footer_count: Option<u32> = None;
    let mut cut: Option<u64> = None;
    let mut edits = 0;
    while !input.done() && edits < 64 {
        edits += 1;
        let op = input.u8();
        let n = parts.chunks.len().max(1);
        let at = usize::from(input.u8()) % n;
        match op % 12 {
            // a chunk header field (record_count then stays as set)
            0 => {
                if let Some(c) = parts.chunks.get_mut(at) {
                    let field = input.u8();
                    set_header_field(&mut c.header, field, &mut input);
                    if field % 8 == 4 {
                        keep_count[at] = true;
                    }
                }
            }
            // a record's kind or time
            1 | 2 => {
                if let Some(recs) = parts.chunks.get_mut(at).and_then(|c| c.records.as_mut()) {
                    let i = usize::from(input.u8()) % recs.len().max(1);
                    if let Some(r) = recs.get_mut(i) {
                        if op % 12 == 1 {
                            r.kind = input.value(r.kind.into()) as u16;
                        } else {
                            r.time_ns = input.value(r.time_ns);
                        }
                    }
                }
            }
            // a number in a record's JSON
            3 => {
                if let Some(recs) = parts.chunks.get_mut(at).and_then(|c| c.records.as_mut()) {
                    let i = usize::from(input.u8()) % recs.len().max(1);
                    let (k, v) = (input.u8(), input.u8());
                    if let Some(r) = recs.get_mut(i) {
                        replace_number(
                            &mut r.payload,
                            k.into(),
                            JSON_NUMBERS[usize::from(v) % JSON_NUMBERS.len()],
                        );
                    }
                }
            }
            // a record repeated (zero-length unknown records, turn floods, JSON piles)
            4 => {
                if let Some(recs) = parts.chunks.get_mut(at).and_then(|c| c.records.as_mut()) {
                    let i = usize::from(input.u8()) % recs.len().max(1);
                    let times = 1usize << (input.u8() % 21);
                    if let Some(r) = recs.get(i).cloned() {
                        let size = 14 + r.payload.len();
                        let times = times.min(MAX_CHUNK_UNCOMPRESSED as usize / size);
                        recs.extend(std::iter::repeat_n(r, times));
                    }
                }
            }
            // an empty record of any kind
            5 => {
                if let Some(recs) = parts.chunks.get_mut(at).and_then(|c| c.records.as_mut()) {
                    let kind = input.value(200) as u16;
                    recs.push(Rec {
                        kind,
                        time_ns: 0,
                        payload: Vec::new(),
                    });
                }
            }
            // raw body bytes (audio planes, Rice bitstreams, record headers)
            6 | 7 => {
                if let Some(c) = parts.chunks.get_mut(at) {
                    let mut body = c.body();
                    c.records = None;
                    if !body.is_empty() {
                        let pos = input.u64() as usize % body.len();
                        let width = [1usize, 2, 4, 8][usize::from(input.u8() % 4)];
                        let v = input.value(0).to_le_bytes();
                        for (k, b) in v.iter().take(width).enumerate() {
                            if let Some(x) = body.get_mut(pos + k) {
                                *x = *b;
                            }
                        }
                    }
                    c.body = body;
                }
            }
            // a body cut short
            8 => {
                if let Some(c) = parts.chunks.get_mut(at) {
                    let mut body = c.body();
                    c.records = None;
                    let keep = input.u64() as usize % (body.len() + 1);
                    body.truncate(keep);
                    c.body = body;
                }
            }
            // an index entry field, or the footer's chunk count
            9 => {
                let field = input.u8();
                let v = input.value(0);
                if field == 255 {
                    footer_count = Some(v as u32);
                } else {
                    entry_edits.push((at, field, v));
                }
            }
            // a number in the summary or the header JSON
            10 => {
                let (k, v, which) = (input.u8(), input.u8(), input.u8());
                let text = if which % 2 == 0 {
                    &mut parts.summary_json
                } else {
                    &mut parts.header_json
                };
                replace_number(
                    text,
                    k.into(),
                    JSON_NUMBERS[usize::from(v) % JSON_NUMBERS.len()],
                );
            }
            // no tail: a crashed file, cut somewhere
            _ => cut = Some(input.u64()),
        }
    }
    reassemble(&parts, &keep_count, &entry_edits, footer_count, cut)
}

fn reassemble(
    parts: &Parts,
    keep_count: &[bool],
    entry_edits: &[(usize, u8, u64)],
    footer_count: Option<u32>,
    cut: Option<u64>,
) -> Vec<u8> {
    let mut out = parts.preamble.clone();
    out.extend_from_slice(&encode_frame(FrameKind::Header, &parts.header_json));
    let mut entries = Vec::new();
    let others_at = |i: usize| parts.others.iter().filter(move |o| o.0 == i);
    for (i, c) in parts.chunks.iter().enumerate() {
        for (_, k, p) in others_at(i) {
            out.extend_from_slice(&encode_frame(FrameKind::Unknown(*k), p));
        }
        let body = c.body();
        let mut h = c.header;
        h.uncompressed_len = body.len() as u32;
        if !keep_count.get(i).copied().unwrap_or(false) {
            if let Some(recs) = &c.records {
                h.record_count = recs.len() as u32;
            }
        }
        let compressed = zstd::bulk::compress(&body, 1).unwrap_or_default();
        let mut payload = h.encode().to_vec();
        payload.extend_from_slice(&compressed);
        entries.push(ChunkEntry {
            lane: h.lane,
            start_ns: h.start_ns,
            end_ns: h.end_ns,
            offset: out.len() as u64,
            compressed_len: compressed.len() as u32,
            uncompressed_len: h.uncompressed_len,
            record_count: h.record_count,
            first_turn: h.first_turn,
            last_turn: h.last_turn,
        });
        out.extend_from_slice(&encode_frame(FrameKind::Chunk, &payload));
    }
    for (_, k, p) in others_at(parts.chunks.len()) {
        out.extend_from_slice(&encode_frame(FrameKind::Unknown(*k), p));
    }
    if let Some(at) = cut {
        out.truncate((at % (out.len() as u64 + 1)) as usize);
        return out;
    }
    for &(i, field, v) in entry_edits {
        if let Some(e) = entries.get_mut(i) {
            set_entry_field(e, field, v);
        }
    }
    let summary_offset = out.len() as u64;
    out.extend_from_slice(&encode_frame(
        FrameKind::Summary,
        &pack_tail(&parts.summary_json),
    ));
    let index_offset = out.len() as u64;
    out.extend_from_slice(&encode_frame(
        FrameKind::ChunkIndex,
        &pack_tail(&encode_entries(&entries)),
    ));
    let footer = Footer {
        summary_offset,
        index_offset,
        chunk_count: footer_count.unwrap_or(entries.len() as u32),
        flags: 0,
    };
    out.extend_from_slice(&footer.encode());
    debug_assert!(out.len() >= PREAMBLE_LEN + FOOTER_LEN);
    out
}
