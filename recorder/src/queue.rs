//! What the hot path shares with the background writer: each session's queue (control records
//! and audio frames in call order), the doorbell through which a queue tells its writer thread
//! that there is work, the memory budget, and the per-session counters. The queue's lock is
//! held to push one message or to swap the whole queue out, never during I/O.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use calltape_format::{Record, TimedRecord};
use serde_json::Value;
use tokio::sync::watch;

use crate::clock::SessionClock;
use crate::report::FinishReport;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a queued message carries to the writer.
pub(crate) enum Payload {
    /// A control record (anything but audio), held inline: queuing it allocates nothing.
    Control(TimedRecord),
    /// An audio frame: `time_ns` is the capture time of its first sample.
    Audio {
        track: u16,
        time_ns: u64,
        samples: Vec<i16>,
    },
}

/// One message on its way to the writer, with the bytes it holds against the budget.
pub(crate) struct Msg {
    pub bytes: usize,
    pub payload: Payload,
}

/// Wakes one writer thread. A session rings it with its key when its queue gets work while the
/// writer is not looking at it (or at once, `urgent`, when the session finishes or someone
/// waits for it to drain); the writer takes the rung keys and sleeps on it in between.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    rung: Mutex<Vec<u64>>,
    /// The writer sleeps until rung (it has no session with work or open chunks).
    asleep: AtomicBool,
    closed: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Doorbell {
    /// Sets the thread that [`Doorbell::wait`]s on this bell (once, right after spawning it).
    pub(crate) fn attach(&self, thread: Thread) {
        let _ = self.thread.set(thread);
    }

    /// Tells the writer that session `key` has work. Unless `urgent`, a writer that is ticking
    /// anyway picks it up at its next tick; a sleeping writer is woken either way.
    pub(crate) fn ring(&self, key: u64, urgent: bool) {
        lock(&self.rung).push(key);
        if urgent || self.asleep.load(Ordering::SeqCst) {
            self.unpark();
        }
    }

    fn unpark(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// Moves the keys rung since the last call into `into`.
    pub(crate) fn take(&self, into: &mut Vec<u64>) {
        let mut rung = lock(&self.rung);
        if into.is_empty() {
            std::mem::swap(&mut *rung, into);
        } else {
            into.append(&mut rung);
        }
    }

    /// Writer side: sleeps until the next ring, or at most `timeout`.
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        match timeout {
            Some(d) => std::thread::park_timeout(d),
            None => {
                self.asleep.store(true, Ordering::SeqCst);
                if lock(&self.rung).is_empty() && !self.is_closed() {
                    std::thread::park();
                }
                self.asleep.store(false, Ordering::SeqCst);
            }
        }
    }

    /// No new sessions will come: the writer exits once its sessions are closed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.unpark();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

struct Pending {
    msgs: VecDeque<Msg>,
    /// Sample buffers the writer is done with, for the next audio frames (see [`Recycled`]).
    free_audio: Vec<Vec<i16>>,
    /// Records the writer is done with, dropped by the hot path (see [`Recycled`]).
    spent: Vec<TimedRecord>,
    control: usize,
    audio: usize,
    /// The writer looks at this queue without being rung (it is on the writer's active list,
    /// or its key is rung and waiting to be taken).
    scheduled: bool,
    /// The archive is closed: nothing more is accepted.
    closed: bool,
}

/// One session's queue: bounded (separately for control records and audio frames, so audio
/// never crowds out control records), in call order, and tied to its writer's doorbell.
pub(crate) struct SessionQueue {
    pending: Mutex<Pending>,
    control_cap: usize,
    audio_cap: usize,
    bell: Arc<Doorbell>,
    key: u64,
}

impl std::fmt::Debug for SessionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionQueue")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SessionQueue {
    /// A queue whose session is `key` on the writer behind `bell`. The writer thread gets
    /// the session itself separately and looks at its queue at once.
    pub(crate) fn new(control_cap: usize, audio_cap: usize, bell: Arc<Doorbell>, key: u64) -> Self {
        SessionQueue {
            pending: Mutex::new(Pending {
                msgs: VecDeque::new(),
                free_audio: Vec::new(),
                spent: Vec::new(),
                control: 0,
                audio: 0,
                scheduled: true,
                closed: false,
            }),
            control_cap,
            audio_cap,
            bell,
            key,
        }
    }

    /// The session's key on its writer thread.
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// Queues a control record, or gives it back when its part of the queue is full or the
    /// archive is closed. Rings the writer if it was not looking at this queue. Takes one
    /// record the writer is done with, for the caller to drop (see [`Recycled`]).
    #[inline]
    pub(crate) fn push_control(
        &self,
        bytes: usize,
        rec: TimedRecord,
    ) -> (Result<(), TimedRecord>, Option<TimedRecord>) {
        let (ring, spent) = {
            let mut p = lock(&self.pending);
            let spent = p.spent.pop();
            if p.closed || p.control >= self.control_cap {
                return (Err(rec), spent);
            }
            p.control += 1;
            p.msgs.push_back(Msg {
                bytes,
                payload: Payload::Control(rec),
            });
            (!std::mem::replace(&mut p.scheduled, true), spent)
        };
        if ring {
            self.bell.ring(self.key, false);
        }
        (Ok(()), spent)
    }

    /// Queues an audio frame (a copy of `samples`, made in a sample buffer the writer gave
    /// back, so a frame normally allocates nothing), or returns false when the audio part of
    /// the queue is full or the archive is closed. Rings the writer if it was not looking at
    /// this queue. Takes one record the writer is done with, for the caller to drop.
    #[inline]
    pub(crate) fn push_audio(
        &self,
        bytes: usize,
        track: u16,
        time_ns: u64,
        samples: &[i16],
    ) -> (bool, Option<TimedRecord>) {
        let (ring, spent) = {
            let mut p = lock(&self.pending);
            let spent = p.spent.pop();
            if p.closed || p.audio >= self.audio_cap {
                return (false, spent);
            }
            p.audio += 1;
            let mut buf = p.free_audio.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(samples);
            p.msgs.push_back(Msg {
                bytes,
                payload: Payload::Audio {
                    track,
                    time_ns,
                    samples: buf,
                },
            });
            (!std::mem::replace(&mut p.scheduled, true), spent)
        };
        if ring {
            self.bell.ring(self.key, false);
        }
        (true, spent)
    }

    /// Writer side: hands back what the writer is done with (see [`Recycled`]); what the
    /// pools do not keep is dropped here, after the lock is released.
    pub(crate) fn give_back(&self, r: &mut Recycled) {
        if r.audio.is_empty() && r.records.is_empty() {
            return;
        }
        {
            let mut p = lock(&self.pending);
            while p.free_audio.len() < AUDIO_POOL {
                match r.audio.pop() {
                    Some(b) => p.free_audio.push(b),
                    None => break,
                }
            }
            while p.spent.len() < SPENT_POOL {
                match r.records.pop() {
                    Some(rec) => p.spent.push(rec),
                    None => break,
                }
            }
        }
        r.audio.clear();
        r.records.clear();
    }

    /// What the pools hold now: buffers kept for audio frames, records not yet dropped.
    #[cfg(test)]
    pub(crate) fn pooled(&self) -> (usize, usize) {
        let p = lock(&self.pending);
        (p.free_audio.len(), p.spent.len())
    }

    /// Makes sure the writer looks at this session soon (`urgent`: now).
    pub(crate) fn nudge(&self, urgent: bool) {
        let was = std::mem::replace(&mut lock(&self.pending).scheduled, true);
        if !was || urgent {
            self.bell.ring(self.key, urgent);
        }
    }

    /// Writer side: moves every queued message into `into` (which must be empty; the queue
    /// keeps its allocation for the next messages).
    pub(crate) fn take(&self, into: &mut VecDeque<Msg>) {
        debug_assert!(into.is_empty());
        let mut p = lock(&self.pending);
        std::mem::swap(&mut p.msgs, into);
        p.control = 0;
        p.audio = 0;
    }

    /// Writer side: stops looking at this queue until the next push or nudge, if it is empty.
    pub(crate) fn unschedule_if_empty(&self) -> bool {
        let mut p = lock(&self.pending);
        if p.msgs.is_empty() {
            p.scheduled = false;
            true
        } else {
            false
        }
    }

    /// Writer side: refuses every later message, moves what is still queued into `into`, and
    /// frees the pools.
    pub(crate) fn close(&self, into: &mut VecDeque<Msg>) {
        let (audio, spent) = {
            let mut p = lock(&self.pending);
            p.closed = true;
            (
                std::mem::take(&mut p.free_audio),
                std::mem::take(&mut p.spent),
            )
        };
        drop((audio, spent));
        self.take(into);
    }
}

/// Sample buffers a session keeps for its next audio frames: enough for the frames of both
/// tracks that arrive between two looks of the writer.
const AUDIO_POOL: usize = 16;
/// Spent records waiting for the hot path to drop them.
const SPENT_POOL: usize = 64;
/// Larger sample buffers are freed by the writer, not kept (8 KiB: a 250 ms mono frame).
pub(crate) const POOLED_AUDIO_MAX: usize = 4096;
/// Larger records are dropped by the writer: dropping them would cost a record call time.
pub(crate) const SPENT_RECORD_MAX_BYTES: usize = 1024;

/// What the writer is done with, given back to the session's queue instead of freed on the
/// writer thread. Memory allocated by the thread that records and freed by a writer thread
/// makes both take the allocator's lock of the recording thread's arena (the recording
/// thread's own cache is always empty, the writer's always full), and a record call then
/// sleeps in the kernel while the writer frees. So the writer gives sample buffers back for
/// the next frames (a frame then allocates nothing), and spent records back for the
/// recording thread to drop one per call (its frees refill its own cache, from which its
/// next allocations come). Both pools are small and bounded; the writer frees the rest.
#[derive(Default)]
pub(crate) struct Recycled {
    pub audio: Vec<Vec<i16>>,
    pub records: Vec<TimedRecord>,
}

/// Bytes held by all sessions of a recorder (queued messages and the writers' open chunks),
/// against the memory budget.
#[derive(Debug)]
pub(crate) struct Budget {
    queued: AtomicUsize,
    limit: usize,
    audio_limit: usize,
}

impl Budget {
    /// Audio may fill the budget up to `limit - control_reserve`; control records may use it all.
    pub(crate) fn new(limit: usize, control_reserve: usize) -> Self {
        Budget {
            queued: AtomicUsize::new(0),
            limit,
            audio_limit: limit.saturating_sub(control_reserve),
        }
    }

    #[inline]
    pub(crate) fn try_reserve(&self, bytes: usize, control: bool) -> bool {
        let limit = if control {
            self.limit
        } else {
            self.audio_limit
        };
        let prev = self.queued.fetch_add(bytes, Ordering::Relaxed);
        if prev + bytes > limit {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            false
        } else {
            true
        }
    }

    /// Charges memory that is already held (the writer's open chunks): never refused, so it
    /// can go over the limit, and then audio is dropped until it is back under.
    pub(crate) fn charge(&self, bytes: usize) {
        self.queued.fetch_add(bytes, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn release(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// One audio track of a session, as the hot path and the writer see it.
#[derive(Debug)]
pub(crate) struct TrackSlot {
    pub id: u16,
    pub channels: u8,
    pub sample_rate: u32,
    /// What a `dropped` record names: `audio:user`, `audio:agent`, …
    pub label: String,
    /// Samples (per channel) dropped and not yet reported in a `dropped` record.
    pub dropped_pending: AtomicU64,
    pub dropped_total: AtomicU64,
}

/// Lifecycle of a session, as [`crate::SessionStatus`] reports it.
pub(crate) const STATE_RECORDING: u8 = 0;
pub(crate) const STATE_FINISHING: u8 = 1;
pub(crate) const STATE_FINISHED: u8 = 2;

/// Per-session state shared by the hot path, the writer thread and the recorder's registry.
#[derive(Debug)]
pub(crate) struct SessionCore {
    pub id: Arc<str>,
    pub clock: SessionClock,
    pub tracks: Box<[TrackSlot]>,
    pub budget: Arc<Budget>,
    /// Control records dropped (queue or budget full) and not yet reported.
    pub dropped_records_pending: AtomicU64,
    pub dropped_records_total: AtomicU64,
    /// The spool file failed: records are counted and dropped at once.
    pub degraded: AtomicBool,
    /// The spool file could not be created yet: records still reach the writer, which
    /// counts and drops them until it can create the file.
    pub waiting_for_spool: AtomicBool,
    pub state: std::sync::atomic::AtomicU8,
    /// Messages accepted by the queues.
    pub enqueued: AtomicU64,
    pub records_written: AtomicU64,
    pub error: Mutex<Option<String>>,
    /// Messages the writer has taken off the queue (for `Session::drained`).
    pub processed: watch::Sender<u64>,
    /// Records and audio on their way to the writer.
    pub queue: SessionQueue,
    /// Every `Session` handle is gone: the writer closes the archive.
    pub detached: AtomicBool,
    /// `session_end` reason used when the agent recorded none.
    pub default_end_reason: Mutex<Option<String>>,
    /// Set once the archive is closed and uploaded (or left in the spool).
    pub report: watch::Sender<Option<FinishReport>>,
    /// When the session was asked to finish (or lost its last handle): the upload deadline
    /// counts from here, not from when an upload slot frees up.
    pub finish_requested: OnceLock<tokio::time::Instant>,
}

impl SessionCore {
    /// Asks the session's writer to close the archive (if it is still recording) and wakes it.
    pub(crate) fn begin_finishing(&self) {
        let _ = self.state.compare_exchange(
            STATE_RECORDING,
            STATE_FINISHING,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.finish_requested.get_or_init(tokio::time::Instant::now);
        self.queue.nudge(true);
    }

    /// The last `Session` handle is gone: tells the writer at once.
    pub(crate) fn detach(&self) {
        self.finish_requested.get_or_init(tokio::time::Instant::now);
        self.detached.store(true, Ordering::Release);
        self.queue.nudge(true);
    }

    pub(crate) fn new(
        id: Arc<str>,
        clock: SessionClock,
        tracks: Box<[TrackSlot]>,
        budget: Arc<Budget>,
        queue: SessionQueue,
    ) -> Self {
        SessionCore {
            id,
            clock,
            tracks,
            budget,
            dropped_records_pending: AtomicU64::new(0),
            dropped_records_total: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            waiting_for_spool: AtomicBool::new(false),
            state: std::sync::atomic::AtomicU8::new(STATE_RECORDING),
            enqueued: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            error: Mutex::new(None),
            processed: watch::Sender::new(0),
            queue,
            detached: AtomicBool::new(false),
            default_end_reason: Mutex::new(None),
            report: watch::Sender::new(None),
            finish_requested: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn drop_records(&self, n: u64) {
        self.dropped_records_pending.fetch_add(n, Ordering::Relaxed);
        self.dropped_records_total.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn accepts(&self) -> bool {
        self.state.load(Ordering::Relaxed) == STATE_RECORDING
            && !self.degraded.load(Ordering::Relaxed)
    }

    pub(crate) fn track(&self, id: u16) -> Option<&TrackSlot> {
        self.tracks.get(usize::from(id).checked_sub(1)?)
    }

    /// Stores the first error of the session; returns true if it was the first.
    pub(crate) fn set_error(&self, msg: String) -> bool {
        let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if e.is_none() {
            *e = Some(msg);
            true
        } else {
            false
        }
    }

    pub(crate) fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Approximate heap bytes a queued record holds (charged against the memory budget).
pub(crate) fn record_bytes(r: &Record) -> usize {
    const BASE: usize = 192;
    BASE + match r {
        Record::TurnStart(x) => map_bytes(&x.attributes),
        Record::TurnEnd(x) => map_bytes(&x.attributes),
        Record::Transcript(x) => {
            x.text.len() + x.heard_text.as_ref().map_or(0, String::len) + map_bytes(&x.attributes)
        }
        Record::StageTiming(x) => map_bytes(&x.attributes),
        Record::ToolCall(x) => {
            x.name.len()
                + value_bytes(&x.arguments)
                + value_bytes(&x.output)
                + map_bytes(&x.attributes)
        }
        Record::StateSnapshot(x) => x.scope.len() + value_bytes(&x.value),
        Record::Event(x) => x.name.len() + map_bytes(&x.attributes),
        Record::Log(x) => x.message.len() + x.target.len() + map_bytes(&x.fields),
        Record::Audio(a) => 2 * a.samples.len(),
        Record::Unknown { payload, .. } => payload.len(),
        Record::Usage(_) | Record::Dropped(_) | Record::SessionEnd(_) => 0,
    }
}

fn map_bytes(m: &serde_json::Map<String, Value>) -> usize {
    if m.is_empty() {
        0
    } else {
        48 + m
            .iter()
            .map(|(k, v)| k.len() + value_bytes(v))
            .sum::<usize>()
    }
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => 24 + a.iter().map(value_bytes).sum::<usize>(),
        Value::Object(m) => map_bytes(m),
        _ => 16,
    }
}

/// Bytes an audio message holds against the budget.
pub(crate) fn audio_bytes(samples: usize) -> usize {
    64 + 2 * samples
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltape_format::{Event, Usage};

    fn queue() -> SessionQueue {
        SessionQueue::new(8, 8, Arc::new(Doorbell::default()), 1)
    }

    fn event(n: u64) -> TimedRecord {
        TimedRecord::new(
            n,
            Record::Event(Event {
                turn: None,
                name: format!("e{n}"),
                attributes: Default::default(),
            }),
        )
    }

    #[test]
    fn an_audio_frame_reuses_a_buffer_the_writer_gave_back() {
        let q = queue();
        assert!(q.push_audio(64, 1, 0, &[1, 2, 3]).0);
        let mut batch = VecDeque::new();
        q.take(&mut batch);
        let Some(Msg {
            payload: Payload::Audio { samples, .. },
            ..
        }) = batch.pop_front()
        else {
            panic!("an audio message")
        };
        assert_eq!(samples, [1, 2, 3]);
        let given = samples.as_ptr();
        let mut r = Recycled::default();
        r.audio.push(samples);
        q.give_back(&mut r);
        assert!(r.audio.is_empty());
        assert_eq!(q.pooled(), (1, 0));
        assert!(q.push_audio(64, 1, 60, &[4, 5]).0);
        assert_eq!(q.pooled(), (0, 0));
        q.take(&mut batch);
        match batch.pop_front().map(|m| m.payload) {
            Some(Payload::Audio { samples, .. }) => {
                assert_eq!(samples, [4, 5]);
                assert_eq!(samples.as_ptr(), given, "the buffer given back was reused");
            }
            _ => panic!("an audio message"),
        }
    }

    #[test]
    fn spent_records_go_to_the_next_calls_and_the_pools_stay_bounded() {
        let q = queue();
        let mut r = Recycled::default();
        r.records.extend((0..SPENT_POOL as u64 + 10).map(event));
        r.audio
            .extend((0..AUDIO_POOL + 10).map(|_| Vec::with_capacity(320)));
        q.give_back(&mut r);
        assert_eq!(q.pooled(), (AUDIO_POOL, SPENT_POOL));
        assert!(r.records.is_empty() && r.audio.is_empty());
        // every call hands one spent record back to its caller, whether it is queued or not
        let (queued, spent) =
            q.push_control(192, TimedRecord::new(1, Record::Usage(Usage::default())));
        assert!(queued.is_ok());
        assert!(spent.is_some());
        assert_eq!(q.pooled(), (AUDIO_POOL, SPENT_POOL - 1));
        let (queued, spent) = q.push_audio(64, 1, 0, &[0; 320]);
        assert!(queued && spent.is_some());
        assert_eq!(q.pooled(), (AUDIO_POOL - 1, SPENT_POOL - 2));
        // closing frees both pools
        let mut left = VecDeque::new();
        q.close(&mut left);
        assert_eq!(left.len(), 2);
        assert_eq!(q.pooled(), (0, 0));
        let (queued, _) = q.push_control(192, event(9));
        assert!(queued.is_err(), "a closed queue refuses records");
    }
}
