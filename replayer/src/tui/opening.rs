//! Opening a call for the replayer: a file or object-store URL read from its tail, a damaged
//! archive recovered by scanning forward (with a visible notice), or a spool file still being
//! recorded, followed live. The result is one immutable [`LoadedCall`] snapshot.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use calltape_format::frame::FrameKind;
use calltape_format::scan::{FrameScanner, Scanned};
use calltape_format::summary::SummaryBuilder;
use calltape_format::{chunk::decode_chunk, Archive, ChunkEntry, Footer, FormatError, Header};
use futures::StreamExt;
use object_store::ObjectStoreExt;

use crate::error::{AppError, Result};
use crate::source::{store_for_url, ArchiveSource, Location};

/// A call as the replayer sees it: where its bytes are, its summary and chunk index, and
/// what the user must know about how it was opened.
pub struct LoadedCall {
    pub source: Arc<ArchiveSource>,
    pub archive: Archive,
    /// The file, URL or session the user asked for.
    pub location: String,
    /// Shown above everything: the archive was damaged and only part of it could be read.
    pub notice: Option<String>,
    /// Set while following a call that is still being recorded.
    pub live: Option<LiveState>,
    /// A downloaded copy (damaged remote archives), deleted when the call is dropped.
    _download: Option<Arc<TempFile>>,
}

/// Progress of a followed recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveState {
    pub path: PathBuf,
    /// Bytes read and found good so far.
    pub good_bytes: u64,
    /// The recorder closed the file (a footer was written).
    pub finished: bool,
    /// Scanning stopped at damage.
    pub error: Option<String>,
}

impl LoadedCall {
    pub fn session_id(&self) -> &str {
        &self.archive.header().session_id
    }
}

/// Resolves a `replay` argument: a URL (`scheme://…`), a path to an existing file, or else a
/// session id looked up in the catalog.
pub fn resolve_target(arg: &str, catalog: Option<&Path>) -> Result<Location> {
    if arg.contains("://") {
        return Location::parse(arg);
    }
    let path = Path::new(arg);
    if path.exists() || arg.contains(std::path::MAIN_SEPARATOR) || arg.ends_with(".calltape") {
        return Ok(Location::File(path.to_path_buf()));
    }
    resolve_session(arg, catalog)
}

/// Where a session id (or an unambiguous prefix of one) from the catalog becomes a location.
pub fn resolve_session(id: &str, catalog: Option<&Path>) -> Result<Location> {
    match crate::catalog::resolve_session(catalog, id)? {
        Some(location) => Location::parse(&location),
        None => Err(AppError::Usage(format!(
            "'{id}' is not a file, a URL or a session id in the catalog ({}); \
             run `calltape index <dir | s3://bucket/prefix>` first to open calls by session id",
            crate::catalog::path(catalog)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| e.to_string())
        ))),
    }
}

/// Opens a closed archive from its tail; a damaged or unclosed one is recovered by scanning
/// forward (a remote one is first downloaded to a temporary file).
pub async fn open_call(location: &Location) -> Result<LoadedCall> {
    let source = ArchiveSource::connect(location).await?;
    match source.open().await {
        Ok(archive) => {
            let notice = archive.summary.recovery.as_ref().map(|r| {
                format!(
                    "RECOVERED archive: {} chunks kept, {} bytes lost ({})",
                    r.chunks_kept, r.lost_bytes, r.reason
                )
            });
            Ok(LoadedCall {
                source: Arc::new(source),
                archive,
                location: location.to_string(),
                notice,
                live: None,
                _download: None,
            })
        }
        Err(AppError::Format { source: e, .. }) if recoverable(&e) => {
            let open_error = match e {
                FormatError::NoFooter => "not closed: no footer".to_string(),
                e => e.to_string(),
            };
            recover(location, source, &open_error).await
        }
        Err(e) => Err(e),
    }
}

fn recoverable(e: &FormatError) -> bool {
    !matches!(
        e,
        FormatError::NotAnArchive | FormatError::UnsupportedVersion { .. } | FormatError::Io(_)
    )
}

async fn recover(location: &Location, source: ArchiveSource, why: &str) -> Result<LoadedCall> {
    let (path, download) = match location {
        Location::File(p) => (p.clone(), None),
        Location::Url(url) => {
            let tmp = TempFile::new("calltape-recover", "calltape");
            download_to(url, &tmp.0).await?;
            (tmp.0.clone(), Some(Arc::new(tmp)))
        }
    };
    let path2 = path.clone();
    let scanned = tokio::task::spawn_blocking(move || {
        let f = File::open(&path2)?;
        calltape_format::scan(BufReader::with_capacity(1 << 20, f))
    })
    .await
    .map_err(|e| AppError::Other(format!("recovery scan failed: {e}")))?
    .map_err(|e| source.format_err(e))?;
    let source = match &download {
        Some(_) => ArchiveSource::connect(&Location::File(path)).await?,
        None => source,
    };
    let r = &scanned.report;
    let notice = format!(
        "DAMAGED archive ({why}): showing what could be recovered, {} chunks / {} records up to {}; {} bytes lost ({}). `calltape recover` repairs it.",
        r.chunks_kept,
        r.records_kept,
        crate::export::units::format_clock_tenths(r.last_time_ns),
        r.lost_bytes,
        if r.reason.is_empty() { "no footer" } else { &r.reason },
    );
    let archive = Archive {
        footer: synthetic_footer(r.kept_bytes, scanned.index.len()),
        summary: scanned.summary,
        index: scanned.index,
        file_len: source.len(),
    };
    Ok(LoadedCall {
        source: Arc::new(source),
        archive,
        location: location.to_string(),
        notice: Some(notice),
        live: None,
        _download: download,
    })
}

fn synthetic_footer(end: u64, chunks: usize) -> Footer {
    Footer {
        summary_offset: end,
        index_offset: end,
        chunk_count: chunks as u32,
        flags: calltape_format::frame::FLAG_RECOVERED,
    }
}

async fn download_to(url: &url::Url, dest: &Path) -> Result<()> {
    use std::io::Write;
    let (store, path) = store_for_url(url)?;
    let got = store
        .get(&path)
        .await
        .map_err(|e| AppError::store(url.as_str(), e))?;
    let mut out = std::io::BufWriter::new(File::create(dest).map_err(|e| AppError::Io {
        what: format!("create {}", dest.display()),
        source: e,
    })?);
    let mut stream = got.into_stream();
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| AppError::store(url.as_str(), e))?;
        out.write_all(&bytes).map_err(|e| AppError::Io {
            what: format!("write {}", dest.display()),
            source: e,
        })?;
    }
    out.flush().map_err(|e| AppError::Io {
        what: format!("write {}", dest.display()),
        source: e,
    })
}

/// A file deleted on drop.
#[derive(Debug)]
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(prefix: &str, ext: &str) -> TempFile {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!("{prefix}-{}-{n}.{ext}", std::process::id())))
    }
}

impl TempFile {
    /// Keeps the file: the caller now owns deleting it.
    pub fn into_path(mut self) -> PathBuf {
        std::mem::take(&mut self.0)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Follows a spool file while the recorder appends to it: reads the new bytes, scans whole
/// frames out of them (a partly written frame waits for the next poll), and rebuilds the turn
/// table from the records of each new chunk.
pub struct Follower {
    path: PathBuf,
    file: File,
    read_pos: u64,
    scanner: FrameScanner,
    builder: Option<SummaryBuilder>,
    index: Vec<ChunkEntry>,
    finished: bool,
    error: Option<String>,
}

impl Follower {
    pub fn new(path: &Path) -> Result<Follower> {
        let file = File::open(path).map_err(|e| AppError::Io {
            what: format!("open {}", path.display()),
            source: e,
        })?;
        Ok(Follower {
            path: path.to_path_buf(),
            file,
            read_pos: 0,
            scanner: FrameScanner::new(),
            builder: None,
            index: Vec::new(),
            finished: false,
            error: None,
        })
    }

    /// True once the recorder closed the file or the scan hit damage: nothing more will come.
    pub fn done(&self) -> bool {
        self.finished || self.error.is_some()
    }

    /// Reads what was appended since the last poll. Returns a new snapshot when something
    /// changed, `None` otherwise (also before the header frame has landed).
    pub async fn poll(&mut self) -> Result<Option<LoadedCall>> {
        if self.done() {
            return Ok(None);
        }
        let before = (
            self.scanner.good_end(),
            self.index.len(),
            self.builder.is_some(),
        );
        self.read_new()?;
        let changed = (
            self.scanner.good_end(),
            self.index.len(),
            self.builder.is_some(),
        ) != before
            || self.done();
        if !changed {
            return Ok(None);
        }
        let Some(builder) = &self.builder else {
            return Ok(None);
        };
        let summary = builder.build();
        let good = self.scanner.good_end();
        // the recorder may rename `x.calltape.part` to `x.calltape` when it closes
        let path = if self.path.exists() {
            self.path.clone()
        } else {
            let s = self.path.to_string_lossy();
            PathBuf::from(s.strip_suffix(".part").unwrap_or(&s).to_string())
        };
        let source = ArchiveSource::connect(&Location::File(path)).await?;
        let archive = Archive {
            footer: synthetic_footer(good, self.index.len()),
            summary,
            index: self.index.clone(),
            file_len: source.len(),
        };
        Ok(Some(LoadedCall {
            source: Arc::new(source),
            archive,
            location: self.path.display().to_string(),
            notice: self
                .error
                .as_ref()
                .map(|e| format!("DAMAGED spool file: stopped following at {e}")),
            live: Some(LiveState {
                path: self.path.clone(),
                good_bytes: good,
                finished: self.finished,
                error: self.error.clone(),
            }),
            _download: None,
        }))
    }

    fn read_new(&mut self) -> Result<()> {
        let io = |e| AppError::Io {
            what: format!("read {}", self.path.display()),
            source: e,
        };
        self.file.seek(SeekFrom::Start(self.read_pos)).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = self.file.read(&mut buf).map_err(|e| AppError::Io {
                what: format!("read {}", self.path.display()),
                source: e,
            })?;
            if n == 0 {
                break;
            }
            self.read_pos += n as u64;
            self.scanner.push(&buf[..n]);
            self.drain()?;
            if self.done() {
                break;
            }
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        loop {
            match self.scanner.next_unit() {
                Ok(None) => return Ok(()),
                Ok(Some(Scanned::Footer { .. })) => {
                    self.finished = true;
                    return Ok(());
                }
                Ok(Some(Scanned::Frame {
                    kind,
                    offset,
                    payload,
                })) => match kind {
                    FrameKind::Header if self.builder.is_none() => {
                        let header: Header = serde_json::from_slice(&payload).map_err(|e| {
                            AppError::Other(format!(
                                "{}: bad header frame: {e}",
                                self.path.display()
                            ))
                        })?;
                        self.builder = Some(SummaryBuilder::new(header));
                    }
                    FrameKind::Chunk => {
                        let Some(b) = self.builder.as_mut() else {
                            self.error =
                                Some(format!("a chunk before the header at byte {offset}"));
                            return Ok(());
                        };
                        match decode_chunk(&payload, offset) {
                            Ok(chunk) => {
                                for r in &chunk.records {
                                    b.observe(r);
                                }
                                let h = chunk.header;
                                self.index.push(ChunkEntry {
                                    lane: h.lane,
                                    start_ns: h.start_ns,
                                    end_ns: h.end_ns,
                                    offset,
                                    compressed_len: (payload.len()
                                        - calltape_format::chunk::CHUNK_HEADER_LEN)
                                        as u32,
                                    uncompressed_len: h.uncompressed_len,
                                    record_count: h.record_count,
                                    first_turn: h.first_turn,
                                    last_turn: h.last_turn,
                                });
                            }
                            Err(e) => {
                                self.error = Some(e.to_string());
                                return Ok(());
                            }
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    self.error = Some(e.to_string());
                    return Ok(());
                }
            }
        }
    }
}
