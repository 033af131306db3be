//! Sessions being collected: the telemetry and the recording of each call, keyed by job id,
//! until the call is complete. Bounded: at most `max_sessions` open, at most
//! `session_telemetry` bytes of telemetry each and `total_telemetry` in all. A session is
//! due once its recording has been in for `linger` (the agent flushes its last spans after
//! the upload), or `session_timeout` after its last telemetry when no recording comes.
//! Telemetry for a session already written is dropped and counted, never reopened into a
//! second archive.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::limits::Limits;
use crate::otlp::{LogRecord, SpanRecord};
use crate::recording::StagedRecording;

/// How many closed session ids are remembered (to drop their late telemetry).
const CLOSED_MEMORY: usize = 10_000;

/// Why a session was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its recording arrived (and the linger passed).
    Recording,
    /// No recording came within the session timeout.
    Timeout,
    /// The collector is shutting down.
    Shutdown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Recording => "recording",
            CloseReason::Timeout => "timeout",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// What arrived for one session.
#[derive(Debug)]
pub struct Pending {
    pub session_id: String,
    pub spans: Vec<SpanRecord>,
    pub logs: Vec<LogRecord>,
    pub recording: Option<StagedRecording>,
    /// Telemetry bytes held.
    pub bytes: usize,
    /// Spans and logs dropped over the per-session budget.
    pub dropped: u64,
    last_telemetry: Instant,
    recording_at: Option<Instant>,
}

impl Pending {
    fn new(session_id: &str, now: Instant) -> Pending {
        Pending {
            session_id: session_id.into(),
            spans: Vec::new(),
            logs: Vec::new(),
            recording: None,
            bytes: 0,
            dropped: 0,
            last_telemetry: now,
            recording_at: None,
        }
    }
}

/// Why telemetry or a recording was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Full {
    Sessions(usize),
    Telemetry(usize),
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Sessions(n) => write!(f, "{n} sessions are open, the most this collector holds"),
            Full::Telemetry(n) => write!(
                f,
                "{n} bytes of telemetry are held, the most this collector holds"
            ),
        }
    }
}

/// What happened to a batch of telemetry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub kept: usize,
    /// Over the session's budget.
    pub dropped: usize,
    /// For a session already written.
    pub late: usize,
}

#[derive(Default)]
struct Table {
    open: HashMap<String, Pending>,
    closed: HashSet<String>,
    closed_order: VecDeque<String>,
    total_bytes: usize,
}

pub struct Sessions {
    table: Mutex<Table>,
    limits: Limits,
}

/// Telemetry items that know their size.
pub trait Weighed {
    fn size(&self) -> usize;
}
impl Weighed for SpanRecord {
    fn size(&self) -> usize {
        self.size
    }
}
impl Weighed for LogRecord {
    fn size(&self) -> usize {
        self.size
    }
}

impl Sessions {
    pub fn new(limits: Limits) -> Sessions {
        Sessions {
            table: Mutex::new(Table::default()),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn open_count(&self) -> usize {
        self.lock().open.len()
    }

    pub fn telemetry_bytes(&self) -> usize {
        self.lock().total_bytes
    }

    pub fn add_spans(&self, id: &str, spans: Vec<SpanRecord>) -> Result<Taken, Full> {
        self.add(id, spans, |p| &mut p.spans)
    }

    pub fn add_logs(&self, id: &str, logs: Vec<LogRecord>) -> Result<Taken, Full> {
        self.add(id, logs, |p| &mut p.logs)
    }

    fn add<T: Weighed>(
        &self,
        id: &str,
        items: Vec<T>,
        list: impl Fn(&mut Pending) -> &mut Vec<T>,
    ) -> Result<Taken, Full> {
        let now = Instant::now();
        let mut t = self.lock();
        if t.closed.contains(id) {
            return Ok(Taken {
                late: items.len(),
                ..Taken::default()
            });
        }
        let incoming: usize = items.iter().map(Weighed::size).sum();
        if t.total_bytes + incoming > self.limits.total_telemetry {
            return Err(Full::Telemetry(t.total_bytes));
        }
        if !t.open.contains_key(id) && t.open.len() >= self.limits.max_sessions {
            return Err(Full::Sessions(t.open.len()));
        }
        let budget = self.limits.session_telemetry;
        let p = t
            .open
            .entry(id.to_string())
            .or_insert_with(|| Pending::new(id, now));
        p.last_telemetry = now;
        let mut taken = Taken::default();
        let mut added = 0;
        for item in items {
            let s = item.size();
            if p.bytes + s > budget {
                taken.dropped += 1;
                p.dropped += 1;
                continue;
            }
            p.bytes += s;
            added += s;
            list(p).push(item);
            taken.kept += 1;
        }
        t.total_bytes += added;
        Ok(taken)
    }

    /// Takes a staged recording. Returns the recording it replaces (a retried upload) so its
    /// folder can be removed if it differs.
    pub fn add_recording(&self, rec: StagedRecording) -> Result<Option<StagedRecording>, Full> {
        let now = Instant::now();
        let mut t = self.lock();
        let id = rec.session_id.clone();
        // a recording re-sent after its session was written reopens it: the upload is the
        // authoritative part, and the key it lands on is the same
        if t.closed.remove(&id) {
            t.closed_order.retain(|c| *c != id);
        }
        if !t.open.contains_key(&id) && t.open.len() >= self.limits.max_sessions {
            return Err(Full::Sessions(t.open.len()));
        }
        let p = t
            .open
            .entry(id.clone())
            .or_insert_with(|| Pending::new(&id, now));
        p.recording_at = Some(now);
        Ok(p.recording.replace(rec))
    }

    /// Removes and returns the sessions due at `now`.
    pub fn take_due(&self, now: Instant) -> Vec<(Pending, CloseReason)> {
        let mut t = self.lock();
        let linger = self.limits.linger;
        let timeout = self.limits.session_timeout;
        let due: Vec<(String, CloseReason)> = t
            .open
            .iter()
            .filter_map(|(id, p)| match p.recording_at {
                Some(at) if elapsed(now, at) >= linger => {
                    Some((id.clone(), CloseReason::Recording))
                }
                None if elapsed(now, p.last_telemetry) >= timeout => {
                    Some((id.clone(), CloseReason::Timeout))
                }
                _ => None,
            })
            .collect();
        due.into_iter()
            .filter_map(|(id, why)| take(&mut t, &id).map(|p| (p, why)))
            .collect()
    }

    /// Removes and returns every open session (shutdown).
    pub fn take_all(&self) -> Vec<Pending> {
        let mut t = self.lock();
        let ids: Vec<String> = t.open.keys().cloned().collect();
        ids.iter().filter_map(|id| take(&mut t, id)).collect()
    }
}

fn elapsed(now: Instant, since: Instant) -> Duration {
    now.saturating_duration_since(since)
}

fn take(t: &mut Table, id: &str) -> Option<Pending> {
    let p = t.open.remove(id)?;
    t.total_bytes = t.total_bytes.saturating_sub(p.bytes);
    if t.closed.insert(id.to_string()) {
        t.closed_order.push_back(id.to_string());
        while t.closed_order.len() > CLOSED_MEMORY {
            if let Some(old) = t.closed_order.pop_front() {
                t.closed.remove(&old);
            }
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn span(size: usize) -> SpanRecord {
        SpanRecord {
            name: "llm_node".into(),
            trace_id: String::new(),
            span_id: String::new(),
            parent_span_id: String::new(),
            start_unix_ns: 0,
            end_unix_ns: 0,
            error: None,
            attributes: Map::new(),
            size,
        }
    }

    fn limits() -> Limits {
        Limits {
            max_sessions: 2,
            session_telemetry: 100,
            total_telemetry: 150,
            linger: Duration::ZERO,
            session_timeout: Duration::from_secs(3600),
            ..Limits::default()
        }
    }

    #[test]
    fn bounds_sessions_and_telemetry() {
        let s = Sessions::new(limits());
        assert_eq!(
            s.add_spans("a", vec![span(60), span(60)]).unwrap().dropped,
            1
        );
        assert_eq!(s.add_spans("b", vec![span(60)]).unwrap().kept, 1);
        assert_eq!(s.add_spans("c", vec![span(1)]), Err(Full::Sessions(2)));
        assert_eq!(s.add_spans("a", vec![span(40)]), Err(Full::Telemetry(120)));
        assert_eq!(s.telemetry_bytes(), 120);
    }

    #[test]
    fn late_telemetry_of_a_written_session_is_dropped_and_counted() {
        let s = Sessions::new(Limits {
            session_timeout: Duration::ZERO,
            ..limits()
        });
        s.add_spans("a", vec![span(10)]).unwrap();
        let due = s.take_due(Instant::now());
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, CloseReason::Timeout);
        assert_eq!(s.telemetry_bytes(), 0);
        assert_eq!(s.add_spans("a", vec![span(10)]).unwrap().late, 1);
        assert_eq!(s.open_count(), 0);
    }
}
