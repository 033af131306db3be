//! The recording hot path: [`Session`] and its explicit-time view [`At`]. Every call builds
//! its record, charges it to the memory budget and `try_send`s it to a bounded queue; it never
//! blocks, awaits, does I/O or takes a lock that I/O holds. When the queue or the budget is
//! full, audio is dropped and counted, and control records fall back on their reserve.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use calltape_format::{
    AgentInfo, Attributes, Event, LogLine, Record, SessionEnd, Speaker, Stage, StageTiming,
    StateSnapshot, TimedRecord, ToolCall, Transcript, TurnEnd, TurnId, TurnStart, Usage,
};
use serde::Serialize;
use serde_json::Value;

use crate::clock::ClockMode;
use crate::error::RecorderError;
use crate::queue::{audio_bytes, record_bytes, SessionCore, STATE_FINISHED, STATE_RECORDING};
use crate::report::{FinishReport, SessionState, SessionStatus};

/// An audio track to record: who speaks on it and its PCM format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    pub role: Speaker,
    pub sample_rate: u32,
    pub channels: u8,
    pub name: Option<String>,
}

/// Everything known about a call when it starts. Tracks get ids in the order they are added,
/// starting at 1: with `.track(Speaker::User, ..).track(Speaker::Agent, ..)` the user is
/// track 1 and the agent track 2.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: String,
    pub agent: AgentInfo,
    pub environment: Option<String>,
    pub tags: Attributes,
    pub tracks: Vec<TrackSpec>,
    /// Wall-clock instant of session time 0 (default: when `start_session` runs).
    pub started_at: Option<SystemTime>,
    pub clock: ClockMode,
}

impl SessionInfo {
    pub fn new(session_id: impl Into<String>) -> Self {
        SessionInfo {
            session_id: session_id.into(),
            agent: AgentInfo::default(),
            environment: None,
            tags: Attributes::new(),
            tracks: Vec::new(),
            started_at: None,
            clock: ClockMode::Realtime,
        }
    }

    pub fn agent(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.agent = AgentInfo {
            name: name.into(),
            version: version.into(),
        };
        self
    }

    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Adds an audio track (id = number of tracks added before + 1).
    pub fn track(mut self, role: Speaker, sample_rate: u32, channels: u8) -> Self {
        self.tracks.push(TrackSpec {
            role,
            sample_rate,
            channels,
            name: None,
        });
        self
    }

    /// Sets the wall-clock start (session time 0), e.g. for an imported or simulated call.
    pub fn started_at(mut self, at: SystemTime) -> Self {
        self.started_at = Some(at);
        self
    }

    /// Drives the session clock only through explicit timestamps, see [`ClockMode::Manual`].
    pub fn manual_clock(mut self) -> Self {
        self.clock = ClockMode::Manual;
        self
    }
}

/// Level of a [`Session::log`] line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

pub(crate) struct SessionHandle {
    pub(crate) core: Arc<SessionCore>,
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        // the last handle is gone: let the writer notice at once and close the archive
        self.core.detach();
    }
}

/// One call being recorded. Cheap to clone (`Arc`), `Send + Sync`; every recording method is
/// synchronous and returns at once. Times are session nanoseconds (since the session start);
/// methods on `Session` stamp records with the session clock's "now", methods on
/// [`Session::at`] use the time you give.
#[derive(Clone)]
pub struct Session(pub(crate) Arc<SessionHandle>);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id()).finish()
    }
}

/// Records with an explicit session time (ns since the session start), for timings measured
/// elsewhere, importers and simulations: `session.at(t).event("interruption", attrs)`.
#[derive(Clone, Copy)]
pub struct At<'a> {
    session: &'a Session,
    time_ns: u64,
}

impl Session {
    pub(crate) fn core(&self) -> &SessionCore {
        &self.0.core
    }

    pub fn id(&self) -> &str {
        &self.0.core.id
    }

    /// The session clock: ns since the session start (for a manual clock, the latest explicit
    /// time given).
    pub fn now_ns(&self) -> u64 {
        self.0.core.clock.now_ns()
    }

    /// A view that records at session time `time_ns`.
    pub fn at(&self, time_ns: u64) -> At<'_> {
        self.0.core.clock.observe(time_ns);
        At {
            session: self,
            time_ns,
        }
    }

    fn now(&self) -> At<'_> {
        At {
            session: self,
            time_ns: self.now_ns(),
        }
    }

    #[inline]
    fn push(&self, time_ns: u64, record: Record) {
        let core = &*self.0.core;
        if !core.accepts() {
            core.drop_records(1);
            return;
        }
        let bytes = record_bytes(&record);
        if !core.budget.try_reserve(bytes, true) {
            core.drop_records(1);
            core.queue.nudge(false);
            return;
        }
        let (queued, spent) = core
            .queue
            .push_control(bytes, TimedRecord { time_ns, record });
        match queued {
            Ok(()) => {
                core.enqueued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                core.budget.release(bytes);
                core.drop_records(1);
                // the writer notes the drop in the archive
                core.queue.nudge(false);
            }
        }
        // a record the writer is done with, freed on this thread (see `queue::Recycled`)
        drop(spent);
    }

    #[inline]
    fn push_audio(&self, time_ns: u64, track: u16, samples: &[i16]) {
        let core = &*self.0.core;
        let Some(slot) = core.track(track) else {
            // a track that was never declared: count it as a lost record
            core.drop_records(1);
            return;
        };
        let channels = usize::from(slot.channels.max(1));
        let frames = (samples.len() / channels) as u64;
        if frames == 0 {
            return;
        }
        let bytes = audio_bytes(samples.len());
        if !core.accepts() {
            slot.dropped_pending.fetch_add(frames, Ordering::Relaxed);
            slot.dropped_total.fetch_add(frames, Ordering::Relaxed);
            return;
        }
        if !core.budget.try_reserve(bytes, false) {
            slot.dropped_pending.fetch_add(frames, Ordering::Relaxed);
            slot.dropped_total.fetch_add(frames, Ordering::Relaxed);
            core.queue.nudge(false);
            return;
        }
        // whole frames only (a trailing partial frame of a multi-channel track is cut)
        let whole = &samples[..frames as usize * channels];
        let (queued, spent) = core.queue.push_audio(bytes, track, time_ns, whole);
        if queued {
            core.enqueued.fetch_add(1, Ordering::Relaxed);
        } else {
            core.budget.release(bytes);
            slot.dropped_pending.fetch_add(frames, Ordering::Relaxed);
            slot.dropped_total.fetch_add(frames, Ordering::Relaxed);
            core.queue.nudge(false);
        }
        drop(spent);
    }

    /// A turn begins (`speaker` opened it: the user, or the agent for a greeting).
    pub fn turn_start(&self, turn: TurnId, speaker: Speaker) {
        self.now().turn_start(turn, speaker)
    }

    /// A turn ends.
    pub fn turn_end(&self, turn: TurnId) {
        self.now().turn_end(turn)
    }

    /// A transcript of `speaker` (interim when `is_final` is false). It belongs to the turn
    /// open when it is recorded (the latest `turn_start`); to tie it to a turn explicitly use
    /// [`Session::transcript_in`]. For all fields (confidence, interruption, …) use
    /// [`Session::record`].
    pub fn transcript(&self, speaker: Speaker, text: impl Into<String>, is_final: bool) {
        self.now().transcript(speaker, text, is_final)
    }

    /// A transcript of `speaker` in turn `turn` (the record's `turn` field is set), for text
    /// that arrives after the next turn has started, e.g. a late final transcript or the
    /// agent's words recorded once its reply is done.
    pub fn transcript_in(
        &self,
        turn: TurnId,
        speaker: Speaker,
        text: impl Into<String>,
        is_final: bool,
    ) {
        self.now().transcript_in(turn, speaker, text, is_final)
    }

    /// Starts timing a pipeline stage of `turn`; the timing is recorded when the guard is
    /// ended or dropped.
    pub fn stage(&self, turn: TurnId, stage: Stage) -> StageGuard {
        self.now().stage(turn, stage)
    }

    /// Records a stage measured elsewhere (explicit `start_ns`/`end_ns`).
    pub fn stage_timing(&self, timing: StageTiming) {
        self.now().stage_timing(timing)
    }

    /// Records a tool call (at its `end_ns`).
    pub fn tool_call(&self, call: ToolCall) {
        self.now().tool_call(call)
    }

    /// Records the agent's state (or the part named `scope`).
    pub fn state<T: Serialize + ?Sized>(&self, scope: impl Into<String>, value: &T) {
        self.now().state(scope, value)
    }

    /// Records a named event with attributes (see SPEC.md for well-known names).
    pub fn event(&self, name: impl Into<String>, attributes: Attributes) {
        self.now().event(name, attributes)
    }

    /// Records a log line.
    pub fn log(&self, level: LogLevel, target: impl Into<String>, message: impl Into<String>) {
        self.now().log(level, target, message)
    }

    /// Records resource usage (tokens, audio seconds, characters).
    pub fn usage(&self, usage: Usage) {
        self.now().usage(usage)
    }

    /// Records audio of track `track` (interleaved if multi-channel), captured starting now.
    /// Any frame size. Use [`At::audio`] to give the capture time of the first sample.
    pub fn audio(&self, track: u16, samples: &[i16]) {
        self.now().audio(track, samples)
    }

    /// Records the session end: why it ended and (optionally) the business outcome.
    pub fn end(&self, reason: impl Into<String>, outcome: Option<&str>) {
        self.now().end(reason, outcome)
    }

    /// Records any control record (all fields of the format's model). Audio goes through
    /// [`Session::audio`].
    pub fn record(&self, record: Record) {
        self.now().record(record)
    }

    /// Counters of this session.
    pub fn status(&self) -> SessionStatus {
        status_of(self.core())
    }

    /// Waits until the writer has taken every record queued before this call off the queue
    /// (they are then in the archive's open chunks). Lets a simulation that records faster
    /// than real time stay within the memory budget, so nothing is dropped.
    pub async fn drained(&self) {
        let core = self.core();
        let target = core.enqueued.load(Ordering::Relaxed);
        let mut rx = core.processed.subscribe();
        if *rx.borrow() < target {
            core.queue.nudge(true);
        }
        let _ = rx.wait_for(|&p| p >= target).await;
    }

    /// Closes the archive and uploads it. Records sent after this (from other clones) are
    /// dropped and counted. Returns where the archive went: uploaded under its key, or left
    /// in the spool with the reason (it is retried later, never lost).
    pub async fn finish(self) -> Result<FinishReport, RecorderError> {
        let core = self.0.core.clone();
        let id = core.id.to_string();
        core.begin_finishing();
        drop(self);
        let mut rx = core.report.subscribe();
        let got = match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        got.ok_or(RecorderError::WriterLost { session_id: id })
    }
}

pub(crate) fn status_of(core: &SessionCore) -> SessionStatus {
    let state = match core.state.load(Ordering::Acquire) {
        STATE_RECORDING => SessionState::Recording,
        STATE_FINISHED => SessionState::Finished,
        _ => SessionState::Finishing,
    };
    SessionStatus {
        session_id: core.id.to_string(),
        state,
        degraded: core.degraded.load(Ordering::Relaxed)
            || core.waiting_for_spool.load(Ordering::Relaxed),
        records_written: core.records_written.load(Ordering::Relaxed),
        dropped_samples: core
            .tracks
            .iter()
            .map(|t| t.dropped_total.load(Ordering::Relaxed))
            .sum(),
        dropped_records: core.dropped_records_total.load(Ordering::Relaxed),
        error: core.error(),
    }
}

impl At<'_> {
    /// The time this view records at.
    pub fn time_ns(&self) -> u64 {
        self.time_ns
    }

    pub fn turn_start(self, turn: TurnId, speaker: Speaker) {
        self.session.push(
            self.time_ns,
            Record::TurnStart(TurnStart {
                turn,
                speaker,
                attributes: Attributes::new(),
            }),
        )
    }

    pub fn turn_end(self, turn: TurnId) {
        self.session.push(
            self.time_ns,
            Record::TurnEnd(TurnEnd {
                turn,
                speaker: None,
                attributes: Attributes::new(),
            }),
        )
    }

    /// See [`Session::transcript`].
    pub fn transcript(self, speaker: Speaker, text: impl Into<String>, is_final: bool) {
        self.transcript_record(None, speaker, text.into(), is_final)
    }

    /// See [`Session::transcript_in`].
    pub fn transcript_in(
        self,
        turn: TurnId,
        speaker: Speaker,
        text: impl Into<String>,
        is_final: bool,
    ) {
        self.transcript_record(Some(turn), speaker, text.into(), is_final)
    }

    fn transcript_record(
        self,
        turn: Option<TurnId>,
        speaker: Speaker,
        text: String,
        is_final: bool,
    ) {
        self.session.push(
            self.time_ns,
            Record::Transcript(Transcript {
                turn,
                speaker,
                text,
                is_final,
                confidence: None,
                language: None,
                interrupted: false,
                heard_text: None,
                start_ns: None,
                end_ns: None,
                attributes: Attributes::new(),
            }),
        )
    }

    /// Starts timing `stage` of `turn` at this view's time.
    pub fn stage(self, turn: TurnId, stage: Stage) -> StageGuard {
        StageGuard {
            session: self.session.clone(),
            timing: Some(StageTiming::new(
                Some(turn),
                stage,
                self.time_ns,
                self.time_ns,
            )),
        }
    }

    /// Records a stage with explicit start and end; the record is stamped with `end_ns`.
    pub fn stage_timing(self, timing: StageTiming) {
        self.session.push(
            timing.end_ns.max(timing.start_ns),
            Record::StageTiming(timing),
        )
    }

    /// Records a tool call; the record is stamped with its `end_ns`.
    pub fn tool_call(self, call: ToolCall) {
        self.session
            .push(call.end_ns.max(call.start_ns), Record::ToolCall(call))
    }

    pub fn state<T: Serialize + ?Sized>(self, scope: impl Into<String>, value: &T) {
        match serde_json::to_value(value) {
            Ok(value) => self.session.push(
                self.time_ns,
                Record::StateSnapshot(StateSnapshot {
                    turn: None,
                    scope: scope.into(),
                    value,
                }),
            ),
            Err(_) => self.session.core().drop_records(1),
        }
    }

    pub fn event(self, name: impl Into<String>, attributes: Attributes) {
        self.session.push(
            self.time_ns,
            Record::Event(Event {
                turn: None,
                name: name.into(),
                attributes,
            }),
        )
    }

    pub fn log(self, level: LogLevel, target: impl Into<String>, message: impl Into<String>) {
        self.session.push(
            self.time_ns,
            Record::Log(LogLine {
                turn: None,
                level: level.as_str().to_string(),
                target: target.into(),
                message: message.into(),
                fields: Attributes::new(),
            }),
        )
    }

    pub fn usage(self, usage: Usage) {
        self.session.push(self.time_ns, Record::Usage(usage))
    }

    /// Records audio whose first sample was captured at this view's time.
    pub fn audio(self, track: u16, samples: &[i16]) {
        self.session.push_audio(self.time_ns, track, samples)
    }

    pub fn end(self, reason: impl Into<String>, outcome: Option<&str>) {
        self.session.push(
            self.time_ns,
            Record::SessionEnd(SessionEnd {
                reason: reason.into(),
                outcome: outcome.map(str::to_string),
            }),
        )
    }

    /// Records any control record. An `Audio` record is routed to [`At::audio`].
    pub fn record(self, record: Record) {
        match record {
            Record::Audio(a) => self.session.push_audio(self.time_ns, a.track, &a.samples),
            r => self.session.push(self.time_ns, r),
        }
    }
}

/// Times one pipeline stage: created by [`Session::stage`], recorded as a `stage_timing` when
/// [`StageGuard::end`] is called or the guard is dropped (a dropped guard ends "now").
pub struct StageGuard {
    session: Session,
    timing: Option<StageTiming>,
}

impl std::fmt::Debug for StageGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageGuard")
            .field("timing", &self.timing)
            .finish()
    }
}

impl StageGuard {
    fn timing(&mut self) -> &mut StageTiming {
        self.timing.as_mut().expect("timing present until ended")
    }

    /// When the stage started (session ns).
    pub fn start_ns(&self) -> u64 {
        self.timing.as_ref().map_or(0, |t| t.start_ns)
    }

    /// The LLM's first token arrived now (sets `ttft_ns`).
    pub fn first_token(&mut self) {
        let now = self.session.now_ns();
        self.first_token_at(now)
    }

    /// The LLM's first token arrived at session time `time_ns`.
    pub fn first_token_at(&mut self, time_ns: u64) {
        let t = self.timing();
        t.ttft_ns = Some(time_ns.saturating_sub(t.start_ns));
    }

    /// The TTS's first audio byte arrived now (sets `ttfb_ns`).
    pub fn first_byte(&mut self) {
        let now = self.session.now_ns();
        self.first_byte_at(now)
    }

    /// The TTS's first audio byte arrived at session time `time_ns`.
    pub fn first_byte_at(&mut self, time_ns: u64) {
        let t = self.timing();
        t.ttfb_ns = Some(time_ns.saturating_sub(t.start_ns));
    }

    pub fn tokens(&mut self, prompt: u64, completion: u64) {
        let t = self.timing();
        t.prompt_tokens = Some(prompt);
        t.completion_tokens = Some(completion);
    }

    /// TTS characters synthesized.
    pub fn characters(&mut self, n: u64) {
        self.timing().characters = Some(n);
    }

    pub fn model(&mut self, model: impl Into<String>, provider: impl Into<String>) {
        let t = self.timing();
        t.model = Some(model.into());
        t.provider = Some(provider.into());
    }

    /// The stage was cancelled (e.g. by an interruption).
    pub fn cancel(&mut self) {
        self.timing().cancelled = true;
    }

    pub fn attribute(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.timing().attributes.insert(key.into(), value.into());
    }

    /// Ends the stage now and records it.
    pub fn end(mut self) {
        let now = self.session.now_ns();
        self.finish(now)
    }

    /// Ends the stage at session time `time_ns` and records it.
    pub fn end_at(mut self, time_ns: u64) {
        self.session.0.core.clock.observe(time_ns);
        self.finish(time_ns)
    }

    fn finish(&mut self, end_ns: u64) {
        if let Some(mut t) = self.timing.take() {
            t.end_ns = end_ns.max(t.start_ns);
            self.session.push(t.end_ns, Record::StageTiming(t));
        }
    }
}

impl Drop for StageGuard {
    fn drop(&mut self) {
        let now = self.session.now_ns();
        self.finish(now);
    }
}
