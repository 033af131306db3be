//! The recording API: `Recorder`, `Session` (and its explicit-time view `SessionAt`) and the
//! `StageTimer` context manager. Each method converts its arguments and calls the Rust
//! recorder; record calls only `try_send` to a queue, so they never block the event loop.

use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use calltape_format::{LogLine, Record, SessionEnd, StateSnapshot};
use calltape_recorder as rec;
use calltape_recorder::{
    KeyLayout, RedactionRule, StageTiming, ToolCall, TrackSpec, Transcript, TurnEnd, TurnStart,
    Usage,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value;

use crate::convert::{attributes, duration, json_value, speaker, type_name};
use crate::errors::{recorder_error, SessionFinishedError, UnknownTrackError};
use crate::pcm::with_samples;
use crate::reports::{FinishReport, Health, Issue, SessionStatus, ShutdownReport, UploadReport};
use crate::runtime::runtime;

/// Records calls into calltape archives and uploads them to `destination`.
///
/// One per process. Construct it at startup (it creates the spool directory and starts
/// uploading archives a crash left behind, in the background), start a `Session` per call,
/// and `await recorder.shutdown()` before exiting.
#[pyclass(module = "calltape._calltape", frozen)]
pub struct Recorder {
    inner: rec::Recorder,
    destination: String,
}

impl Recorder {
    pub fn inner(&self) -> &rec::Recorder {
        &self.inner
    }
}

#[pymethods]
impl Recorder {
    #[new]
    #[pyo3(signature = (
        destination, *, spool_dir=None, redact_pii=false, redaction_rules=None,
        flush_interval=None, memory_budget=None, upload_deadline=None, on_error=None,
        store_options=None, queue_capacity=None, retry_interval=Some(60.0),
        upload_on_start=true, sync_data=true, key_template=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        destination: String,
        spool_dir: Option<std::path::PathBuf>,
        redact_pii: bool,
        redaction_rules: Option<Vec<(String, String)>>,
        flush_interval: Option<&Bound<'_, PyAny>>,
        memory_budget: Option<usize>,
        upload_deadline: Option<&Bound<'_, PyAny>>,
        on_error: Option<Py<PyAny>>,
        store_options: Option<std::collections::BTreeMap<String, String>>,
        queue_capacity: Option<usize>,
        retry_interval: Option<f64>,
        upload_on_start: bool,
        sync_data: bool,
        key_template: Option<String>,
    ) -> PyResult<Self> {
        let mut b = rec::Recorder::builder()
            .destination(destination.clone())
            .redact_pii(redact_pii)
            .upload_on_start(upload_on_start)
            .sync_data(sync_data);
        for (k, v) in store_options.unwrap_or_default() {
            b = b.store_option(k, v);
        }
        if let Some(dir) = spool_dir {
            b = b.spool_dir(dir);
        }
        for (pattern, replacement) in redaction_rules.unwrap_or_default() {
            b = b.redaction_rule(
                RedactionRule::regex(&pattern, replacement).map_err(recorder_error)?,
            );
        }
        if let Some(d) = flush_interval {
            b = b.flush_interval(duration("flush_interval", d)?);
        }
        if let Some(n) = memory_budget {
            b = b.memory_budget(n);
        }
        if let Some(d) = upload_deadline {
            b = b.upload_deadline(duration("upload_deadline", d)?);
        }
        if let Some(n) = queue_capacity {
            b = b.queue_capacity(n);
        }
        b = b.retry_interval(
            retry_interval
                .map(|s| {
                    Duration::try_from_secs_f64(s).map_err(|_| {
                        PyValueError::new_err(format!(
                            "retry_interval must be seconds > 0 or None, got {s}"
                        ))
                    })
                })
                .transpose()?,
        );
        if let Some(t) = key_template {
            b = b.key_layout(KeyLayout::Template(t));
        }
        if let Some(cb) = on_error {
            if !cb.bind(py).is_callable() {
                return Err(PyTypeError::new_err(
                    "on_error must be callable (issue) -> None",
                ));
            }
            b = b.on_error(issue_sender(cb));
        }
        // build() recovers what a crash left in the spool (disk I/O): without the GIL
        let inner = py
            .detach(|| runtime().block_on(b.build()))
            .map_err(recorder_error)?;
        Ok(Recorder { inner, destination })
    }

    /// Starts recording a call.
    ///
    /// `tracks` are `(role, sample_rate, channels)` (or with a 4th item, a name); their ids
    /// are 1, 2, ... in order. `started_at` (unix seconds or an aware datetime) is session
    /// time 0, default now; `manual_clock=True` moves the session clock only with explicit
    /// times (`at=`), for importers and simulations.
    #[pyo3(signature = (
        session_id, *, agent=None, environment=None, tags=None, tracks=None,
        started_at=None, manual_clock=false,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn start_session(
        &self,
        session_id: String,
        agent: Option<(String, String)>,
        environment: Option<String>,
        tags: Option<&Bound<'_, PyDict>>,
        tracks: Option<Vec<Bound<'_, PyTuple>>>,
        started_at: Option<&Bound<'_, PyAny>>,
        manual_clock: bool,
    ) -> PyResult<Session> {
        let mut info = rec::SessionInfo::new(session_id.clone());
        if let Some((name, version)) = agent {
            info = info.agent(name, version);
        }
        if let Some(env) = environment {
            info = info.environment(env);
        }
        info.tags = attributes("tags", tags)?;
        for t in tracks.unwrap_or_default() {
            info.tracks.push(track_spec(&t)?);
        }
        if let Some(at) = started_at {
            info = info.started_at(wall_time(at)?);
        }
        if manual_clock {
            info = info.manual_clock();
        }
        let specs = info.tracks.clone();
        let session = self.inner.start_session(info).map_err(recorder_error)?;
        Ok(Session {
            inner: RwLock::new(Some(session)),
            id: session_id,
            tracks: specs,
        })
    }

    /// A snapshot of the recorder: open sessions, queued bytes, errors so far.
    fn health(&self, py: Python<'_>) -> Health {
        py.detach(|| self.inner.health()).into()
    }

    /// The spool directory.
    #[getter]
    fn spool_dir(&self) -> String {
        self.inner.spool_dir().display().to_string()
    }

    /// The destination URL.
    #[getter]
    fn destination(&self) -> &str {
        &self.destination
    }

    /// Finishes every open session, uploads them and whatever waits in the spool, all within
    /// `deadline` (seconds or a timedelta, default 10 s). Awaitable; returns a `ShutdownReport`.
    #[pyo3(signature = (deadline=None))]
    fn shutdown<'py>(
        &self,
        py: Python<'py>,
        deadline: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = match deadline {
            Some(d) => duration("deadline", d)?,
            None => Duration::from_secs(10),
        };
        let r = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            Ok(ShutdownReport::from(r.shutdown(d).await))
        })
    }

    /// Recovers archives a crash left and uploads every closed archive waiting in the spool.
    /// Awaitable; returns a list of `UploadReport`.
    fn upload_pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            Ok(r.upload_pending()
                .await
                .into_iter()
                .map(UploadReport::from)
                .collect::<Vec<_>>())
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Recorder(destination={:?}, spool_dir={:?})",
            self.destination,
            self.spool_dir()
        )
    }
}

/// Hands issues to the Python callback on a thread of its own, so the recorder's background
/// tasks never wait for the GIL (and never while holding a lock).
fn issue_sender(cb: Py<PyAny>) -> impl Fn(&rec::Issue) + Send + Sync + 'static {
    let (tx, rx) = std::sync::mpsc::channel::<Issue>();
    let spawned = std::thread::Builder::new()
        .name("calltape-on-error".into())
        .spawn(move || {
            for issue in rx {
                let delivered = Python::try_attach(|py| {
                    if let Err(e) = cb.call1(py, (issue,)) {
                        e.write_unraisable(py, Some(cb.bind(py)));
                    }
                });
                if delivered.is_none() {
                    break; // the interpreter is shutting down
                }
            }
        });
    let tx = spawned.ok().map(|_| tx);
    move |issue| {
        if let Some(tx) = &tx {
            let _ = tx.send(Issue::from(issue));
        }
    }
}

fn track_spec(t: &Bound<'_, PyTuple>) -> PyResult<TrackSpec> {
    let bad = || {
        PyTypeError::new_err(format!(
            "a track is (role, sample_rate, channels) or (role, sample_rate, channels, name), \
             e.g. (\"user\", 16000, 1); got {}",
            t.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    if !(3..=4).contains(&t.len()) {
        return Err(bad());
    }
    let role: String = t.get_item(0)?.extract().map_err(|_| bad())?;
    let sample_rate: u32 = t.get_item(1)?.extract().map_err(|_| bad())?;
    let channels: u8 = t.get_item(2)?.extract().map_err(|_| bad())?;
    let name: Option<String> = if t.len() == 4 {
        t.get_item(3)?.extract().map_err(|_| bad())?
    } else {
        None
    };
    Ok(TrackSpec {
        role: speaker(&role)?,
        sample_rate,
        channels,
        name,
    })
}

/// Unix seconds (int or float) or an aware `datetime`.
fn wall_time(v: &Bound<'_, PyAny>) -> PyResult<SystemTime> {
    let secs: f64 = if v.hasattr("timestamp")? {
        v.call_method0("timestamp")?.extract()?
    } else {
        v.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "started_at must be unix seconds or a datetime, not {}",
                type_name(v)
            ))
        })?
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!("started_at must be after 1970, got {secs} s"))
    })?;
    Ok(SystemTime::UNIX_EPOCH + d)
}

fn level(s: &str) -> PyResult<&'static str> {
    match s.to_ascii_lowercase().as_str() {
        "trace" => Ok("trace"),
        "debug" => Ok("debug"),
        "info" => Ok("info"),
        "warn" | "warning" => Ok("warn"),
        "error" | "critical" | "fatal" => Ok("error"),
        _ => Err(PyValueError::new_err(format!(
            "unknown log level {s:?}: use trace, debug, info, warn or error"
        ))),
    }
}

/// One call being recorded. Every recording method returns at once (it queues the record);
/// times are session nanoseconds, "now" by default or the `at=` you give.
#[pyclass(module = "calltape._calltape", frozen)]
pub struct Session {
    /// `None` once `finish()` was called.
    inner: RwLock<Option<rec::Session>>,
    id: String,
    tracks: Vec<TrackSpec>,
}

/// The view that records at `at` (session ns) or, without one, at the session clock's now.
fn view(s: &rec::Session, at: Option<u64>) -> rec::At<'_> {
    match at {
        Some(t) => s.at(t),
        None => s.at(s.now_ns()),
    }
}

impl Session {
    /// Records `records` made elsewhere in the extension (the LiveKit and Pipecat mappings) in
    /// the given order, each at its own session time.
    pub(crate) fn record_all(&self, records: Vec<calltape_format::TimedRecord>) -> PyResult<()> {
        self.with(|s| {
            for r in records {
                s.at(r.time_ns).record(r.record);
            }
        })
    }

    fn with<R>(&self, f: impl FnOnce(&rec::Session) -> R) -> PyResult<R> {
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(s) => Ok(f(s)),
            None => Err(SessionFinishedError::new_err(format!(
                "session {:?} is finished (finish() was called): this record was not \
                 recorded; record everything before finish(), or start a new session",
                self.id
            ))),
        }
    }

    fn track_id(&self, track: &Bound<'_, PyAny>) -> PyResult<u16> {
        let known = || {
            if self.tracks.is_empty() {
                "none: declare them with start_session(tracks=[(\"user\", 16000, 1), ...])".into()
            } else {
                self.tracks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("{} {}", i + 1, t.role))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        if let Some(id) = track
            .cast::<pyo3::types::PyInt>()
            .ok()
            .and_then(|i| i.extract::<i64>().ok())
        {
            if id >= 1 && (id as usize) <= self.tracks.len() {
                return Ok(id as u16);
            }
            return Err(UnknownTrackError::new_err(format!(
                "session {:?} has no audio track {id} (tracks: {}); nothing was recorded",
                self.id,
                known()
            )));
        }
        if let Ok(role) = track.extract::<String>() {
            let matching: Vec<usize> = self
                .tracks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.role.to_string() == role)
                .map(|(i, _)| i + 1)
                .collect();
            if let [one] = matching[..] {
                return Ok(one as u16);
            }
            return Err(UnknownTrackError::new_err(format!(
                "session {:?} has {} audio tracks of role {role:?} (tracks: {}); give the track \
                 id; nothing was recorded",
                self.id,
                matching.len(),
                known()
            )));
        }
        Err(PyTypeError::new_err(format!(
            "track must be a track id (int) or a role (str), not {}",
            type_name(track)
        )))
    }
}

#[pymethods]
impl Session {
    /// The session id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// The audio tracks as `(id, role, sample_rate, channels)`.
    #[getter]
    fn tracks(&self) -> Vec<(u16, String, u32, u8)> {
        self.tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u16 + 1, t.role.to_string(), t.sample_rate, t.channels))
            .collect()
    }

    /// The session clock: ns since the session start (for a manual clock, the latest time
    /// given).
    fn now_ns(&self) -> PyResult<u64> {
        self.with(|s| s.now_ns())
    }

    /// A view whose recording methods all record at session time `time_ns`.
    fn at(slf: Bound<'_, Self>, time_ns: u64) -> PyResult<SessionAt> {
        slf.get().with(|s| {
            s.at(time_ns);
        })?;
        Ok(SessionAt {
            session: slf.unbind(),
            time_ns,
        })
    }

    /// A turn begins; `speaker` opened it (the user, or the agent for a greeting).
    #[pyo3(signature = (turn, speaker="user", *, attributes=None, at=None))]
    fn turn_start(
        &self,
        turn: u32,
        speaker: &str,
        attributes: Option<&Bound<'_, PyDict>>,
        at: Option<u64>,
    ) -> PyResult<()> {
        let r = Record::TurnStart(TurnStart {
            turn,
            speaker: crate::convert::speaker(speaker)?,
            attributes: crate::convert::attributes("attributes", attributes)?,
        });
        self.with(|s| view(s, at).record(r))
    }

    /// A turn ends. `interrupted=True` marks the agent as cut off; `reported_e2e_ns` is the
    /// e2e latency the agent itself measured (compared with the recording's).
    #[pyo3(signature = (turn, *, speaker=None, interrupted=None, reported_e2e_ns=None, attributes=None, at=None))]
    #[allow(clippy::too_many_arguments)]
    fn turn_end(
        &self,
        turn: u32,
        speaker: Option<&str>,
        interrupted: Option<bool>,
        reported_e2e_ns: Option<i64>,
        attributes: Option<&Bound<'_, PyDict>>,
        at: Option<u64>,
    ) -> PyResult<()> {
        let mut attrs = crate::convert::attributes("attributes", attributes)?;
        if let Some(i) = interrupted {
            attrs.insert("interrupted".into(), i.into());
        }
        if let Some(e) = reported_e2e_ns {
            attrs.insert("reported_e2e_ns".into(), e.into());
        }
        let r = Record::TurnEnd(TurnEnd {
            turn,
            speaker: speaker.map(crate::convert::speaker).transpose()?,
            attributes: attrs,
        });
        self.with(|s| view(s, at).record(r))
    }

    /// Something said, as text: what STT heard from the user (interim when `is_final` is
    /// false) or what the agent generated. `turn` ties it to a turn; `start_ns`/`end_ns` are
    /// when the speech it covers started and ended; `interrupted`/`heard_text` for an agent
    /// line cut off by a barge-in.
    #[pyo3(signature = (
        speaker, text, is_final=true, *, turn=None, confidence=None, language=None,
        interrupted=false, heard_text=None, start_ns=None, end_ns=None, attributes=None, at=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn transcript(
        &self,
        speaker: &str,
        text: String,
        is_final: bool,
        turn: Option<u32>,
        confidence: Option<f64>,
        language: Option<String>,
        interrupted: bool,
        heard_text: Option<String>,
        start_ns: Option<u64>,
        end_ns: Option<u64>,
        attributes: Option<&Bound<'_, PyDict>>,
        at: Option<u64>,
    ) -> PyResult<()> {
        let r = Record::Transcript(Transcript {
            turn,
            speaker: crate::convert::speaker(speaker)?,
            text,
            is_final,
            confidence,
            language,
            interrupted,
            heard_text,
            start_ns,
            end_ns,
            attributes: crate::convert::attributes("attributes", attributes)?,
        });
        self.with(|s| view(s, at).record(r))
    }

    /// Starts timing a pipeline stage of `turn` (`"llm"`, `"tts"`, `"stt"`, ... or any
    /// name). Use it as a context manager, or call `.end()`.
    #[pyo3(signature = (turn, stage, *, at=None))]
    fn stage(&self, turn: u32, stage: &str, at: Option<u64>) -> PyResult<StageTimer> {
        let st = crate::convert::stage(stage)?;
        let guard = self.with(|s| view(s, at).stage(turn, st))?;
        Ok(StageTimer {
            guard: Mutex::new(Some(guard)),
        })
    }

    /// Records a stage measured elsewhere (explicit start and end, session ns); the record is
    /// stamped with its end.
    #[pyo3(signature = (
        stage, start_ns, end_ns, *, turn=None, ttft_ns=None, ttfb_ns=None, prompt_tokens=None,
        completion_tokens=None, characters=None, model=None, provider=None, cancelled=false,
        attributes=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn stage_timing(
        &self,
        stage: &str,
        start_ns: u64,
        end_ns: u64,
        turn: Option<u32>,
        ttft_ns: Option<u64>,
        ttfb_ns: Option<u64>,
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
        characters: Option<u64>,
        model: Option<String>,
        provider: Option<String>,
        cancelled: bool,
        attributes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let mut t = StageTiming::new(turn, crate::convert::stage(stage)?, start_ns, end_ns);
        t.ttft_ns = ttft_ns;
        t.ttfb_ns = ttfb_ns;
        t.prompt_tokens = prompt_tokens;
        t.completion_tokens = completion_tokens;
        t.characters = characters;
        t.model = model;
        t.provider = provider;
        t.cancelled = cancelled;
        t.attributes = crate::convert::attributes("attributes", attributes)?;
        self.with(|s| s.stage_timing(t))
    }

    /// Records a tool (function) call with its arguments and output (JSON-like values); the
    /// record is stamped with its end.
    #[pyo3(signature = (
        name, start_ns, end_ns, *, arguments=None, output=None, is_error=false, turn=None,
        call_id=None, attributes=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn tool_call(
        &self,
        name: String,
        start_ns: u64,
        end_ns: u64,
        arguments: Option<&Bound<'_, PyAny>>,
        output: Option<&Bound<'_, PyAny>>,
        is_error: bool,
        turn: Option<u32>,
        call_id: Option<String>,
        attributes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let call = ToolCall {
            turn,
            call_id,
            name,
            arguments: arguments
                .map(|v| json_value("arguments", v))
                .transpose()?
                .unwrap_or(Value::Null),
            output: output
                .map(|v| json_value("output", v))
                .transpose()?
                .unwrap_or(Value::Null),
            is_error,
            start_ns,
            end_ns,
            attributes: crate::convert::attributes("attributes", attributes)?,
        };
        self.with(|s| s.tool_call(call))
    }

    /// Records the agent's state (or the part named `scope`): any JSON-like value.
    #[pyo3(signature = (scope, value, *, turn=None, at=None))]
    fn state(
        &self,
        scope: String,
        value: &Bound<'_, PyAny>,
        turn: Option<u32>,
        at: Option<u64>,
    ) -> PyResult<()> {
        let r = Record::StateSnapshot(StateSnapshot {
            turn,
            scope,
            value: json_value("value", value)?,
        });
        self.with(|s| view(s, at).record(r))
    }

    /// Records a named event (`"interruption"`, `"error"`, `"agent_state_changed"`, ...)
    /// with its attributes as keyword arguments (`turn` and `at` are reserved).
    #[pyo3(signature = (name, *, turn=None, at=None, **attrs))]
    fn event(
        &self,
        name: String,
        turn: Option<u32>,
        at: Option<u64>,
        attrs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let r = Record::Event(calltape_format::Event {
            turn,
            name,
            attributes: crate::convert::attributes("event attributes", attrs)?,
        });
        self.with(|s| view(s, at).record(r))
    }

    /// Records a log line (`level`: trace, debug, info, warn/warning, error/critical).
    #[pyo3(signature = (level, message, *, target="", turn=None, fields=None, at=None))]
    fn log(
        &self,
        level: &str,
        message: String,
        target: &str,
        turn: Option<u32>,
        fields: Option<&Bound<'_, PyDict>>,
        at: Option<u64>,
    ) -> PyResult<()> {
        let r = Record::Log(LogLine {
            turn,
            level: self::level(level)?.to_string(),
            target: target.to_string(),
            message,
            fields: crate::convert::attributes("fields", fields)?,
        });
        self.with(|s| view(s, at).record(r))
    }

    /// Records resource usage to add to the session totals.
    #[pyo3(signature = (
        *, prompt_tokens=0, completion_tokens=0, cached_tokens=0, stt_audio_seconds=0.0,
        tts_audio_seconds=0.0, tts_characters=0, model=None, provider=None, turn=None, at=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn usage(
        &self,
        prompt_tokens: u64,
        completion_tokens: u64,
        cached_tokens: u64,
        stt_audio_seconds: f64,
        tts_audio_seconds: f64,
        tts_characters: u64,
        model: Option<String>,
        provider: Option<String>,
        turn: Option<u32>,
        at: Option<u64>,
    ) -> PyResult<()> {
        let u = Usage {
            turn,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            stt_audio_seconds,
            tts_audio_seconds,
            tts_characters,
            model,
            provider,
        };
        self.with(|s| view(s, at).usage(u))
    }

    /// Records audio of `track` (its id, or its role when only one track has it): 16-bit
    /// signed PCM, interleaved if multi-channel, as bytes, bytearray, memoryview, array('h')
    /// or a numpy int16 array (not copied until it is queued). `at` is the capture time of
    /// the first sample (default now).
    #[pyo3(signature = (track, pcm, *, at=None))]
    fn audio(
        &self,
        track: &Bound<'_, PyAny>,
        pcm: &Bound<'_, PyAny>,
        at: Option<u64>,
    ) -> PyResult<()> {
        let id = self.track_id(track)?;
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(s) = guard.as_ref() else {
            drop(guard);
            return self.with(|_| ());
        };
        with_samples(pcm, |samples| view(s, at).audio(id, samples))
    }

    /// Records the session end: why it ended and (optionally) the business outcome.
    #[pyo3(signature = (reason, outcome=None, *, at=None))]
    fn end(&self, reason: String, outcome: Option<String>, at: Option<u64>) -> PyResult<()> {
        let r = Record::SessionEnd(SessionEnd { reason, outcome });
        self.with(|s| view(s, at).record(r))
    }

    /// Counters of this session: records written, dropped, state, first error.
    fn status(&self) -> PyResult<SessionStatus> {
        self.with(|s| s.status().into())
    }

    /// Waits until the writer has taken every record queued so far off the queue (for
    /// simulations that record faster than real time). Awaitable.
    fn drained<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.with(|s| s.clone())?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            s.drained().await;
            Ok(())
        })
    }

    /// Closes the archive and uploads it. Awaitable; returns a `FinishReport` (uploaded
    /// under its key, or left in the spool with the reason, retried later, never lost).
    /// Records given to this session afterwards raise `SessionFinishedError`.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let taken = self
            .inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(s) = taken else {
            return Err(SessionFinishedError::new_err(format!(
                "session {:?}: finish() was already called",
                self.id
            )));
        };
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            s.finish()
                .await
                .map(FinishReport::from)
                .map_err(recorder_error)
        })
    }

    /// Makes this the current session of the running context (asyncio task or thread), for
    /// `calltape.LoggingHandler` and `calltape.current_session()`. Usable as a context
    /// manager to restore the previous one on exit.
    fn activate<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("calltape._context")?
            .call_method1("activate", (slf,))
    }

    fn __repr__(&self) -> String {
        format!("Session(id={:?})", self.id)
    }
}

/// The methods that take `at=`, for `SessionAt`.
const TIMED: [&str; 11] = [
    "turn_start",
    "turn_end",
    "transcript",
    "stage",
    "state",
    "event",
    "log",
    "usage",
    "audio",
    "end",
    "now_ns",
];

/// `session.at(t)`: the session's recording methods, all recording at session time `t`.
#[pyclass(module = "calltape._calltape", frozen)]
pub struct SessionAt {
    session: Py<Session>,
    time_ns: u64,
}

#[pymethods]
impl SessionAt {
    /// The time this view records at (session ns).
    #[getter]
    fn time_ns(&self) -> u64 {
        self.time_ns
    }

    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let session = self.session.bind(py);
        if name == "now_ns" {
            return session.getattr(name);
        }
        if !TIMED.contains(&name) {
            return Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "session.at(t) has no method {name:?}; it has {}",
                TIMED[..10].join(", ")
            )));
        }
        let method = session.getattr(name)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("at", self.time_ns)?;
        py.import("functools")?
            .getattr("partial")?
            .call((method,), Some(&kwargs))
    }

    fn __repr__(&self) -> String {
        format!(
            "SessionAt(session={:?}, time_ns={})",
            self.session.get().id,
            self.time_ns
        )
    }
}

/// Times one pipeline stage; recorded as a `stage_timing` when ended (by `end()`, leaving
/// the `with` block, or garbage collection).
#[pyclass(module = "calltape._calltape", frozen)]
pub struct StageTimer {
    guard: Mutex<Option<rec::StageGuard>>,
}

impl StageTimer {
    fn with(&self, f: impl FnOnce(&mut rec::StageGuard)) {
        if let Some(g) = self
            .guard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            f(g)
        }
    }

    fn take(&self) -> Option<rec::StageGuard> {
        self.guard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[pymethods]
impl StageTimer {
    /// When the stage started (session ns).
    #[getter]
    fn start_ns(&self) -> u64 {
        let mut s = 0;
        self.with(|g| s = g.start_ns());
        s
    }

    /// The LLM's first token arrived (now, or at session time `at`): sets the TTFT.
    #[pyo3(signature = (*, at=None))]
    fn first_token(&self, at: Option<u64>) {
        self.with(|g| match at {
            Some(t) => g.first_token_at(t),
            None => g.first_token(),
        })
    }

    /// The TTS's first audio byte arrived (now, or at `at`): sets the TTFB.
    #[pyo3(signature = (*, at=None))]
    fn first_byte(&self, at: Option<u64>) {
        self.with(|g| match at {
            Some(t) => g.first_byte_at(t),
            None => g.first_byte(),
        })
    }

    /// Prompt and completion tokens of an LLM stage.
    fn tokens(&self, prompt: u64, completion: u64) {
        self.with(|g| g.tokens(prompt, completion))
    }

    /// TTS characters synthesized.
    fn characters(&self, n: u64) {
        self.with(|g| g.characters(n))
    }

    /// The model and provider that ran the stage.
    #[pyo3(signature = (model, provider=""))]
    fn model(&self, model: String, provider: &str) {
        self.with(|g| g.model(model, provider))
    }

    /// The stage was cancelled (e.g. by an interruption).
    fn cancel(&self) {
        self.with(|g| g.cancel())
    }

    /// Sets an attribute (JSON-like value).
    fn attribute(&self, key: String, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = json_value("attribute value", value)?;
        self.with(|g| g.attribute(key, v));
        Ok(())
    }

    /// Ends the stage (now, or at `at`) and records it. Later calls do nothing.
    #[pyo3(signature = (*, at=None))]
    fn end(&self, at: Option<u64>) {
        if let Some(g) = self.take() {
            match at {
                Some(t) => g.end_at(t),
                None => g.end(),
            }
        }
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Ends the stage; an exception leaving the block is noted as attribute `error`
    /// (its type name), and a cancellation marks the stage cancelled.
    fn __exit__(
        &self,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if let Some(t) = exc_type.filter(|t| !t.is_none()) {
            let name: String = t.getattr("__name__")?.extract()?;
            self.with(|g| {
                if name == "CancelledError" {
                    g.cancel();
                }
                g.attribute("error", Value::String(name));
            });
        }
        self.end(None);
        Ok(false)
    }
}
