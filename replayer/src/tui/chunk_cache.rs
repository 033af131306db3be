//! A small least-recently-used cache of decoded control chunks, bounded by their
//! uncompressed size, shared by the background jobs (turn details, spans).

use std::collections::VecDeque;
use std::sync::Arc;

use calltape_format::{Chunk, ChunkEntry};

/// Default budget: 8 MiB of decoded control records.
pub const DEFAULT_BUDGET: u64 = 8 << 20;

#[derive(Debug)]
pub struct ChunkCache {
    budget: u64,
    used: u64,
    /// Most recently used last; keyed by chunk offset.
    entries: VecDeque<(u64, u64, Arc<Chunk>)>,
}

impl ChunkCache {
    pub fn new(budget: u64) -> Self {
        ChunkCache {
            budget,
            used: 0,
            entries: VecDeque::new(),
        }
    }

    pub fn get(&mut self, entry: &ChunkEntry) -> Option<Arc<Chunk>> {
        let i = self.entries.iter().position(|e| e.0 == entry.offset)?;
        let e = self.entries.remove(i)?;
        let chunk = e.2.clone();
        self.entries.push_back(e);
        Some(chunk)
    }

    pub fn insert(&mut self, entry: &ChunkEntry, chunk: Arc<Chunk>) {
        let size = u64::from(entry.uncompressed_len) + 256;
        if self.entries.iter().any(|e| e.0 == entry.offset) {
            return;
        }
        while self.used + size > self.budget {
            match self.entries.pop_front() {
                Some(old) => self.used -= old.1,
                None => break,
            }
        }
        self.used += size;
        self.entries.push_back((entry.offset, size, chunk));
    }

    /// Drops everything (the file changed under us, e.g. while following).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
