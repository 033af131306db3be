//! The writer threads: a small fixed set of threads serving every session of a recorder.
//! Each session belongs to one thread. Its queue rings that thread's doorbell when work
//! arrives while the thread is not looking at it (and at once when the session finishes). A
//! thread with sessions that have queued records or open chunks wakes every tick to write
//! them, close the chunks each session's clock has passed, and then sync every file that got
//! chunks (one sync per file per tick); with nothing to do it sleeps until rung. A closed
//! archive is handed to the session's `on_closed` callback, which uploads it.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calltape_format::Header;

use crate::queue::{Doorbell, SessionCore};
use crate::spool::{Closed, SpoolSettings, SpoolWriter, PART_SUFFIX};

/// Called on the writer thread once a session's archive is closed (or could not be).
pub(crate) type OnClosed = Box<dyn FnOnce(Closed) + Send>;

/// A session handed to its writer thread.
pub(crate) struct NewSession {
    pub core: Arc<SessionCore>,
    pub header: Header,
    pub on_closed: OnClosed,
}

/// Which writer thread serves a new session, and the session's key on it.
pub(crate) struct Assignment {
    thread: usize,
    pub bell: Arc<Doorbell>,
    pub key: u64,
}

struct WriterThread {
    bell: Arc<Doorbell>,
    arrivals: Sender<NewSession>,
    sessions: Arc<AtomicUsize>,
}

/// The recorder's writer threads. Dropping the pool lets each thread exit once its last
/// session is closed.
pub(crate) struct WriterPool {
    threads: Vec<WriterThread>,
    next_key: AtomicU64,
}

impl WriterPool {
    /// Starts `threads` writer threads that look at their busy sessions every `tick`.
    pub(crate) fn start(
        settings: Arc<SpoolSettings>,
        threads: usize,
        tick: Duration,
    ) -> std::io::Result<WriterPool> {
        let mut pool = WriterPool {
            threads: Vec::new(),
            next_key: AtomicU64::new(1),
        };
        for n in 0..threads.max(1) {
            let bell = Arc::new(Doorbell::default());
            let sessions = Arc::new(AtomicUsize::new(0));
            let (arrivals, rx) = channel();
            let worker = Worker {
                settings: settings.clone(),
                bell: bell.clone(),
                arrivals: rx,
                load: sessions.clone(),
                tick,
                sessions: HashMap::new(),
                active: Vec::new(),
                rung: Vec::new(),
                to_sync: Vec::new(),
                ticks: 0,
                spool_fs: std::fs::File::open(&settings.dir).ok(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("calltape-writer-{n}"))
                .spawn(move || worker.run())?;
            bell.attach(handle.thread().clone());
            pool.threads.push(WriterThread {
                bell,
                arrivals,
                sessions,
            });
        }
        Ok(pool)
    }

    /// Picks the thread with the fewest sessions for a new one.
    pub(crate) fn assign(&self) -> Assignment {
        let (thread, t) = self
            .threads
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| t.sessions.load(Ordering::Relaxed))
            .expect("the pool has at least one thread");
        Assignment {
            thread,
            bell: t.bell.clone(),
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Hands a session to the thread it was assigned to; it opens the spool file there.
    pub(crate) fn add(&self, at: Assignment, session: NewSession) {
        let t = &self.threads[at.thread];
        t.sessions.fetch_add(1, Ordering::Relaxed);
        if let Err(lost) = t.arrivals.send(session) {
            // the thread is gone (it cannot be, short of a bug): say so instead of hanging
            t.sessions.fetch_sub(1, Ordering::Relaxed);
            let s = lost.0;
            (s.on_closed)(Closed::Nothing {
                reason: "the spool writer thread stopped; nothing was recorded".into(),
                path: None,
            });
            return;
        }
        t.bell.ring(at.key, true);
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        for t in &self.threads {
            t.bell.close();
        }
    }
}

struct Entry {
    writer: SpoolWriter,
    on_closed: Option<OnClosed>,
    /// On the active list: looked at every tick.
    active: bool,
    /// The tick it was last looked at (a key can sit on the active list twice).
    tick: u64,
}

/// What a look at one session decided.
enum Next {
    /// Still busy: look again next tick.
    Busy,
    /// Nothing queued, nothing due: wait for its queue to ring.
    Idle,
    /// The archive is closed and the session gone from this thread.
    Closed,
}

struct Worker {
    settings: Arc<SpoolSettings>,
    bell: Arc<Doorbell>,
    arrivals: Receiver<NewSession>,
    load: Arc<AtomicUsize>,
    tick: Duration,
    sessions: HashMap<u64, Entry>,
    /// Sessions looked at every tick (may hold keys of idle or closed sessions; skipped).
    active: Vec<u64>,
    rung: Vec<u64>,
    to_sync: Vec<u64>,
    ticks: u64,
    /// The spool directory, open for `syncfs` (None if it cannot be opened: files are synced
    /// one by one).
    spool_fs: Option<std::fs::File>,
}

impl Worker {
    fn run(mut self) {
        let mut next_tick = Instant::now();
        loop {
            // arrivals before and after taking the rung keys: a session is always sent before
            // its first ring, so every rung key is known once both are done
            self.admit();
            self.bell.take(&mut self.rung);
            self.admit();
            let now = Instant::now();
            let due = now >= next_tick;
            let rung = std::mem::take(&mut self.rung);
            for &key in &rung {
                self.activate(key);
            }
            if due {
                next_tick = now + self.tick;
                self.ticks += 1;
                let keys = std::mem::take(&mut self.active);
                for key in keys {
                    match self.sessions.get_mut(&key) {
                        Some(e) if e.active && e.tick != self.ticks => e.tick = self.ticks,
                        _ => continue,
                    }
                    if let Next::Busy = self.look_at(key) {
                        self.active.push(key);
                    }
                }
            } else {
                // rung early (a session finishing, someone waiting for a drain): only those
                for &key in &rung {
                    self.look_at(key);
                }
            }
            self.rung = rung;
            self.rung.clear();
            self.sync_written();
            if self.sessions.is_empty() && self.bell.is_closed() {
                self.admit();
                if self.sessions.is_empty() {
                    return;
                }
            }
            if self.active.is_empty() {
                self.bell.wait(None);
            } else {
                self.bell
                    .wait(Some(next_tick.saturating_duration_since(Instant::now())));
            }
        }
    }

    fn admit(&mut self) {
        while let Ok(s) = self.arrivals.try_recv() {
            let key = s.core.queue.key();
            let settings = self.settings.clone();
            let (core, header) = (s.core.clone(), s.header);
            let writer = match catch_unwind(AssertUnwindSafe(|| {
                SpoolWriter::open(settings, core, header)
            })) {
                Ok(w) => w,
                Err(_) => {
                    self.load.fetch_sub(1, Ordering::Relaxed);
                    (s.on_closed)(writer_panicked(&s.core, &self.settings));
                    continue;
                }
            };
            self.sessions.insert(
                key,
                Entry {
                    writer,
                    on_closed: Some(s.on_closed),
                    active: false,
                    tick: 0,
                },
            );
            self.activate(key);
        }
    }

    fn activate(&mut self, key: u64) {
        if let Some(e) = self.sessions.get_mut(&key) {
            if !e.active {
                e.active = true;
                self.active.push(key);
            }
        }
    }

    /// Writes what a session has queued and closes its archive if it is finishing.
    fn look_at(&mut self, key: u64) -> Next {
        let Some(e) = self.sessions.get_mut(&key) else {
            return Next::Closed;
        };
        let step = catch_unwind(AssertUnwindSafe(|| {
            e.writer.pump();
            if e.writer.is_finishing() {
                Next::Closed
            } else if e.writer.is_idle() && e.writer.core().queue.unschedule_if_empty() {
                Next::Idle
            } else {
                Next::Busy
            }
        }));
        match step {
            Ok(Next::Busy) => {
                if e.writer.needs_sync() {
                    self.to_sync.push(key);
                }
                Next::Busy
            }
            Ok(Next::Idle) => {
                e.active = false;
                if e.writer.needs_sync() {
                    self.to_sync.push(key);
                }
                Next::Idle
            }
            Ok(Next::Closed) => {
                self.close(key, false);
                Next::Closed
            }
            Err(_) => {
                self.close(key, true);
                Next::Closed
            }
        }
    }

    fn close(&mut self, key: u64, panicked: bool) {
        let Some(mut e) = self.sessions.remove(&key) else {
            return;
        };
        self.load.fetch_sub(1, Ordering::Relaxed);
        let core = e.writer.core().clone();
        let closed = if panicked {
            // the writer's state is suspect: drop it without writing more
            let w = e.writer;
            let _ = catch_unwind(AssertUnwindSafe(move || w.abandon()));
            writer_panicked(&core, &self.settings)
        } else {
            let w = e.writer;
            catch_unwind(AssertUnwindSafe(move || w.close()))
                .unwrap_or_else(|_| writer_panicked(&core, &self.settings))
        };
        if let Some(f) = e.on_closed.take() {
            // it only hands the archive to the uploads; never let it take the thread down
            let _ = catch_unwind(AssertUnwindSafe(move || f(closed)));
        }
    }

    /// Group commit: the files that got chunks this tick are made durable together, with one
    /// `syncfs` of the spool's filesystem when there are several (one journal commit instead
    /// of one per file), else with the file's own `fdatasync`. If `syncfs` fails (or is not
    /// available), each file is synced on its own, which reports the failing file.
    fn sync_written(&mut self) {
        let keys = std::mem::take(&mut self.to_sync);
        let together = keys.len() >= 2 && self.spool_fs.as_ref().is_some_and(sync_filesystem);
        for &key in &keys {
            if let Some(e) = self.sessions.get_mut(&key) {
                if together {
                    e.writer.synced_with_filesystem();
                } else {
                    e.writer.sync();
                }
            }
        }
        self.to_sync = keys;
        self.to_sync.clear();
    }
}

/// `syncfs(2)` of the filesystem `dir` is on: every file's written data and metadata reach
/// the disk, in one journal commit. Linux only; elsewhere `false` (files are synced one by
/// one). Since Linux 5.8 it reports writeback errors of the filesystem; on a failure the
/// caller syncs each file on its own, which names the file that failed.
#[cfg(target_os = "linux")]
fn sync_filesystem(dir: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
    unsafe { libc::syncfs(dir.as_raw_fd()) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(_dir: &std::fs::File) -> bool {
    false
}

/// The outcome for a session whose writer panicked (a bug): reported once; its spool file
/// stays for recovery on the next start.
fn writer_panicked(core: &SessionCore, settings: &SpoolSettings) -> Closed {
    core.degraded.store(true, Ordering::Relaxed);
    let mut left = VecDeque::new();
    core.queue.close(&mut left);
    for msg in left.drain(..) {
        core.budget.release(msg.bytes);
        core.drop_records(1);
    }
    let path = settings.dir.join(format!("{}{PART_SUFFIX}", core.id));
    let reason = format!(
        "the spool writer of this session failed unexpectedly; {} is recovered and uploaded on \
         the next start",
        path.display()
    );
    if core.set_error(reason.clone()) {
        settings.issues.report(Some(&core.id), reason.clone());
    }
    Closed::Nothing {
        reason,
        path: Some(path),
    }
}
