//! Builds archives with valid frames and CRCs around whatever fields a test wants to lie
//! about. Nothing here goes through the writer's checks: that is the point.

use calltape_format::chunk::{ChunkHeader, CHUNK_HEADER_LEN, RECORD_HEADER_LEN};
use calltape_format::frame::{encode_frame, encode_preamble, Footer, FrameKind};
use calltape_format::index::{encode_entries, pack_tail};
use calltape_format::{ChunkEntry, Header, Summary, Totals};

/// One record as stored in a chunk body: kind, time, length, payload.
pub fn record(kind: u16, time_ns: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&time_ns.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A chunk header with the given lane, encoding and time range, and nothing else set.
pub fn chunk_header(lane: u16, encoding: u8, start_ns: u64, end_ns: u64) -> ChunkHeader {
    ChunkHeader {
        lane,
        encoding,
        start_ns,
        end_ns,
        record_count: 0,
        uncompressed_len: 0,
        first_turn: 0,
        last_turn: 0,
    }
}

/// A header with the given tracks (id, role, sample rate, channels, codec) as JSON values.
pub fn header(tracks: &[serde_json::Value]) -> Header {
    serde_json::from_value(serde_json::json!({
        "session_id": "hostile",
        "started_at": "2026-12-01T10:00:00Z",
        "started_at_unix_ns": 0,
        "tracks": tracks,
    }))
    .expect("a valid header")
}

/// An archive under construction: the preamble, the header frame and then data frames.
#[derive(Debug, Clone)]
pub struct Forge {
    pub header: Header,
    minor: u8,
    bytes: Vec<u8>,
    chunks: Vec<ChunkEntry>,
}

impl Forge {
    pub fn new(header: Header) -> Self {
        let minor = calltape_format::writer::minor_version_for(&header);
        let mut bytes = encode_preamble(minor).to_vec();
        let json = serde_json::to_vec(&header).expect("header serializes");
        bytes.extend_from_slice(&encode_frame(FrameKind::Header, &json));
        Forge {
            header,
            minor,
            bytes,
            chunks: Vec::new(),
        }
    }

    /// The minor version written in the preamble.
    pub fn minor(&self) -> u8 {
        self.minor
    }

    /// Appends a chunk whose body is `body` exactly as given (compressed with zstd); the
    /// header's `uncompressed_len` is set to the body's length, every other field is kept as
    /// given, lies included. The index entry copies the header.
    pub fn chunk(&mut self, header: ChunkHeader, body: &[u8]) -> &mut Self {
        let mut header = header;
        header.uncompressed_len = body.len() as u32;
        let compressed = zstd::bulk::compress(body, 9).expect("in-memory zstd");
        self.raw_chunk(header, &compressed)
    }

    /// Appends a chunk frame of the header and `compressed` as they are.
    pub fn raw_chunk(&mut self, header: ChunkHeader, compressed: &[u8]) -> &mut Self {
        let mut payload = header.encode().to_vec();
        payload.extend_from_slice(compressed);
        let offset = self.bytes.len() as u64;
        self.bytes
            .extend_from_slice(&encode_frame(FrameKind::Chunk, &payload));
        self.chunks.push(ChunkEntry {
            lane: header.lane,
            start_ns: header.start_ns,
            end_ns: header.end_ns,
            offset,
            compressed_len: (payload.len() - CHUNK_HEADER_LEN) as u32,
            uncompressed_len: header.uncompressed_len,
            record_count: header.record_count,
            first_turn: header.first_turn,
            last_turn: header.last_turn,
        });
        self
    }

    /// The index entries of the chunks so far (to close with, possibly altered).
    pub fn entries(&self) -> Vec<ChunkEntry> {
        self.chunks.clone()
    }

    /// The file as a crash would leave it: no summary, index or footer.
    pub fn unclosed(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// Closed with the summary recovery rebuilds from the records (empty when they do not
    /// decode) and an index matching the chunk headers.
    pub fn closed(&self) -> Vec<u8> {
        let summary = calltape_format::scan(&self.bytes[..])
            .map(|s| s.summary)
            .unwrap_or_else(|_| self.empty_summary());
        self.closed_with(&summary, &self.chunks)
    }

    /// A summary with the header and nothing else.
    pub fn empty_summary(&self) -> Summary {
        Summary {
            header: self.header.clone(),
            duration_ns: 0,
            turns: Vec::new(),
            totals: Totals::default(),
            recovery: None,
        }
    }

    /// Closed with this summary and these index entries, whatever they say.
    pub fn closed_with(&self, summary: &Summary, entries: &[ChunkEntry]) -> Vec<u8> {
        let json = serde_json::to_vec(summary).expect("summary serializes");
        self.closed_raw(&json, &encode_entries(entries), entries.len() as u32)
    }

    /// Closed with a raw (inflated) summary and index, and the footer's chunk count.
    pub fn closed_raw(&self, summary_json: &[u8], index_raw: &[u8], chunk_count: u32) -> Vec<u8> {
        let mut out = self.bytes.clone();
        let summary_offset = out.len() as u64;
        out.extend_from_slice(&encode_frame(FrameKind::Summary, &pack_tail(summary_json)));
        let index_offset = out.len() as u64;
        out.extend_from_slice(&encode_frame(FrameKind::ChunkIndex, &pack_tail(index_raw)));
        out.extend_from_slice(
            &Footer {
                summary_offset,
                index_offset,
                chunk_count,
                flags: 0,
            }
            .encode(),
        );
        out
    }
}
