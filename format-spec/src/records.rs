//! The record reader: sans-io, like the [`Opener`](crate::Opener). Given an opened
//! [`Archive`] and a [`Filter`] (lanes, time range), it says which byte ranges it needs
//! (neighbouring chunk frames coalesced into one range, with a bounded gap and size), is fed
//! those bytes, and yields the records in time order across chunks: a k-way merge that also
//! holds when chunks of one lane overlap in time. [`Records`] drives it over `Read + Seek`.
//!
//! Ties (records with the same time) come in file order: the order a stable sort by time of
//! all selected chunks' records, concatenated in file order, gives. The merge relies on each
//! chunk's `start_ns` being the earliest record time in it (SPEC §4); a file that breaks that
//! still reads, without panics, but its records may come out of order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{Read, Seek};
use std::ops::Range;
use std::sync::Arc;

use crate::cache::{decoded_size, ChunkCache};
use crate::chunk::Chunk;
use crate::error::{FormatError, Result};
use crate::frame::MAX_FRAME_LEN;
use crate::index::ChunkEntry;
use crate::limits::MAX_LIVE_DECODED;
use crate::model::TimedRecord;
use crate::reader::{decode_chunk_frame, read_range, Archive};

/// Which records to read: a set of lanes (all by default) and a time range (inclusive, all
/// by default). A chunk is read when its lane is wanted and its `[start_ns, end_ns]` meets
/// the range; a record is yielded when its own time lies in the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Sorted, deduplicated; `None` = every lane.
    lanes: Option<Vec<u16>>,
    from_ns: u64,
    to_ns: u64,
}

impl Default for Filter {
    fn default() -> Self {
        Filter::all()
    }
}

impl Filter {
    /// Every record of the call.
    pub fn all() -> Self {
        Filter {
            lanes: None,
            from_ns: 0,
            to_ns: u64::MAX,
        }
    }

    /// One lane: 0 for control records, a track id for its audio.
    pub fn lane(lane: u16) -> Self {
        Filter::lanes([lane])
    }

    /// A set of lanes.
    pub fn lanes(lanes: impl IntoIterator<Item = u16>) -> Self {
        let mut l: Vec<u16> = lanes.into_iter().collect();
        l.sort_unstable();
        l.dedup();
        Filter {
            lanes: Some(l),
            ..Filter::all()
        }
    }

    /// Only records whose time lies in `[from_ns, to_ns]` (both inclusive).
    pub fn between(self, from_ns: u64, to_ns: u64) -> Self {
        Filter {
            from_ns,
            to_ns,
            ..self
        }
    }

    pub fn wants_lane(&self, lane: u16) -> bool {
        match &self.lanes {
            None => true,
            Some(l) => l.binary_search(&lane).is_ok(),
        }
    }

    /// Whether a chunk must be read for this filter.
    pub fn wants_chunk(&self, entry: &ChunkEntry) -> bool {
        self.wants_lane(entry.lane) && entry.overlaps(self.from_ns, self.to_ns)
    }

    pub fn wants_time(&self, time_ns: u64) -> bool {
        self.from_ns <= time_ns && time_ns <= self.to_ns
    }

    /// The time range, inclusive.
    pub fn time_range(&self) -> (u64, u64) {
        (self.from_ns, self.to_ns)
    }
}

/// How byte ranges are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// Two chunk frames at most this many bytes apart are fetched as one range (the bytes
    /// between them are read and dropped): fewer requests, a little more data.
    pub max_gap: u64,
    /// A coalesced range stops growing at this size (a single larger frame is still one range).
    pub max_request: u64,
    /// Bytes asked for at once, gaps included (at least the one chunk the merge waits for).
    /// Bounds the bytes a caller holds per answer and the decoded chunks held that were fed
    /// but not merged yet.
    pub read_ahead: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_gap: 64 << 10,
            max_request: 1 << 20,
            read_ahead: 4 << 20,
        }
    }
}

/// Sorts `ranges` and joins neighbours at most `max_gap` bytes apart while the joined range
/// stays within `max_request` bytes.
pub fn coalesce_ranges(
    mut ranges: Vec<Range<u64>>,
    max_gap: u64,
    max_request: u64,
) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if let Some(last) = out.last_mut() {
            let end = last.end.max(r.end);
            if r.start <= last.end.saturating_add(max_gap) && end - last.start <= max_request {
                last.end = end;
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// What the reader has for the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadEvent {
    /// The next record in time order.
    Record(TimedRecord),
    /// Fetch these ranges (each may be fetched concurrently), [`RecordReader::feed`] them all,
    /// then ask again.
    Need(Vec<Range<u64>>),
}

/// A decoded chunk being merged: its records in time order from `pos`.
struct Cursor {
    chunk: Arc<Chunk>,
    /// What it is charged against [`MAX_LIVE_DECODED`].
    cost: u64,
    /// Record indices in time order (stable); empty when the chunk is already in order.
    order: Vec<u32>,
    pos: usize,
}

impl Cursor {
    fn new(chunk: Arc<Chunk>, cost: u64) -> Cursor {
        let sorted = chunk
            .records
            .windows(2)
            .all(|w| w[0].time_ns <= w[1].time_ns);
        let order = if sorted {
            Vec::new()
        } else {
            let mut o: Vec<u32> = (0..chunk.records.len() as u32).collect();
            o.sort_by_key(|&i| chunk.records[i as usize].time_ns);
            o
        };
        Cursor {
            chunk,
            cost,
            order,
            pos: 0,
        }
    }

    fn get(&self, pos: usize) -> Option<&TimedRecord> {
        let i = if self.order.is_empty() {
            pos
        } else {
            *self.order.get(pos)? as usize
        };
        self.chunk.records.get(i)
    }

    fn len(&self) -> usize {
        self.chunk.records.len()
    }
}

/// The sans-io record reader. See the module documentation.
pub struct RecordReader {
    /// Selected chunks in merge order: by `start_ns`, then file offset.
    plan: Vec<ChunkEntry>,
    /// Positions in `plan`, sorted by offset (to place fed bytes).
    by_offset: Vec<usize>,
    /// `plan[next..]` are not merged yet.
    next: usize,
    /// Fed (or found in the cache) and not merged yet, by offset.
    ready: HashMap<u64, Arc<Chunk>>,
    slots: Vec<Option<Cursor>>,
    free: Vec<usize>,
    /// (time of the cursor's next record, chunk offset, slot)
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    filter: Filter,
    opts: FetchOptions,
    cache: Option<Arc<ChunkCache>>,
    failed: bool,
    /// Estimated decoded bytes held in `ready` and in the cursors being merged, each bounded
    /// by [`MAX_LIVE_DECODED`] (see [`RecordReader::feed`] and [`RecordReader::next_event`]).
    ready_cost: u64,
    merge_cost: u64,
}

impl std::fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("chunks", &self.plan.len())
            .field("merged", &self.next)
            .field("ready", &self.ready.len())
            .field("filter", &self.filter)
            .finish()
    }
}

impl RecordReader {
    /// Reads the records of `archive` that `filter` selects.
    pub fn new(archive: &Archive, filter: Filter) -> RecordReader {
        let chunks: Vec<ChunkEntry> = archive
            .index
            .iter()
            .filter(|e| filter.wants_chunk(e))
            .copied()
            .collect();
        RecordReader::for_chunks(chunks, filter)
    }

    /// Reads the records of exactly these chunks (duplicates ignored) that pass `filter`'s
    /// time range; for selections the filter cannot express (the chunks naming a turn).
    pub fn for_chunks(
        chunks: impl IntoIterator<Item = ChunkEntry>,
        filter: Filter,
    ) -> RecordReader {
        let mut plan: Vec<ChunkEntry> = chunks.into_iter().collect();
        plan.sort_by_key(|e| (e.offset, e.start_ns));
        plan.dedup_by_key(|e| e.offset);
        plan.sort_by_key(|e| (e.start_ns, e.offset));
        let mut by_offset: Vec<usize> = (0..plan.len()).collect();
        by_offset.sort_by_key(|&i| plan[i].offset);
        RecordReader {
            plan,
            by_offset,
            next: 0,
            ready: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            heap: BinaryHeap::new(),
            filter,
            opts: FetchOptions::default(),
            cache: None,
            failed: false,
            ready_cost: 0,
            merge_cost: 0,
        }
    }

    /// Shares decoded chunks with other readers of the same archive: chunks found there are
    /// not asked for, and chunks fed are kept there.
    pub fn with_cache(mut self, cache: Arc<ChunkCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn with_options(mut self, opts: FetchOptions) -> Self {
        let limit = 2 * u64::from(MAX_FRAME_LEN);
        self.opts = FetchOptions {
            max_request: opts.max_request.min(limit),
            ..opts
        };
        self
    }

    /// The chunks this reader reads, in merge order.
    pub fn chunks(&self) -> &[ChunkEntry] {
        &self.plan
    }

    /// The byte ranges of every selected chunk not cached, coalesced: for a caller that
    /// fetches everything up front rather than following [`ReadEvent::Need`].
    pub fn all_ranges(&self) -> Vec<Range<u64>> {
        let ranges = self
            .plan
            .iter()
            .filter(|e| !self.have(e))
            .map(ChunkEntry::frame_range)
            .collect();
        coalesce_ranges(ranges, self.opts.max_gap, self.opts.max_request)
    }

    fn have(&self, e: &ChunkEntry) -> bool {
        self.ready.contains_key(&e.offset) || self.cache.as_ref().is_some_and(|c| c.contains(e))
    }

    /// The next record, a request for bytes, or `None` when every selected record was
    /// yielded. After an error the reader stays finished.
    pub fn next_event(&mut self) -> Result<Option<ReadEvent>> {
        if self.failed {
            return Ok(None);
        }
        loop {
            // admit every chunk that may hold a record before the merge's next one
            while let Some(e) = self.plan.get(self.next).copied() {
                if let Some(Reverse((t, _, _))) = self.heap.peek() {
                    if e.start_ns > *t {
                        break;
                    }
                }
                let chunk = match self.ready.remove(&e.offset) {
                    Some(c) => {
                        self.ready_cost = self.ready_cost.saturating_sub(decoded_size(&e));
                        c
                    }
                    None => match self.cache.as_ref().and_then(|c| c.get(&e)) {
                        Some(c) => c,
                        None => {
                            let ranges = self.wanted_ranges();
                            if ranges.is_empty() {
                                // another reader cached it meanwhile: look again
                                continue;
                            }
                            return Ok(Some(ReadEvent::Need(ranges)));
                        }
                    },
                };
                self.next += 1;
                let cost = decoded_size(&e);
                if !self.heap.is_empty() && self.merge_cost.saturating_add(cost) > MAX_LIVE_DECODED
                {
                    self.failed = true;
                    return Err(FormatError::TooLarge {
                        what: "records overlapping in time (estimated decoded bytes) at the chunk",
                        offset: e.offset,
                        len: self.merge_cost.saturating_add(cost),
                        limit: MAX_LIVE_DECODED,
                    });
                }
                self.admit(chunk, e.offset, cost);
            }
            let Some(Reverse((_, offset, slot))) = self.heap.pop() else {
                return Ok(None);
            };
            let Some(cursor) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let record = cursor.get(cursor.pos).cloned();
            cursor.pos += 1;
            match cursor.get(cursor.pos).map(|r| r.time_ns) {
                Some(t) if t <= self.filter.to_ns => self.heap.push(Reverse((t, offset, slot))),
                _ => {
                    if let Some(done) = self.slots[slot].take() {
                        self.merge_cost = self.merge_cost.saturating_sub(done.cost);
                    }
                    self.free.push(slot);
                }
            }
            if let Some(r) = record {
                return Ok(Some(ReadEvent::Record(r)));
            }
        }
    }

    fn admit(&mut self, chunk: Arc<Chunk>, offset: u64, cost: u64) {
        let mut cursor = Cursor::new(chunk, cost);
        // skip records before the range (they sort first)
        let (from, to) = (self.filter.from_ns, self.filter.to_ns);
        let (mut lo, mut hi) = (0, cursor.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match cursor.get(mid) {
                Some(r) if r.time_ns < from => lo = mid + 1,
                _ => hi = mid,
            }
        }
        cursor.pos = lo;
        let Some(t) = cursor.get(lo).map(|r| r.time_ns).filter(|&t| t <= to) else {
            return;
        };
        self.merge_cost = self.merge_cost.saturating_add(cost);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(cursor);
                s
            }
            None => {
                self.slots.push(Some(cursor));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((t, offset, slot)));
    }

    /// The chunk the merge waits for and those after it, coalesced, as many as fit the
    /// read-ahead counted in requested bytes (the gaps joined into a range count too).
    fn wanted_ranges(&self) -> Vec<Range<u64>> {
        let mut frames = Vec::new();
        let mut bytes = 0u64;
        for e in &self.plan[self.next..] {
            if self.have(e) {
                continue;
            }
            if !frames.is_empty() && bytes.saturating_add(e.frame_len()) > self.opts.read_ahead {
                break;
            }
            bytes = bytes.saturating_add(e.frame_len());
            frames.push(e.frame_range());
        }
        let coalesce = |n: usize| {
            coalesce_ranges(
                frames[..n].to_vec(),
                self.opts.max_gap,
                self.opts.max_request,
            )
        };
        let total = |ranges: &[Range<u64>]| -> u64 { ranges.iter().map(|r| r.end - r.start).sum() };
        // the longest prefix (at least one chunk) whose coalesced ranges fit the read-ahead
        let (mut lo, mut hi) = (1, frames.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if total(&coalesce(mid)) <= self.opts.read_ahead {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        coalesce(lo.min(frames.len()))
    }

    /// Feeds the bytes of the file from `start`: every selected, not yet merged chunk frame
    /// lying wholly inside them is decoded (and cached). Returns how many chunks were taken.
    pub fn feed(&mut self, start: u64, bytes: &[u8]) -> Result<usize> {
        let end = start.saturating_add(bytes.len() as u64);
        let first = self
            .by_offset
            .partition_point(|&i| self.plan[i].offset < start);
        let mut taken = 0;
        for &i in &self.by_offset[first..] {
            let e = self.plan[i];
            if e.offset >= end {
                break;
            }
            let range = e.frame_range();
            if range.end > end || i < self.next || self.ready.contains_key(&e.offset) {
                continue;
            }
            let cost = decoded_size(&e);
            // read-ahead stops at the budget; the chunk the merge waits for is always taken
            let live = self.ready_cost.saturating_add(self.merge_cost);
            if i != self.next && live.saturating_add(cost) > MAX_LIVE_DECODED {
                continue;
            }
            // another reader may have decoded it meanwhile: one decode per chunk
            if let Some(c) = self.cache.as_ref().and_then(|c| c.get(&e)) {
                self.ready.insert(e.offset, c);
                self.ready_cost = self.ready_cost.saturating_add(cost);
                taken += 1;
                continue;
            }
            let frame = &bytes[(range.start - start) as usize..(range.end - start) as usize];
            let chunk = match decode_chunk_frame(&e, frame) {
                Ok(c) => Arc::new(c),
                Err(err) => {
                    self.failed = true;
                    return Err(err);
                }
            };
            if let Some(cache) = &self.cache {
                cache.insert(&e, chunk.clone());
            }
            self.ready.insert(e.offset, chunk);
            self.ready_cost = self.ready_cost.saturating_add(cost);
            taken += 1;
        }
        Ok(taken)
    }
}

/// The records of an archive read from anything seekable, in time order: a blocking
/// iterator over a [`RecordReader`]. Stops after the first error.
pub struct Records<R> {
    io: R,
    reader: RecordReader,
    done: bool,
}

impl<R: Read + Seek> Records<R> {
    pub fn new(io: R, reader: RecordReader) -> Self {
        Records {
            io,
            reader,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Option<TimedRecord>> {
        loop {
            match self.reader.next_event()? {
                None => return Ok(None),
                Some(ReadEvent::Record(r)) => return Ok(Some(r)),
                Some(ReadEvent::Need(ranges)) => {
                    let mut taken = 0;
                    for range in ranges {
                        let bytes = read_range(&mut self.io, range.clone())?;
                        taken += self.reader.feed(range.start, &bytes)?;
                    }
                    if taken == 0 {
                        return Err(FormatError::Invalid {
                            what: "record reader",
                            reason: "the ranges asked for held no chunk".into(),
                        });
                    }
                }
            }
        }
    }
}

impl<R: Read + Seek> Iterator for Records<R> {
    type Item = Result<TimedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

/// The records of `archive` that `filter` selects, in time order, read from `io`.
pub fn records<R: Read + Seek>(io: R, archive: &Archive, filter: Filter) -> Records<R> {
    Records::new(io, RecordReader::new(archive, filter))
}

/// [`records`] collected.
pub fn read_records<R: Read + Seek>(
    io: R,
    archive: &Archive,
    filter: Filter,
) -> Result<Vec<TimedRecord>> {
    records(io, archive, filter).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_join_within_gap_and_size() {
        let r = coalesce_ranges(vec![200..300, 0..100, 150..160, 1_000..1_100], 50, 1_000);
        assert_eq!(r, vec![0..300, 1_000..1_100]);
        // the size bound splits a run of neighbours
        let r = coalesce_ranges(vec![0..100, 100..200, 200..300], 0, 200);
        assert_eq!(r, vec![0..200, 200..300]);
        // a single frame over the size bound is still one range
        let big = coalesce_ranges(vec![0..5_000, 6_000..6_001], 0, 100);
        assert_eq!(big, vec![0..5_000, 6_000..6_001]);
    }

    #[test]
    fn filter_selects_lanes_and_time() {
        let f = Filter::lanes([2, 0, 2]).between(10, 20);
        assert!(f.wants_lane(0) && f.wants_lane(2) && !f.wants_lane(1));
        assert!(f.wants_time(10) && f.wants_time(20) && !f.wants_time(21));
        let e = ChunkEntry {
            lane: 2,
            start_ns: 20,
            end_ns: 30,
            offset: 0,
            compressed_len: 1,
            uncompressed_len: 1,
            record_count: 1,
            first_turn: 0,
            last_turn: 0,
        };
        assert!(f.wants_chunk(&e));
        assert!(!f.wants_chunk(&ChunkEntry { start_ns: 21, ..e }));
        assert!(Filter::all().wants_chunk(&e));
    }
}
