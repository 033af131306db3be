//! Opening a call for the replayer: a file or object-store URL read from its tail, a damaged
//! archive recovered by scanning forward (with a visible notice), or a spool file still being
//! recorded, followed live. The result is one immutable [`LoadedCall`] snapshot.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use calltape_format::{Archive, ArchiveScanner, FormatError};

use crate::error::{AppError, Result};
use crate::source::{ArchiveSource, Location};

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

/// Opens a closed archive from its tail; a damaged or unclosed one is read through a forward
/// scan (streamed from an object store), with a notice saying what was recovered. The same
/// opening as the CLI's ([`crate::call::open_location`]).
pub async fn open_call(location: &Location) -> Result<LoadedCall> {
    let opened = crate::call::open_location(location).await?;
    let notice = match (&opened.scanned, &opened.open_failure) {
        (Some(r), Some(e)) => {
            let why = match e {
                FormatError::NoFooter => "not closed: no footer".to_string(),
                e => e.to_string(),
            };
            Some(format!(
                "DAMAGED archive ({why}): showing what could be recovered, {} chunks / {} records up to {}; {} bytes lost ({}). `calltape recover` repairs it.",
                r.chunks_kept,
                r.records_kept,
                crate::export::units::format_clock_tenths(r.last_time_ns),
                r.lost_bytes,
                if r.reason.is_empty() { "no footer" } else { &r.reason },
            ))
        }
        _ => opened.archive.summary.recovery.as_ref().map(|r| {
            format!(
                "RECOVERED archive: {} chunks kept, {} bytes lost ({})",
                r.chunks_kept, r.lost_bytes, r.reason
            )
        }),
    };
    Ok(LoadedCall {
        source: Arc::new(opened.source),
        archive: opened.archive,
        location: location.to_string(),
        notice,
        live: None,
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

/// Follows a spool file while the recorder appends to it: reads the new bytes and hands
/// them to the format crate's forward scanner (a partly written frame waits for the next
/// poll), which rebuilds the turn table and chunk index from each new chunk.
pub struct Follower {
    path: PathBuf,
    file: File,
    read_pos: u64,
    scanner: ArchiveScanner,
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
            scanner: ArchiveScanner::new(),
            error: None,
        })
    }

    /// True once the recorder closed the file or the scan hit damage: nothing more will come.
    pub fn done(&self) -> bool {
        self.scanner.finished() || self.error.is_some()
    }

    fn state(&self) -> (u64, usize, bool) {
        (
            self.scanner.good_end(),
            self.scanner.index().len(),
            self.scanner.header().is_some(),
        )
    }

    /// Reads what was appended since the last poll. Returns a new snapshot when something
    /// changed, `None` otherwise (also before the header frame has landed).
    pub async fn poll(&mut self) -> Result<Option<LoadedCall>> {
        if self.done() {
            return Ok(None);
        }
        let before = self.state();
        self.read_new()?;
        if self.state() == before && !self.done() {
            return Ok(None);
        }
        let good = self.scanner.good_end();
        // the recorder may rename `x.calltape.part` to `x.calltape` when it closes
        let path = if self.path.exists() {
            self.path.clone()
        } else {
            let s = self.path.to_string_lossy();
            PathBuf::from(s.strip_suffix(".part").unwrap_or(&s).to_string())
        };
        let source = ArchiveSource::connect(&Location::File(path)).await?;
        let Some(mut archive) = self.scanner.archive(source.len()) else {
            return Ok(None);
        };
        // a followed file is shown as recovered until it is closed, as before
        archive.footer.flags |= calltape_format::frame::FLAG_RECOVERED;
        let error = self
            .error
            .clone()
            .or(self.scanner.stopped().map(str::to_string));
        Ok(Some(LoadedCall {
            source: Arc::new(source),
            archive,
            location: self.path.display().to_string(),
            notice: error
                .as_ref()
                .map(|e| format!("DAMAGED spool file: stopped following at {e}")),
            live: Some(LiveState {
                path: self.path.clone(),
                good_bytes: good,
                finished: self.scanner.intact(),
                error,
            }),
        }))
    }

    fn read_new(&mut self) -> Result<()> {
        let io = |path: &Path, e| AppError::Io {
            what: format!("read {}", path.display()),
            source: e,
        };
        self.file
            .seek(SeekFrom::Start(self.read_pos))
            .map_err(|e| io(&self.path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = self.file.read(&mut buf).map_err(|e| io(&self.path, e))?;
            if n == 0 {
                break;
            }
            self.read_pos += n as u64;
            self.scanner.push(&buf[..n]);
            // take every complete frame out (the scanner keeps the index and summary)
            loop {
                match self.scanner.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        self.error = Some(e.to_string());
                        break;
                    }
                }
            }
            if self.done() {
                break;
            }
        }
        Ok(())
    }
}
