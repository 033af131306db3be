//! What the hot path shares with the background writer: the bounded queues' messages, the
//! memory budget, and the per-session counters (all atomics; the only locks here are taken
//! once per error or per status read, never by I/O).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use calltape_format::{Record, TimedRecord};
use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::clock::SessionClock;
use crate::report::FinishReport;

/// A control record on its way to the writer, with the bytes it holds against the budget.
pub(crate) struct ControlMsg {
    pub bytes: usize,
    pub rec: Box<TimedRecord>,
}

/// An audio frame on its way to the writer: `time_ns` is the capture time of its first sample.
pub(crate) struct AudioMsg {
    pub bytes: usize,
    pub track: u16,
    pub time_ns: u64,
    pub samples: Vec<i16>,
}

/// Bytes queued by all sessions of a recorder, against the memory budget.
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

/// Per-session state shared by the hot path, the writer task and the recorder's registry.
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
    pub state: std::sync::atomic::AtomicU8,
    /// Messages accepted by the queues.
    pub enqueued: AtomicU64,
    pub records_written: AtomicU64,
    pub error: Mutex<Option<String>>,
    /// Messages the writer has taken off the queues (for `Session::drained`).
    pub processed: watch::Sender<u64>,
    /// Wakes the writer (finish requested, or the last handle dropped).
    pub wake: Notify,
    /// `session_end` reason used when the agent recorded none.
    pub default_end_reason: Mutex<Option<String>>,
    /// Set once the archive is closed and uploaded (or left in the spool).
    pub report: watch::Sender<Option<FinishReport>>,
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
        self.wake.notify_one();
    }

    pub(crate) fn new(
        id: Arc<str>,
        clock: SessionClock,
        tracks: Box<[TrackSlot]>,
        budget: Arc<Budget>,
    ) -> Self {
        SessionCore {
            id,
            clock,
            tracks,
            budget,
            dropped_records_pending: AtomicU64::new(0),
            dropped_records_total: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            state: std::sync::atomic::AtomicU8::new(STATE_RECORDING),
            enqueued: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            error: Mutex::new(None),
            processed: watch::Sender::new(0),
            wake: Notify::new(),
            default_end_reason: Mutex::new(None),
            report: watch::Sender::new(None),
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
