//! The calltape archive format, version 1: the record model, sans-io readers (the archive
//! [`Opener`] and the [`RecordReader`]), an append-only writer, forward scanning and crash
//! recovery. format-spec/SPEC.md is the byte-level contract.

pub mod audio;
pub mod cache;
pub mod call;
pub mod chunk;
pub mod dump;
pub mod error;
pub mod frame;
pub mod index;
pub mod limits;
pub mod model;
pub mod placement;
pub mod qlpc;
pub mod reader;
pub mod records;
pub mod recover;
pub mod rice;
pub mod scan;
pub mod summary;
pub mod writer;

pub use cache::ChunkCache;
pub use chunk::Chunk;
pub use error::{FormatError, Result};
pub use frame::Footer;
pub use index::ChunkEntry;
pub use model::*;
pub use reader::{decode_chunk_frame, open, read_chunk, Archive, OpenStep, Opener};
pub use records::{read_records, records, FetchOptions, Filter, ReadEvent, RecordReader, Records};
pub use recover::{
    open_or_scan, recover_in_place, recover_to, scan, ArchiveScanner, KeptFrame, RecoveryReport,
    Scan,
};
pub use summary::{Latency, Summary, Totals, TurnSummary};
pub use writer::{ArchiveWriter, WriterOptions};
