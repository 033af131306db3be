//! Where an archive comes from: a local file or any object_store URL (s3://, gs://, az://,
//! file://, memory://). Reads are ranged, so opening a call fetches only its tail and then the
//! chunks a view needs. Counts requests and bytes, for benchmarks and `--stats`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use calltape_format::{
    decode_chunk_frame, Archive, Chunk, ChunkCache, ChunkEntry, Filter, OpenStep, Opener,
    ReadEvent, RecordReader, TimedRecord,
};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{AppError, Result};

/// A parsed archive location, before anything is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Url(Url),
}

impl Location {
    /// A string with `scheme://` is a URL (`file://` becomes a path); anything else a path.
    pub fn parse(s: &str) -> Result<Location> {
        if s.contains("://") {
            let url = Url::parse(s).map_err(|e| AppError::BadLocation {
                location: s.to_string(),
                reason: e.to_string(),
            })?;
            if url.scheme() == "file" {
                let path = url.to_file_path().map_err(|_| AppError::BadLocation {
                    location: s.to_string(),
                    reason: "not a valid local file URL".into(),
                })?;
                return Ok(Location::File(path));
            }
            Ok(Location::Url(url))
        } else {
            Ok(Location::File(PathBuf::from(s)))
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Url(_))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Builds an object store for a URL. S3 settings come from the environment the AWS way
/// (AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP, AWS_ACCESS_KEY_ID, …).
pub fn store_for_url(url: &Url) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
    store_for_url_with(url, &[])
}

/// [`store_for_url`] with explicit settings (object_store names such as `aws_endpoint`,
/// `aws_allow_http`) on top of the environment's.
pub fn store_for_url_with(
    url: &Url,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
    let env = std::env::vars()
        .filter(|(k, _)| {
            let k = k.to_ascii_uppercase();
            k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
        })
        .chain(options.iter().cloned());
    let (store, path) =
        object_store::parse_url_opts(url, env).map_err(|e| AppError::BadLocation {
            location: url.to_string(),
            reason: e.to_string(),
        })?;
    Ok((Arc::from(store), path))
}

/// The object's tail (up to 256 KiB) and its length: one suffix GET. Some S3-compatible
/// servers refuse a suffix longer than the object instead of returning all of it; for those,
/// a HEAD and a plain ranged GET do the same in two requests.
/// Returns (start offset, object length, bytes, requests made).
async fn fetch_tail(
    store: &dyn ObjectStore,
    path: &StorePath,
) -> object_store::Result<(u64, u64, Bytes, u64)> {
    let opts = GetOptions {
        range: Some(GetRange::Suffix(calltape_format::reader::TAIL_FETCH)),
        ..Default::default()
    };
    match store.get_opts(path, opts).await {
        Ok(got) => {
            let (start, len) = (got.range.start, got.meta.size);
            Ok((start, len, got.bytes().await?, 1))
        }
        Err(e @ object_store::Error::NotFound { .. }) => Err(e),
        Err(first) => {
            let Ok(meta) = store.head(path).await else {
                return Err(first);
            };
            let start = meta
                .size
                .saturating_sub(calltape_format::reader::TAIL_FETCH);
            let bytes = store.get_range(path, start..meta.size).await?;
            Ok((start, meta.size, bytes, 3))
        }
    }
}

enum Backend {
    File(Mutex<File>),
    Store {
        store: Arc<dyn ObjectStore>,
        path: StorePath,
    },
}

/// Request and byte counters of one source.
#[derive(Debug, Default)]
pub struct ReadStats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// Requests in flight at once when a reader needs several ranges.
pub const IN_FLIGHT: usize = 4;
/// Raw bytes kept from earlier requests (the tail read at open, the gaps of coalesced
/// ranges), so no byte is fetched twice while they fit.
pub const FETCHED_BUDGET: u64 = 4 << 20;
/// Decoded chunks kept per call, shared by every view (about 4 minutes of two 16 kHz tracks
/// with their control records). With [`FETCHED_BUDGET`], a replay session of a 2-hour call
/// stays within its 64 MiB memory goal.
pub const CACHE_BUDGET: u64 = 16 << 20;

/// Held bytes between two missing parts of one range that are fetched again rather than
/// asked for in two requests.
const REFETCH_GAP: u64 = 4 << 10;

/// Byte spans already fetched, oldest evicted first.
struct Fetched {
    budget: u64,
    used: u64,
    tick: u64,
    /// (start, bytes, when kept)
    spans: Vec<(u64, Bytes, u64)>,
}

impl Fetched {
    fn span_at(&self, pos: u64) -> Option<usize> {
        self.spans
            .iter()
            .position(|(s, b, _)| *s <= pos && pos < s + b.len() as u64)
    }

    /// The parts of `range` not held, as few ranges as possible: holes at most
    /// [`REFETCH_GAP`] apart are joined (re-reading a little beats another request).
    fn missing(&self, range: &Range<u64>) -> Vec<Range<u64>> {
        let mut held: Vec<Range<u64>> = self
            .spans
            .iter()
            .map(|(s, b, _)| *s..s + b.len() as u64)
            .filter(|h| h.start < range.end && h.end > range.start)
            .collect();
        held.sort_by_key(|h| h.start);
        let mut holes: Vec<Range<u64>> = Vec::new();
        let mut pos = range.start;
        for h in held {
            if h.start > pos {
                holes.push(pos..h.start);
            }
            pos = pos.max(h.end);
        }
        if pos < range.end {
            holes.push(pos..range.end);
        }
        calltape_format::records::coalesce_ranges(holes, REFETCH_GAP, u64::MAX)
    }

    fn insert(&mut self, start: u64, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size == 0 || size > self.budget {
            return;
        }
        while self.used + size > self.budget {
            let Some(oldest) = (0..self.spans.len()).min_by_key(|&i| self.spans[i].2) else {
                break;
            };
            let (_, b, _) = self.spans.swap_remove(oldest);
            self.used -= b.len() as u64;
        }
        self.tick += 1;
        self.used += size;
        self.spans.push((start, bytes, self.tick));
    }
}

/// The bytes of `range` from `batch` (what was just fetched) and the held spans: a slice
/// when one piece has all of them, else a copy of the pieces.
fn gather(range: &Range<u64>, batch: &[(u64, Bytes)], held: &Fetched) -> Option<Bytes> {
    if range.is_empty() {
        return Some(Bytes::new());
    }
    let piece_at = |pos: u64| -> Option<Bytes> {
        let (start, bytes) = match batch
            .iter()
            .find(|(s, b)| *s <= pos && pos < s + b.len() as u64)
        {
            Some((s, b)) => (*s, b),
            None => {
                let i = held.span_at(pos)?;
                (held.spans[i].0, &held.spans[i].1)
            }
        };
        Some(bytes.slice((pos - start) as usize..))
    };
    let first = piece_at(range.start)?;
    let len = (range.end - range.start) as usize;
    if first.len() >= len {
        return Some(first.slice(..len));
    }
    let mut buf = Vec::with_capacity(len);
    let mut pos = range.start;
    while pos < range.end {
        let piece = piece_at(pos)?;
        let n = piece.len().min((range.end - pos) as usize);
        buf.extend_from_slice(&piece[..n]);
        pos += n as u64;
    }
    Some(Bytes::from(buf))
}

/// An archive opened for ranged reads, with the one decoded-chunk cache every view of the
/// call shares. Cheap to share across threads (`Arc`).
pub struct ArchiveSource {
    location: Location,
    backend: Backend,
    len: u64,
    stats: ReadStats,
    /// Bytes fetched so far that may serve later reads (bounded by [`FETCHED_BUDGET`]).
    fetched: Mutex<Fetched>,
    /// Held while a batch of ranges is fetched, so two readers never fetch the same bytes
    /// at once: the second finds them in `fetched`.
    io: tokio::sync::Mutex<()>,
    cache: Arc<ChunkCache>,
}

impl ArchiveSource {
    fn with_backend(location: Location, backend: Backend, len: u64) -> ArchiveSource {
        ArchiveSource {
            location,
            backend,
            len,
            stats: ReadStats::default(),
            fetched: Mutex::new(Fetched {
                budget: FETCHED_BUDGET,
                used: 0,
                tick: 0,
                spans: Vec::new(),
            }),
            io: tokio::sync::Mutex::new(()),
            cache: Arc::new(ChunkCache::new(CACHE_BUDGET)),
        }
    }

    /// Connects to the location and learns its length. On an object store this is the
    /// suffix GET that also brings the tail, so opening costs one request.
    pub async fn connect(location: &Location) -> Result<ArchiveSource> {
        Self::connect_with(location, &[]).await
    }

    /// [`connect`](Self::connect) with explicit object-store settings (see
    /// [`store_for_url_with`]).
    pub async fn connect_with(
        location: &Location,
        options: &[(String, String)],
    ) -> Result<ArchiveSource> {
        match location {
            Location::File(path) => {
                let file = File::open(path).map_err(|e| AppError::Io {
                    what: format!("open {}", path.display()),
                    source: e,
                })?;
                let len = file
                    .metadata()
                    .map_err(|e| AppError::Io {
                        what: format!("stat {}", path.display()),
                        source: e,
                    })?
                    .len();
                Ok(ArchiveSource::with_backend(
                    location.clone(),
                    Backend::File(Mutex::new(file)),
                    len,
                ))
            }
            Location::Url(url) => {
                let (store, path) = store_for_url_with(url, options)?;
                let (start, len, bytes, requests) = fetch_tail(store.as_ref(), &path)
                    .await
                    .map_err(|e| AppError::store(url.as_str(), e))?;
                let src = ArchiveSource::with_backend(
                    location.clone(),
                    Backend::Store { store, path },
                    len,
                );
                src.stats.requests.fetch_add(requests, Ordering::Relaxed);
                src.stats
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                src.fetched_lock().insert(start, bytes);
                Ok(src)
            }
        }
    }

    /// An object whose length is known (from a listing), read once from start to end (the
    /// catalog): nothing is read until asked, no decoded chunk is kept, and of the fetched
    /// bytes only about the tail's worth.
    pub fn for_object(
        location: Location,
        store: Arc<dyn ObjectStore>,
        path: StorePath,
        len: u64,
    ) -> ArchiveSource {
        let mut src = ArchiveSource::with_backend(location, Backend::Store { store, path }, len);
        src.cache = Arc::new(ChunkCache::new(0));
        src.fetched_lock().budget = calltape_format::reader::TAIL_FETCH;
        src
    }

    fn fetched_lock(&self) -> std::sync::MutexGuard<'_, Fetched> {
        self.fetched.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (requests, bytes) fetched from the file or object store so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.requests.load(Ordering::Relaxed),
            self.stats.bytes.load(Ordering::Relaxed),
        )
    }

    /// The decoded chunks of this call, shared by every reader of it.
    pub fn cache(&self) -> &Arc<ChunkCache> {
        &self.cache
    }

    fn check_range(&self, range: &Range<u64>) -> Result<()> {
        if range.end > self.len || range.start > range.end {
            return Err(AppError::Format {
                location: self.location.to_string(),
                source: calltape_format::FormatError::Truncated {
                    offset: range.start.min(self.len),
                    needed: range.end.saturating_sub(self.len),
                },
            });
        }
        Ok(())
    }

    /// One request for exactly `range`, counted.
    async fn fetch(&self, range: Range<u64>) -> Result<Bytes> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(range.end - range.start, Ordering::Relaxed);
        match &self.backend {
            Backend::File(file) => {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                f.seek(SeekFrom::Start(range.start))
                    .and_then(|_| f.read_exact(&mut buf))
                    .map_err(|e| AppError::Io {
                        what: format!("read bytes {range:?} of {}", self.location),
                        source: e,
                    })?;
                Ok(Bytes::from(buf))
            }
            Backend::Store { store, path } => store
                .get_range(path, range)
                .await
                .map_err(|e| AppError::store(&self.location.to_string(), e)),
        }
    }

    /// Reads exactly `range`.
    pub async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        let mut got = self.read_ranges(vec![range]).await?;
        Ok(got.pop().map(|(_, b)| b).unwrap_or_default())
    }

    /// Reads several ranges: bytes fetched before are not fetched again, and what is
    /// missing is fetched with up to [`IN_FLIGHT`] requests at once. Returns each range's
    /// start with its bytes, in the order asked.
    pub async fn read_ranges(&self, ranges: Vec<Range<u64>>) -> Result<Vec<(u64, Bytes)>> {
        use futures::{StreamExt, TryStreamExt};
        for r in &ranges {
            self.check_range(r)?;
        }
        let _io = self.io.lock().await;
        let missing: Vec<Range<u64>> = {
            let held = self.fetched_lock();
            // overlapping asks are fetched once
            let m: Vec<Range<u64>> = ranges.iter().flat_map(|r| held.missing(r)).collect();
            calltape_format::records::coalesce_ranges(m, 0, u64::MAX)
        };
        let fetched: Vec<(u64, Bytes)> = futures::stream::iter(missing)
            .map(|r| async move { self.fetch(r.clone()).await.map(|b| (r.start, b)) })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut held = self.fetched_lock();
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let bytes = gather(&r, &fetched, &held).ok_or_else(|| {
                AppError::Other(format!(
                    "{}: bytes {r:?} were not kept between requests",
                    self.location
                ))
            })?;
            out.push((r.start, bytes));
        }
        // kept after the answers are cut, so keeping them cannot evict what those needed
        for (start, bytes) in fetched {
            if held.span_at(start).is_none() {
                held.insert(start, bytes);
            }
        }
        Ok(out)
    }

    /// Reads the footer, summary and chunk index: one request on an object store for all
    /// but the largest calls. The tail's bytes stay held, so the chunks in it are not
    /// fetched again.
    pub async fn open(&self) -> Result<Archive> {
        self.open_from_tail(calltape_format::reader::TAIL_FETCH)
            .await
    }

    /// [`open`](Self::open), asking first for only the last `first_tail` bytes and for more
    /// only when the footer says the summary and index start earlier: for indexing many
    /// archives, whose tails are mostly a few KiB.
    pub async fn open_from_tail(&self, first_tail: u64) -> Result<Archive> {
        let mut opener = Opener::new(self.len);
        let mut range = self.len.saturating_sub(first_tail.max(1))..self.len;
        loop {
            let bytes = self.read(range.clone()).await?;
            match opener
                .feed(range.start, &bytes)
                .map_err(|e| self.format_err(e))?
            {
                OpenStep::Ready(a) => return Ok(*a),
                OpenStep::Need(next) => range = next,
            }
        }
    }

    /// A record reader over `archive` for `filter`, sharing this source's chunk cache.
    pub fn reader(&self, archive: &Archive, filter: Filter) -> RecordReader {
        RecordReader::new(archive, filter).with_cache(self.cache.clone())
    }

    /// A record reader over exactly these chunks, sharing this source's chunk cache.
    pub fn chunk_reader(
        &self,
        chunks: impl IntoIterator<Item = ChunkEntry>,
        filter: Filter,
    ) -> RecordReader {
        RecordReader::for_chunks(chunks, filter).with_cache(self.cache.clone())
    }

    /// Runs `reader` to the end, handing each record to `f` in time order; the ranges it
    /// asks for are fetched concurrently.
    pub async fn drive(
        &self,
        mut reader: RecordReader,
        mut f: impl FnMut(TimedRecord) -> Result<()>,
    ) -> Result<()> {
        loop {
            match reader.next_event().map_err(|e| self.format_err(e))? {
                None => return Ok(()),
                Some(ReadEvent::Record(r)) => f(r)?,
                Some(ReadEvent::Need(ranges)) => {
                    let mut taken = 0;
                    for (start, bytes) in self.read_ranges(ranges).await? {
                        taken += reader.feed(start, &bytes).map_err(|e| self.format_err(e))?;
                    }
                    if taken == 0 {
                        return Err(AppError::Other(format!(
                            "{}: the chunk index points at bytes that hold no chunk",
                            self.location
                        )));
                    }
                }
            }
        }
    }

    /// The records `reader` selects, in time order.
    pub async fn records(&self, reader: RecordReader) -> Result<Vec<TimedRecord>> {
        let mut out = Vec::new();
        self.drive(reader, |r| {
            out.push(r);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Fetches and decodes one chunk (through the cache).
    pub async fn chunk(&self, entry: &ChunkEntry) -> Result<Arc<Chunk>> {
        if let Some(c) = self.cache.get(entry) {
            return Ok(c);
        }
        let bytes = self.read(entry.frame_range()).await?;
        let chunk = Arc::new(decode_chunk_frame(entry, &bytes).map_err(|e| self.format_err(e))?);
        self.cache.insert(entry, chunk.clone());
        Ok(chunk)
    }

    pub fn format_err(&self, e: calltape_format::FormatError) -> AppError {
        AppError::Format {
            location: self.location.to_string(),
            source: e,
        }
    }

    /// Scans the archive forward from byte 0 (an unclosed or damaged file). The bytes
    /// streamed are counted as one request, and the first [`FETCHED_BUDGET`] of them stay
    /// held, so reading the chunks found afterwards fetches nothing again for most calls.
    pub async fn scan(&self) -> Result<calltape_format::Scan> {
        // the tail read by a failed open is not fetched again
        let (budget, tail) = {
            let held = self.fetched_lock();
            let tail = held
                .spans
                .iter()
                .find(|(s, b, _)| s + b.len() as u64 == self.len)
                .map(|(s, b, _)| (*s, b.clone()));
            (held.budget, tail)
        };
        let (tail_start, tail) = tail.unwrap_or((self.len, Bytes::new()));
        let (scan, kept, total) = self
            .with_prefix_reader(tail_start, move |input| {
                let mut tee = Tee {
                    input,
                    kept: Vec::new(),
                    limit: budget as usize,
                    total: 0,
                };
                let scan = calltape_format::scan((&mut tee).chain(std::io::Cursor::new(tail)));
                (scan, tee.kept, tee.total)
            })
            .await?;
        if tail_start > 0 {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes.fetch_add(total, Ordering::Relaxed);
        }
        self.fetched_lock().insert(0, Bytes::from(kept));
        scan.map_err(|e| self.format_err(e))
    }

    /// Runs `f` on a blocking thread with a reader over the whole archive from byte 0, for
    /// forward scanning (`verify`, `recover`, inspecting an unclosed file). On an object store
    /// the object is streamed, so memory stays bounded whatever its size.
    pub async fn with_reader<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Box<dyn Read + Send>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.with_prefix_reader(self.len, f).await
    }

    /// [`with_reader`](Self::with_reader) over the first `end` bytes only.
    async fn with_prefix_reader<T, F>(&self, end: u64, f: F) -> Result<T>
    where
        F: FnOnce(Box<dyn Read + Send>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let join_err =
            |e: tokio::task::JoinError| AppError::Other(format!("scan task failed: {e}"));
        match (&self.backend, &self.location) {
            (Backend::File(_), Location::File(path)) => {
                let file = File::open(path).map_err(|e| AppError::Io {
                    what: format!("open {}", path.display()),
                    source: e,
                })?;
                let reader = std::io::BufReader::with_capacity(1 << 20, file).take(end);
                tokio::task::spawn_blocking(move || f(Box::new(reader)))
                    .await
                    .map_err(join_err)
            }
            (Backend::Store { .. }, _) if end == 0 => {
                tokio::task::spawn_blocking(move || f(Box::new(std::io::empty())))
                    .await
                    .map_err(join_err)
            }
            (Backend::Store { store, path }, _) => {
                use futures::StreamExt;
                let opts = GetOptions {
                    range: (end < self.len).then_some(GetRange::Bounded(0..end)),
                    ..Default::default()
                };
                let got = store
                    .get_opts(path, opts)
                    .await
                    .map_err(|e| AppError::store(&self.location.to_string(), e))?;
                let mut stream = got.into_stream();
                let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
                let pump = tokio::spawn(async move {
                    while let Some(item) = stream.next().await {
                        let item = item.map_err(std::io::Error::other);
                        let stop = item.is_err();
                        if tx.send(item).await.is_err() || stop {
                            break;
                        }
                    }
                });
                let reader = ChannelReader {
                    rx,
                    current: Bytes::new(),
                };
                let out = tokio::task::spawn_blocking(move || f(Box::new(reader)))
                    .await
                    .map_err(join_err)?;
                pump.abort();
                Ok(out)
            }
            (Backend::File(_), Location::Url(_)) => unreachable!("file backend has a path"),
        }
    }
}

/// A `Read` that keeps a copy of the first `limit` bytes read through it and counts them all.
struct Tee {
    input: Box<dyn Read + Send>,
    kept: Vec<u8>,
    limit: usize,
    total: u64,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        let room = self.limit.saturating_sub(self.kept.len()).min(n);
        self.kept.extend_from_slice(&buf[..room]);
        self.total += n as u64;
        Ok(n)
    }
}

/// A blocking `Read` over byte chunks sent by an async task.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(spans: &[(u64, u64)]) -> Fetched {
        let mut f = Fetched {
            budget: FETCHED_BUDGET,
            used: 0,
            tick: 0,
            spans: Vec::new(),
        };
        for &(start, len) in spans {
            let bytes: Vec<u8> = (start..start + len).map(|i| i as u8).collect();
            f.insert(start, Bytes::from(bytes));
        }
        f
    }

    #[test]
    fn only_the_holes_between_held_spans_are_missing() {
        let k = 10_000;
        let f = held(&[(k, k), (3 * k, k)]);
        assert_eq!(
            f.missing(&(0..5 * k)),
            vec![0..k, 2 * k..3 * k, 4 * k..5 * k]
        );
        assert_eq!(f.missing(&(k + 1..k + 9)), Vec::<Range<u64>>::new());
        assert_eq!(f.missing(&(k + 5..3 * k + 5)), vec![2 * k..3 * k]);
        // holes a few bytes apart are one request
        let f = held(&[(100, 10)]);
        assert_eq!(f.missing(&(0..500)), vec![0..500]);
    }

    #[test]
    fn bytes_are_gathered_from_the_batch_and_the_held_spans() {
        let f = held(&[(0, 100), (200, 100)]);
        let batch: Vec<(u64, Bytes)> = vec![(100, (100u64..200).map(|i| i as u8).collect())];
        let got = gather(&(50..250), &batch, &f).unwrap();
        let want: Vec<u8> = (50u64..250).map(|i| i as u8).collect();
        assert_eq!(&got[..], &want[..]);
        assert!(gather(&(250..350), &batch, &f).is_none());
    }

    #[test]
    fn overlapping_reads_fetch_each_byte_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bytes");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let src = ArchiveSource::connect(&Location::File(path)).await.unwrap();
            let got = src.read_ranges(vec![0..4_000, 2_000..6_000]).await.unwrap();
            assert_eq!(&got[1].1[..], &data[2_000..6_000]);
            assert_eq!(src.stats().1, 6_000);
            // inside what was read: nothing more is fetched
            assert_eq!(
                &src.read(1_000..5_500).await.unwrap()[..],
                &data[1_000..5_500]
            );
            // half held, half new: only the new half is fetched
            assert_eq!(
                &src.read(5_000..9_000).await.unwrap()[..],
                &data[5_000..9_000]
            );
            assert_eq!(src.stats().1, 9_000);
            assert!(src.read(9_000..10_001).await.is_err());
        });
    }
}
