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
use calltape_format::{decode_chunk_frame, Archive, Chunk, ChunkEntry, OpenStep, Opener};
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
    let env = std::env::vars().filter(|(k, _)| {
        let k = k.to_ascii_uppercase();
        k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
    });
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

/// An archive opened for ranged reads. Cheap to share across threads (`Arc`).
pub struct ArchiveSource {
    location: Location,
    backend: Backend,
    len: u64,
    stats: ReadStats,
    /// The tail bytes fetched when opening: kept for nothing else, dropped after open.
    first_fetch: Mutex<Option<(u64, Bytes)>>,
}

impl ArchiveSource {
    /// Connects to the location and learns its length. On an object store this is the
    /// suffix GET that also brings the tail, so opening costs one request.
    pub async fn connect(location: &Location) -> Result<ArchiveSource> {
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
                Ok(ArchiveSource {
                    location: location.clone(),
                    backend: Backend::File(Mutex::new(file)),
                    len,
                    stats: ReadStats::default(),
                    first_fetch: Mutex::new(None),
                })
            }
            Location::Url(url) => {
                let (store, path) = store_for_url(url)?;
                let (start, len, bytes, requests) = fetch_tail(store.as_ref(), &path)
                    .await
                    .map_err(|e| AppError::store(url.as_str(), e))?;
                let src = ArchiveSource {
                    location: location.clone(),
                    backend: Backend::Store { store, path },
                    len,
                    stats: ReadStats::default(),
                    first_fetch: Mutex::new(Some((start, bytes.clone()))),
                };
                src.stats.requests.fetch_add(requests, Ordering::Relaxed);
                src.stats
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(src)
            }
        }
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

    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.requests.load(Ordering::Relaxed),
            self.stats.bytes.load(Ordering::Relaxed),
        )
    }

    /// Reads exactly `range`.
    pub async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        if range.end > self.len || range.start > range.end {
            return Err(AppError::Format {
                location: self.location.to_string(),
                source: calltape_format::FormatError::Truncated {
                    offset: range.start.min(self.len),
                    needed: range.end.saturating_sub(self.len),
                },
            });
        }
        if let Some((start, bytes)) = self.first_fetch.lock().expect("not poisoned").as_ref() {
            let end = start + bytes.len() as u64;
            if range.start >= *start && range.end <= end {
                let a = (range.start - start) as usize;
                let b = (range.end - start) as usize;
                return Ok(bytes.slice(a..b));
            }
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(range.end - range.start, Ordering::Relaxed);
        match &self.backend {
            Backend::File(file) => {
                let mut f = file.lock().expect("not poisoned");
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

    /// Reads the footer, summary and chunk index: one request on an object store for all
    /// but the largest calls.
    pub async fn open(&self) -> Result<Archive> {
        let mut opener = Opener::new(self.len);
        let mut range = opener.first_range();
        let archive = loop {
            let bytes = self.read(range.clone()).await?;
            match opener
                .feed(range.start, &bytes)
                .map_err(|e| self.format_err(e))?
            {
                OpenStep::Ready(a) => break *a,
                OpenStep::Need(next) => range = next,
            }
        };
        // the tail is parsed; don't keep 256 KiB around for the session
        self.first_fetch.lock().expect("not poisoned").take();
        Ok(archive)
    }

    /// Fetches and decodes one chunk.
    pub async fn chunk(&self, entry: &ChunkEntry) -> Result<Chunk> {
        let bytes = self.read(entry.frame_range()).await?;
        decode_chunk_frame(entry, &bytes).map_err(|e| self.format_err(e))
    }

    pub fn format_err(&self, e: calltape_format::FormatError) -> AppError {
        AppError::Format {
            location: self.location.to_string(),
            source: e,
        }
    }

    /// Runs `f` on a blocking thread with a reader over the whole archive from byte 0, for
    /// forward scanning (`verify`, `recover`, inspecting an unclosed file). On an object store
    /// the object is streamed, so memory stays bounded whatever its size.
    pub async fn with_reader<T, F>(&self, f: F) -> Result<T>
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
                let reader = std::io::BufReader::with_capacity(1 << 20, file);
                tokio::task::spawn_blocking(move || f(Box::new(reader)))
                    .await
                    .map_err(join_err)
            }
            (Backend::Store { store, path }, _) => {
                use futures::StreamExt;
                let got = store
                    .get(path)
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
