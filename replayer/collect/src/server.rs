//! The collector's lifecycle: start (open the spool and destination, take back recordings
//! staged before a restart), serve the routes (`routes`), the sweeper that closes due
//! sessions, assembly on a bounded number of blocking workers, uploads through the recorder
//! (one pass at a time, so each session learns its key), and graceful shutdown (stop
//! accepting, write every open session, upload within the deadline).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use calltape_recorder::{validate_session_id, Recorder, UploadReport};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::assemble::{assemble, Assembled};
use crate::auth::Credentials;
use crate::limits::Limits;
use crate::recording;
use crate::routes;
use crate::sessions::{CloseReason, Pending, Sessions};
use crate::status::{Counters, StatusEvent, StatusSink};

/// Folder of the spool holding staged recording uploads, one sub-folder per session id.
const INBOX: &str = "collect-inbox";
/// How often due sessions and failed uploads are looked at.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
const RETRY_UPLOADS_EVERY: Duration = Duration::from_secs(60);

/// Everything `calltape collect` is started with.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub credentials: Credentials,
    /// Where archives go (`s3://bucket/prefix`, `file:///dir`, …; see calltape-recorder).
    pub destination: String,
    pub spool: PathBuf,
    pub limits: Limits,
    pub status: StatusSink,
    /// How long shutdown may take to write and upload what is open.
    pub shutdown_deadline: Duration,
}

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Recorder(#[from] calltape_recorder::RecorderError),
    #[error("creating {path}: {source}")]
    Inbox {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What shutdown did.
#[derive(Debug, Clone, Default)]
pub struct StopReport {
    pub sessions_written: u64,
    pub sessions_failed: u64,
    /// Archives still waiting in the spool (upload failed or out of time).
    pub left_in_spool: usize,
}

/// What the routes and the lifecycle share.
pub(crate) struct Shared {
    pub(crate) config: CollectorConfig,
    pub(crate) sessions: Sessions,
    pub(crate) recorder: Recorder,
    pub(crate) counters: Counters,
    pub(crate) inbox: PathBuf,
    assembly: Semaphore,
    /// One upload pass at a time, so every report reaches the session that waits for it.
    uploads: tokio::sync::Mutex<Vec<UploadReport>>,
    jobs: TaskTracker,
    pub(crate) closing: AtomicBool,
}

/// A running collector (cheap to clone).
#[derive(Clone)]
pub struct Collector {
    shared: Arc<Shared>,
}

impl Collector {
    /// Opens the spool and the destination, and takes back recordings staged before a
    /// restart (they are written after the linger, like new ones).
    pub async fn start(config: CollectorConfig) -> Result<Collector, StartError> {
        let recorder = Recorder::builder()
            .destination(config.destination.clone())
            .spool_dir(&config.spool)
            .upload_on_start(false)
            .retry_interval(None)
            .build()
            .await?;
        let inbox = config.spool.join(INBOX);
        std::fs::create_dir_all(&inbox).map_err(|source| StartError::Inbox {
            path: inbox.display().to_string(),
            source,
        })?;
        let shared = Arc::new(Shared {
            sessions: Sessions::new(config.limits.clone()),
            assembly: Semaphore::new(config.limits.assembly_workers.max(1)),
            recorder,
            counters: Counters::default(),
            inbox,
            uploads: tokio::sync::Mutex::new(Vec::new()),
            jobs: TaskTracker::new(),
            closing: AtomicBool::new(false),
            config,
        });
        let c = Collector { shared };
        c.recover_inbox();
        // archives a previous run left in the spool
        let pending = c.clone();
        c.shared.jobs.spawn(async move {
            pending.upload_pass().await;
        });
        Ok(c)
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        routes::router(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting, writes every
    /// open session and uploads within the shutdown deadline.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<StopReport> {
        let addr = listener.local_addr()?;
        let cfg = &self.shared.config;
        tracing::info!(%addr, destination = %cfg.destination, spool = %cfg.spool.display(), "collector listening");
        cfg.status.emit(&StatusEvent::Listening {
            addr: addr.to_string(),
            destination: cfg.destination.clone(),
            spool: cfg.spool.display().to_string(),
        });
        let sweeper = tokio::spawn(self.clone().sweep());
        let app = self.router();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        sweeper.abort();
        Ok(self.stop().await)
    }

    /// Closes every open session, waits for the writes and uploads (within the deadline).
    pub async fn stop(&self) -> StopReport {
        let s = &self.shared;
        s.closing.store(true, Ordering::Relaxed);
        let until = Instant::now() + s.config.shutdown_deadline;
        let open = s.sessions.take_all();
        tracing::info!(
            sessions = open.len(),
            "shutting down: writing open sessions"
        );
        for p in open {
            let why = if p.recording.is_some() {
                CloseReason::Recording
            } else {
                CloseReason::Shutdown
            };
            self.spawn_close(p, why);
        }
        s.jobs.close();
        if tokio::time::timeout_at(until.into(), s.jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown deadline passed with sessions still being written; they stay in the spool and are uploaded on the next start");
        }
        let left = s
            .recorder
            .shutdown(until.saturating_duration_since(Instant::now()))
            .await;
        let left_in_spool = left.pending.iter().filter(|r| !r.is_uploaded()).count();
        let report = StopReport {
            sessions_written: s.counters.sessions_written.load(Ordering::Relaxed),
            sessions_failed: s.counters.sessions_failed.load(Ordering::Relaxed),
            left_in_spool,
        };
        s.config.status.emit(&StatusEvent::Stopped {
            sessions_written: report.sessions_written,
            sessions_failed: report.sessions_failed,
            left_in_spool,
        });
        report
    }

    async fn sweep(self) {
        let mut last_retry = Instant::now();
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            for (p, why) in self.shared.sessions.take_due(Instant::now()) {
                self.spawn_close(p, why);
            }
            if last_retry.elapsed() >= RETRY_UPLOADS_EVERY {
                last_retry = Instant::now();
                let c = self.clone();
                self.shared.jobs.spawn(async move {
                    c.upload_pass().await;
                });
            }
        }
    }

    fn spawn_close(&self, p: Pending, why: CloseReason) {
        let c = self.clone();
        self.shared
            .jobs
            .spawn(async move { c.close_session(p, why).await });
    }

    /// Writes one session to the spool and uploads it.
    async fn close_session(&self, p: Pending, why: CloseReason) {
        let s = &self.shared;
        let Ok(_permit) = s.assembly.acquire().await else {
            return;
        };
        let id = p.session_id.clone();
        let staged = p.recording.as_ref().map(|r| r.dir.clone());
        let spool = s.config.spool.clone();
        let written = tokio::task::spawn_blocking(move || assemble(p, why, &spool)).await;
        let a: Assembled = match written {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return self.failed(&id, why, e.to_string()),
            Err(e) => return self.failed(&id, why, format!("the assembly task failed: {e}")),
        };
        drop(_permit);
        // the archive is durable in the spool: the staged upload is no longer needed
        if let Some(dir) = staged {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        let report = self.upload_and_find(&id).await;
        let (key, uploaded) = match &report {
            Some(r) => (r.key.clone(), r.is_uploaded()),
            None => (String::new(), false),
        };
        Counters::add(&s.counters.sessions_written, 1);
        let o = &a.outcome;
        let rate = o.summary.header.tracks.first().map_or(0, |t| t.sample_rate);
        let audio_seconds = if rate > 0 {
            o.audio_frames as f64 / f64::from(rate)
        } else {
            0.0
        };
        tracing::info!(session_id = %id, reason = why.as_str(), %key, uploaded,
            turns = o.summary.totals.turns, spans = a.spans, logs = a.logs,
            warnings = o.warnings.len(), archive = %a.path.display(), "session written");
        s.config.status.emit(&StatusEvent::SessionWritten {
            session_id: id,
            reason: why.as_str(),
            key,
            uploaded,
            turns: u64::from(o.summary.totals.turns),
            spans: a.spans,
            logs: a.logs,
            warnings: o.warnings.len(),
            audio_seconds,
        });
    }

    fn failed(&self, id: &str, why: CloseReason, error: String) {
        Counters::add(&self.shared.counters.sessions_failed, 1);
        tracing::error!(session_id = %id, reason = why.as_str(), %error, "session could not be written; its staged upload is kept in the spool inbox");
        self.shared.config.status.emit(&StatusEvent::SessionFailed {
            session_id: id.into(),
            reason: why.as_str(),
            error,
        });
    }

    /// Runs an upload pass and returns the report about `id` (from this pass or an earlier
    /// one that uploaded it).
    async fn upload_and_find(&self, id: &str) -> Option<UploadReport> {
        let mut seen = self.shared.uploads.lock().await;
        if let Some(i) = seen.iter().position(|r| r.session_id == id) {
            return Some(seen.swap_remove(i));
        }
        seen.extend(self.shared.recorder.upload_pending().await);
        let found = seen
            .iter()
            .position(|r| r.session_id == id)
            .map(|i| seen.swap_remove(i));
        // keep only what someone may still ask for (bounded by the open sessions)
        let keep = self.shared.config.limits.max_sessions;
        if seen.len() > keep {
            let extra = seen.len() - keep;
            seen.drain(..extra);
        }
        found
    }

    async fn upload_pass(&self) {
        let mut seen = self.shared.uploads.lock().await;
        let reports = self.shared.recorder.upload_pending().await;
        for r in &reports {
            if !r.is_uploaded() {
                tracing::warn!(session_id = %r.session_id, outcome = ?r.outcome, "archive not uploaded yet; retried later");
            }
        }
        seen.extend(reports);
        let keep = self.shared.config.limits.max_sessions;
        if seen.len() > keep {
            let extra = seen.len() - keep;
            seen.drain(..extra);
        }
    }

    /// Staged recordings left by a previous run become open sessions again; archives it was
    /// assembling when it stopped are dropped (they are made again from the inbox).
    fn recover_inbox(&self) {
        if let Ok(rd) = std::fs::read_dir(&self.shared.config.spool) {
            for e in rd.flatten() {
                let p = e.path();
                if p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(crate::assemble::ASSEMBLING))
                {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        let Ok(rd) = std::fs::read_dir(&self.shared.inbox) else {
            return;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
                continue;
            };
            if name.starts_with(".incoming-") {
                // an upload cut off by the crash: it was never acknowledged
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if validate_session_id(&name).is_err() {
                continue;
            }
            match recording::load_staged(&path, &name) {
                Some(rec) => {
                    tracing::info!(session_id = %name, "recovered a staged recording from a previous run");
                    if let Err(e) = self.shared.sessions.add_recording(rec) {
                        tracing::warn!(session_id = %name, error = %e, "cannot reopen a staged recording now; it stays in the inbox");
                    }
                }
                None => {
                    tracing::warn!(path = %path.display(), "a staged recording without a readable header is left in the inbox")
                }
            }
        }
    }

    pub fn counters(&self) -> serde_json::Value {
        self.shared.counters.snapshot()
    }
}

/// The spool's inbox folder (for tests and tools).
pub fn inbox_of(spool: &Path) -> PathBuf {
    spool.join(INBOX)
}
