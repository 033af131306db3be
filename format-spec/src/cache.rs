//! A cache of decoded chunks shared by every reader of one archive, bounded by a byte budget
//! and evicting the least recently used chunk first, so each chunk is fetched and decoded at
//! most once while it fits.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::chunk::Chunk;
use crate::index::ChunkEntry;

/// Default budget: 64 MiB of decoded chunks (about 17 minutes of two 16 kHz tracks).
pub const DEFAULT_CACHE_BUDGET: u64 = 64 << 20;

/// Bytes a decoded chunk is charged in the cache: its inflated body plus a fixed cost per
/// record (the decoded form's bookkeeping).
pub fn decoded_size(entry: &ChunkEntry) -> u64 {
    u64::from(entry.uncompressed_len) + 64 * u64::from(entry.record_count) + 256
}

/// Decoded chunks keyed by their offset in the archive. Internally locked, so one cache is
/// shared (`Arc<ChunkCache>`) by readers on several threads; the lock is held only to look up
/// or insert, never while fetching or decoding.
#[derive(Debug)]
pub struct ChunkCache {
    budget: u64,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    used: u64,
    tick: u64,
    /// offset → (chunk, charged size, last use)
    chunks: HashMap<u64, (Arc<Chunk>, u64, u64)>,
    /// last use → offset, oldest first
    order: BTreeMap<u64, u64>,
}

impl ChunkCache {
    pub fn new(budget: u64) -> Self {
        ChunkCache {
            budget,
            inner: Mutex::new(Lru::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // a panic elsewhere while holding the lock leaves a consistent map: keep using it
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The decoded chunk at `entry.offset`, marked as just used.
    pub fn get(&self, entry: &ChunkEntry) -> Option<Arc<Chunk>> {
        let mut lru = self.lock();
        let tick = lru.tick + 1;
        lru.tick = tick;
        let (chunk, last) = {
            let slot = lru.chunks.get_mut(&entry.offset)?;
            let last = std::mem::replace(&mut slot.2, tick);
            (slot.0.clone(), last)
        };
        lru.order.remove(&last);
        lru.order.insert(tick, entry.offset);
        Some(chunk)
    }

    /// True when the chunk is cached (without marking it used).
    pub fn contains(&self, entry: &ChunkEntry) -> bool {
        self.lock().chunks.contains_key(&entry.offset)
    }

    /// Keeps `chunk`, evicting the least recently used chunks to stay within the budget.
    /// A chunk larger than the whole budget is not kept.
    pub fn insert(&self, entry: &ChunkEntry, chunk: Arc<Chunk>) {
        let size = decoded_size(entry);
        if size > self.budget {
            return;
        }
        let mut lru = self.lock();
        if lru.chunks.contains_key(&entry.offset) {
            return;
        }
        while lru.used + size > self.budget {
            let Some((_, offset)) = lru.order.pop_first() else {
                break;
            };
            if let Some((_, s, _)) = lru.chunks.remove(&offset) {
                lru.used -= s;
            }
        }
        let tick = lru.tick + 1;
        lru.tick = tick;
        lru.used += size;
        lru.chunks.insert(entry.offset, (chunk, size, tick));
        lru.order.insert(tick, entry.offset);
    }

    /// Drops everything (the file changed, e.g. while following a recording).
    pub fn clear(&self) {
        let mut lru = self.lock();
        lru.chunks.clear();
        lru.order.clear();
        lru.used = 0;
    }

    /// Chunks held.
    pub fn len(&self) -> usize {
        self.lock().chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged, at most the budget.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }
}

impl Default for ChunkCache {
    fn default() -> Self {
        ChunkCache::new(DEFAULT_CACHE_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkHeader;

    fn entry(offset: u64, uncompressed_len: u32) -> ChunkEntry {
        ChunkEntry {
            lane: 0,
            start_ns: 0,
            end_ns: 0,
            offset,
            compressed_len: 10,
            uncompressed_len,
            record_count: 0,
            first_turn: 0,
            last_turn: 0,
        }
    }

    fn chunk() -> Arc<Chunk> {
        Arc::new(Chunk {
            header: ChunkHeader {
                lane: 0,
                encoding: 0,
                start_ns: 0,
                end_ns: 0,
                record_count: 0,
                uncompressed_len: 0,
                first_turn: 0,
                last_turn: 0,
            },
            records: Vec::new(),
        })
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        // each entry is charged 1000 - 256 + 256 = 1000 bytes
        let cache = ChunkCache::new(2_500);
        let (a, b, c) = (entry(1, 744), entry(2, 744), entry(3, 744));
        cache.insert(&a, chunk());
        cache.insert(&b, chunk());
        assert!(cache.get(&a).is_some()); // a is now newer than b
        cache.insert(&c, chunk());
        assert!(cache.contains(&a));
        assert!(!cache.contains(&b));
        assert!(cache.contains(&c));
        assert_eq!(cache.used(), 2_000);
    }

    #[test]
    fn a_chunk_over_the_budget_is_not_kept() {
        let cache = ChunkCache::new(100);
        cache.insert(&entry(1, 1_000), chunk());
        assert!(cache.is_empty());
        assert_eq!(cache.used(), 0);
    }
}
