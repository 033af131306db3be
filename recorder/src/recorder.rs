//! The [`Recorder`]: starts sessions and hands them to its writer threads, uploads the
//! archives they close, recovers what a crash left in the spool, and shuts everything down
//! within a deadline.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use calltape_format::{recover_in_place, AudioCodec, FormatError, Header, Track};
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::clock::SessionClock;
use crate::config::{Config, RecorderBuilder, StoreTarget};
use crate::deadline::{from_now, instant_after};
use crate::error::RecorderError;
use crate::queue::{Budget, SessionCore, SessionQueue, TrackSlot, STATE_FINISHED, STATE_RECORDING};
use crate::report::{FinishReport, Health, Issues, ShutdownReport, UploadOutcome, UploadReport};
use crate::session::{Session, SessionHandle, SessionInfo};
use crate::session_id::validate_session_id;
use crate::spool::{
    free_archive_path, rename_durable, Closed, ClosedArchive, SpoolSettings, ARCHIVE_SUFFIX,
    PART_SUFFIX,
};
use crate::stale_uploads::Which;
use crate::upload::Uploader;
use crate::writer::{NewSession, OnClosed, WriterPool};

/// Uploads running at once.
const UPLOAD_SLOTS: usize = 4;

struct Registered {
    core: Arc<SessionCore>,
    handle: Weak<SessionHandle>,
}

/// State shared by the recorder, the uploads of its sessions and its background tasks.
pub(crate) struct Shared {
    pub(crate) config: Config,
    uploader: Uploader,
    budget: Arc<Budget>,
    writers: WriterPool,
    sessions: Mutex<HashMap<Arc<str>, Registered>>,
    closing: AtomicBool,
    shutdown_deadline: Mutex<Option<Instant>>,
    issues: Arc<Issues>,
    reported_paths: Mutex<HashSet<PathBuf>>,
    /// Uploads running, by spool path; each publishes its report for whoever else asked.
    inflight: Mutex<HashMap<PathBuf, watch::Sender<Option<UploadReport>>>>,
    pending_lock: tokio::sync::Mutex<()>,
    upload_slots: Semaphore,
    runtime: tokio::runtime::Handle,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Counts a problem, keeps it as the last error and tells the `on_error` callback.
    pub(crate) fn report_issue(&self, session_id: Option<&str>, message: String) {
        self.issues.report(session_id, message);
    }

    /// The deadline of an upload asked for at `asked` (a session's `finish()`, or a scan of
    /// the spool): the upload deadline from then, or the shutdown deadline if earlier.
    fn upload_deadline(&self, asked: Instant) -> Instant {
        let own = instant_after(asked, self.config.upload_deadline);
        match *lock(&self.shutdown_deadline) {
            Some(d) => own.min(d),
            None => own,
        }
    }

    /// Whether a closed archive in the spool (`{id}.calltape` or `{id}~N.calltape`) belongs
    /// to a session of this recorder that has not published its report yet.
    fn held_by_live_session(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let stem = name.strip_suffix(ARCHIVE_SUFFIX).unwrap_or(name);
        let numbered = match stem.rsplit_once('~') {
            Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(id),
            _ => None,
        };
        let sessions = lock(&self.sessions);
        sessions.contains_key(stem) || numbered.is_some_and(|id| sessions.contains_key(id))
    }

    /// Uploads one closed archive; if another task already is uploading it, waits for that
    /// upload and returns its report (a session's `finish()` racing a spool scan gets the real
    /// outcome and key, whichever task did the work). `known` is the archive as its writer
    /// described it on closing; without it, the archive's tail is read back. `asked` is when
    /// the upload was asked for; its deadline counts from then, waiting for an upload slot
    /// included.
    async fn upload_path(
        &self,
        path: &Path,
        known: Option<ClosedArchive>,
        asked: Instant,
    ) -> UploadReport {
        let running = {
            let mut inflight = lock(&self.inflight);
            match inflight.get(path) {
                Some(tx) => Some(tx.subscribe()),
                None => {
                    inflight.insert(path.to_path_buf(), watch::channel(None).0);
                    None
                }
            }
        };
        if let Some(mut rx) = running {
            if let Ok(r) = rx.wait_for(Option::is_some).await {
                if let Some(report) = r.clone() {
                    return report;
                }
            }
            // the other task ended without a report (it was cancelled): upload it here
            return Box::pin(self.upload_path(path, known, asked)).await;
        }
        let claim = InflightClaim { shared: self, path };
        let report = self.upload_claimed(path, known, asked).await;
        claim.release(Some(report.clone()));
        report
    }

    async fn upload_claimed(
        &self,
        path: &Path,
        known: Option<ClosedArchive>,
        asked: Instant,
    ) -> UploadReport {
        let deadline = self.upload_deadline(asked);
        let _slot = match tokio::time::timeout_at(deadline, self.upload_slots.acquire()).await {
            Ok(slot) => slot,
            Err(_) => {
                let id = known
                    .as_ref()
                    .map(|a| a.header().session_id.clone())
                    .unwrap_or_default();
                return UploadReport {
                    session_id: id,
                    key: String::new(),
                    bytes: known.as_ref().map_or(0, |a| a.len),
                    recovered: known.as_ref().is_some_and(|a| a.recovered),
                    outcome: UploadOutcome::InSpool {
                        path: path.to_path_buf(),
                        reason: format!(
                            "upload deadline passed while {UPLOAD_SLOTS} other uploads were \
                             running; it is retried later"
                        ),
                    },
                };
            }
        };
        let opened = match known {
            Some(archive) => Ok(archive),
            None => {
                let p = path.to_path_buf();
                tokio::task::spawn_blocking(move || ClosedArchive::read(&p))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        let report = match opened {
            Ok(archive) => self.uploader.upload(&archive, deadline).await,
            Err(reason) => UploadReport {
                session_id: String::new(),
                key: String::new(),
                bytes: 0,
                recovered: false,
                outcome: UploadOutcome::InSpool {
                    path: path.to_path_buf(),
                    reason: format!("cannot open the archive: {reason}"),
                },
            },
        };
        if let UploadOutcome::InSpool { reason, .. } = &report.outcome {
            if lock(&self.reported_paths).insert(path.to_path_buf()) {
                let id = (!report.session_id.is_empty()).then_some(report.session_id.as_str());
                self.report_issue(id, reason.clone());
            }
        } else {
            lock(&self.reported_paths).remove(path);
        }
        report
    }
}

/// Records calls into calltape archives and uploads them. Cheap to clone.
///
/// Create one per process with [`Recorder::builder`], start a [`Session`] per call, and call
/// [`Recorder::shutdown`] before the process exits.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("spool_dir", &self.shared.config.spool_dir)
            .field("destination", &self.shared.uploader.target.display)
            .finish()
    }
}

impl Recorder {
    pub fn builder() -> RecorderBuilder {
        RecorderBuilder::default()
    }

    pub(crate) async fn start(
        config: Config,
        target: StoreTarget,
    ) -> Result<Recorder, RecorderError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RecorderError::NoRuntime)?;
        let uploader = Uploader::new(
            target,
            config.key_layout.clone(),
            config.retry.clone(),
            config.multipart_threshold,
            config.part_size,
        );
        let budget = Arc::new(Budget::new(config.memory_budget, config.control_reserve));
        let issues = Arc::new(Issues::new(config.on_error.clone()));
        let settings = Arc::new(SpoolSettings {
            dir: config.spool_dir.clone(),
            flush_interval_ns: config.flush_interval_ns,
            sync_data: config.sync_data,
            audio_tolerance_ns: config.audio_tolerance_ns,
            redactor: config.redactor.clone(),
            issues: issues.clone(),
        });
        let writers = WriterPool::start(settings, config.writer_threads, config.drain_interval)
            .map_err(|source| RecorderError::Spool {
                path: config.spool_dir.clone(),
                action: "starting the spool writer threads",
                source,
            })?;
        let shared = Arc::new(Shared {
            config,
            uploader,
            budget,
            writers,
            sessions: Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
            shutdown_deadline: Mutex::new(None),
            issues,
            reported_paths: Mutex::new(HashSet::new()),
            inflight: Mutex::new(HashMap::new()),
            pending_lock: tokio::sync::Mutex::new(()),
            upload_slots: Semaphore::new(UPLOAD_SLOTS),
            runtime,
        });
        let recorder = Recorder { shared };
        let dir = recorder.shared.config.spool_dir.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare_spool(&dir))
            .await
            .unwrap_or_else(|e| Err(vec![e.to_string()]));
        match prepared {
            Ok(problems) | Err(problems) => {
                for p in problems {
                    recorder.shared.report_issue(None, p);
                }
            }
        }
        if let Some(stale) = recorder.shared.uploader.target.stale_uploads.clone() {
            // multipart uploads older than the upload deadline belong to no live upload
            let (weak, age) = (
                Arc::downgrade(&recorder.shared),
                recorder.shared.config.upload_deadline,
            );
            recorder.shared.runtime.spawn(async move {
                if let Err(e) = stale.abort(Which::OlderThan(age)).await {
                    if let Some(shared) = weak.upgrade() {
                        shared.report_issue(None, e);
                    }
                }
            });
        }
        if recorder.shared.config.upload_on_start {
            let r = recorder.clone();
            recorder.shared.runtime.spawn(async move {
                r.upload_pending().await;
            });
        }
        if let Some(every) = recorder.shared.config.retry_interval {
            let weak = Arc::downgrade(&recorder.shared);
            recorder.shared.runtime.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(shared) = weak.upgrade() else { break };
                    if shared.closing.load(Ordering::Relaxed) {
                        break;
                    }
                    Recorder { shared }.upload_pending().await;
                }
            });
        }
        Ok(recorder)
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> &Path {
        &self.shared.config.spool_dir
    }

    /// Starts recording a call. Fails only on bad input (session id, tracks), a duplicate id,
    /// or during shutdown; a broken spool degrades the session instead (see
    /// [`Session::status`]). May be called from any thread (it does no I/O itself: one of
    /// the recorder's writer threads creates the spool file).
    pub fn start_session(&self, info: SessionInfo) -> Result<Session, RecorderError> {
        let shared = &self.shared;
        if shared.closing.load(Ordering::Relaxed) {
            return Err(RecorderError::ShuttingDown);
        }
        validate_session_id(&info.session_id)?;
        let bad = |reason: String| RecorderError::InvalidSessionInfo {
            session_id: info.session_id.clone(),
            reason,
        };
        if info.tracks.len() > 64 {
            return Err(bad("more than 64 audio tracks".into()));
        }
        for (i, t) in info.tracks.iter().enumerate() {
            if t.sample_rate == 0 || t.sample_rate > 768_000 {
                return Err(bad(format!(
                    "track {} has sample rate {}",
                    i + 1,
                    t.sample_rate
                )));
            }
            if t.channels == 0 || t.channels > 16 {
                return Err(bad(format!("track {} has {} channels", i + 1, t.channels)));
            }
        }
        let started_at = info.started_at.unwrap_or_else(SystemTime::now);
        let started: DateTime<Utc> = started_at.into();
        let tracks: Vec<Track> = info
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| Track {
                id: i as u16 + 1,
                role: t.role,
                sample_rate: t.sample_rate,
                channels: t.channels,
                codec: AudioCodec::Pcm16Rice,
                name: t.name.clone(),
            })
            .collect();
        let header = Header {
            session_id: info.session_id.clone(),
            started_at: started.to_rfc3339_opts(SecondsFormat::Millis, true),
            started_at_unix_ns: started.timestamp_nanos_opt().unwrap_or(0),
            agent: info.agent.clone(),
            environment: info.environment.clone(),
            tags: info.tags.clone(),
            tracks: tracks.clone(),
        };
        let slots: Box<[TrackSlot]> = tracks
            .iter()
            .map(|t| {
                let same_role = tracks.iter().filter(|o| o.role == t.role).count();
                let label = if same_role > 1 {
                    format!("audio:{}:{}", t.role, t.id)
                } else {
                    format!("audio:{}", t.role)
                };
                TrackSlot {
                    id: t.id,
                    channels: t.channels,
                    sample_rate: t.sample_rate,
                    label,
                    dropped_pending: AtomicU64::new(0),
                    dropped_total: AtomicU64::new(0),
                }
            })
            .collect();
        let id: Arc<str> = Arc::from(info.session_id.as_str());
        let writer = shared.writers.assign();
        let queue = SessionQueue::new(
            shared.config.control_queue,
            shared.config.audio_queue,
            writer.bell.clone(),
            writer.key,
        );
        let core = Arc::new(SessionCore::new(
            id.clone(),
            SessionClock::new(info.clock),
            slots,
            shared.budget.clone(),
            queue,
        ));
        let handle = Arc::new(SessionHandle { core: core.clone() });
        {
            let mut sessions = lock(&shared.sessions);
            if sessions.contains_key(&id) {
                return Err(RecorderError::DuplicateSession {
                    session_id: info.session_id,
                });
            }
            sessions.insert(
                id,
                Registered {
                    core: core.clone(),
                    handle: Arc::downgrade(&handle),
                },
            );
        }
        let on_closed: OnClosed = {
            let (shared, core) = (shared.clone(), core.clone());
            Box::new(move |closed| {
                let runtime = shared.runtime.clone();
                runtime.spawn(finish_session(shared, core, closed));
            })
        };
        shared.writers.add(
            writer,
            NewSession {
                core,
                header,
                on_closed,
            },
        );
        Ok(Session(handle))
    }

    /// A session of this recorder that is still recording, by id.
    pub fn session(&self, session_id: &str) -> Option<Session> {
        let sessions = lock(&self.shared.sessions);
        let r = sessions.get(session_id)?;
        if r.core.state.load(Ordering::Relaxed) != STATE_RECORDING {
            return None;
        }
        r.handle.upgrade().map(Session)
    }

    pub fn health(&self) -> Health {
        Health {
            open_sessions: lock(&self.shared.sessions).len(),
            queued_bytes: self.shared.budget.queued(),
            memory_budget: self.shared.config.memory_budget,
            errors: self.shared.issues.count(),
            last_error: self.shared.issues.last(),
        }
    }

    /// Recovers archives left unclosed by a crash and uploads every closed archive waiting in
    /// the spool (each within the upload deadline). Returns what this run did. The archive of
    /// a session still finishing is left to that session's `finish()`.
    pub async fn upload_pending(&self) -> Vec<UploadReport> {
        let shared = &self.shared;
        let _one_at_a_time = shared.pending_lock.lock().await;
        let dir = shared.config.spool_dir.clone();
        let live: HashSet<String> = lock(&shared.sessions)
            .keys()
            .map(|k| k.to_string())
            .collect();
        let found = tokio::task::spawn_blocking(move || {
            let problems = recover_parts(&dir, &live);
            (problems, closed_archives(&dir))
        })
        .await;
        let Ok((problems, paths)) = found else {
            return Vec::new();
        };
        for p in problems {
            if lock(&shared.reported_paths).insert(PathBuf::from(&p)) {
                shared.report_issue(None, p);
            }
        }
        let mut reports = Vec::new();
        for path in paths {
            // a live session's archive is uploaded by its own finish(), which reports it
            if !shared.held_by_live_session(&path) {
                reports.push(shared.upload_path(&path, None, Instant::now()).await);
            }
        }
        reports
    }

    /// Finishes every open session (recording `session_end` with reason `shutdown` where the
    /// agent recorded none), uploads them and whatever waits in the spool, all within
    /// `deadline`. What does not make it stays in the spool for the next start.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let shared = &self.shared;
        let until = from_now(deadline);
        shared.closing.store(true, Ordering::Relaxed);
        *lock(&shared.shutdown_deadline) = Some(until);
        let cores: Vec<Arc<SessionCore>> = lock(&shared.sessions)
            .values()
            .map(|r| r.core.clone())
            .collect();
        for core in &cores {
            lock(&core.default_end_reason).get_or_insert_with(|| "shutdown".to_string());
            core.begin_finishing();
        }
        let mut report = ShutdownReport::default();
        for core in cores {
            let mut rx = core.report.subscribe();
            let got = match tokio::time::timeout_at(until, rx.wait_for(Option::is_some)).await {
                Ok(Ok(r)) => r.clone(),
                _ => None,
            };
            match got {
                Some(r) => report.sessions.push(r),
                None => report.timed_out.push(core.id.to_string()),
            }
        }
        if let Ok(pending) = tokio::time::timeout_at(until, self.upload_pending()).await {
            report.pending = pending;
        }
        report
    }

    #[cfg(feature = "tracing")]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

#[cfg(feature = "tracing")]
impl Shared {
    pub(crate) fn find_session(&self, id: &str) -> Option<Weak<SessionHandle>> {
        lock(&self.sessions).get(id).map(|r| r.handle.clone())
    }
}

/// After a session's writer closed its archive: uploads it (handing the uploader what the
/// writer knows, so nothing is read back) and publishes the session's report.
async fn finish_session(shared: Arc<Shared>, core: Arc<SessionCore>, closed: Closed) {
    let (path, known) = match closed {
        Closed::Archive(archive) => (archive.path.clone(), Some(*archive)),
        Closed::Recovered { path } => (path, None),
        Closed::Nothing { reason, path } => {
            let path = path.unwrap_or_else(|| shared.config.spool_dir.clone());
            let upload = in_spool(&core, path, reason);
            return publish(&shared, &core, upload);
        }
    };
    let asked = core
        .finish_requested
        .get()
        .copied()
        .unwrap_or_else(Instant::now);
    let upload = shared.upload_path(&path, known, asked).await;
    publish(&shared, &core, upload);
}

fn publish(shared: &Shared, core: &SessionCore, upload: UploadReport) {
    let report = FinishReport {
        upload,
        dropped_samples: core
            .tracks
            .iter()
            .map(|t| t.dropped_total.load(Ordering::Relaxed))
            .sum(),
        dropped_records: core.dropped_records_total.load(Ordering::Relaxed),
        error: core.error(),
    };
    core.state.store(STATE_FINISHED, Ordering::Release);
    lock(&shared.sessions).remove(&core.id);
    core.report.send_replace(Some(report));
}

/// One task's claim on uploading a spool path: released with the report for the tasks that
/// wait on it, or without one if the uploading task is dropped mid-way (they then retry).
struct InflightClaim<'a> {
    shared: &'a Shared,
    path: &'a Path,
}

impl InflightClaim<'_> {
    fn release(self, report: Option<UploadReport>) {
        if let Some(tx) = lock(&self.shared.inflight).remove(self.path) {
            tx.send_replace(report);
        }
        std::mem::forget(self);
    }
}

impl Drop for InflightClaim<'_> {
    fn drop(&mut self) {
        if let Some(tx) = lock(&self.shared.inflight).remove(self.path) {
            tx.send_replace(None);
        }
    }
}

fn in_spool(core: &SessionCore, path: PathBuf, reason: String) -> UploadReport {
    UploadReport {
        session_id: core.id.to_string(),
        key: String::new(),
        bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        recovered: false,
        outcome: UploadOutcome::InSpool { path, reason },
    }
}

/// Creates the spool directory and recovers `.part` files left by a crash.
fn prepare_spool(dir: &Path) -> Result<Vec<String>, Vec<String>> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(vec![RecorderError::Spool {
            path: dir.to_path_buf(),
            action: "creating the directory",
            source: e,
        }
        .to_string()]);
    }
    Ok(recover_parts(dir, &HashSet::new()))
}

fn list(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    v.sort();
    v
}

fn closed_archives(dir: &Path) -> Vec<PathBuf> {
    list(dir, ARCHIVE_SUFFIX)
}

/// Recovers every `.part` file that no live writer holds (its lock is free: the process that
/// wrote it died) and renames it to a closed archive. Returns problems to report.
fn recover_parts(dir: &Path, live: &HashSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for part in list(dir, PART_SUFFIX) {
        let name = part
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let id = name.trim_end_matches(PART_SUFFIX).to_string();
        if live.contains(&id) {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&part)
        else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // a live recorder (maybe another process) is writing it
        }
        match recover_in_place(&part) {
            Ok(_) => {
                let to = free_archive_path(dir, &id);
                if let Err(e) = rename_durable(&part, &to) {
                    problems.push(format!("cannot rename recovered {}: {e}", part.display()));
                }
            }
            Err(FormatError::Io(e)) => {
                // e.g. the disk is still full: the valid prefix stays, recovery is tried
                // again at the next scan (retry interval, upload_pending, next start)
                problems.push(format!(
                    "cannot recover spool file {} now ({e}); it stays and is recovered at the \
                     next scan",
                    part.display()
                ));
            }
            Err(e) if std::fs::metadata(&part).is_ok_and(|m| m.len() == 0) => {
                // created, but not even a header was written: nothing to keep
                let _ = std::fs::remove_file(&part);
                problems.push(format!("removed empty spool file {} ({e})", part.display()));
            }
            Err(e) => {
                // no valid archive prefix at all: set it aside for inspection
                let aside = part.with_extension("part.unreadable");
                let _ = std::fs::rename(&part, &aside);
                problems.push(format!(
                    "spool file {} holds no recoverable archive ({e}); moved to {}",
                    part.display(),
                    aside.display()
                ));
            }
        }
        drop(file);
    }
    problems
}
