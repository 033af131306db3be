"""Type stubs of the Rust extension module ``calltape._calltape`` (re-exported by ``calltape``)."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Literal

from typing_extensions import Buffer

from ._context import Activation

Speaker = Literal["user", "agent", "system", "other"]
Seconds = float | int | datetime.timedelta
#: 16-bit signed PCM: bytes, bytearray, memoryview, array('h'), numpy int16 (C-contiguous).
PCM = Buffer
JSON = Any

MAX_SESSION_ID_LEN: int

def validate_session_id(session_id: str) -> None:
    """Raises ``InvalidSessionIdError`` unless ``session_id`` is 1-128 bytes of
    ``A-Z a-z 0-9 . _ : -`` without ``..``."""

def open(location: str, *, store_options: Mapping[str, str] | None = None) -> Call:
    """Opens an archive (path, ``file://`` or object-store URL such as ``s3://bucket/key``).
    Reads only its tail; chunks are fetched as records or audio are asked for. A local file
    without a usable footer (unclosed, crashed) is scanned instead (see ``Call.scanned``).
    Raises ``ArchiveError``."""

class Recorder:
    """Records calls into calltape archives and uploads them to ``destination``
    (``s3://bucket/prefix``, ``gs://``, ``az://``, ``file:///dir``, ``memory://``).

    One per process; ``await recorder.shutdown()`` before exiting. Cloud settings come from
    the environment like the vendors' tools (``AWS_REGION``, ``AWS_ENDPOINT_URL``, ...) and
    from ``store_options`` (object_store names: ``aws_endpoint``, ``aws_allow_http``, ...).
    ``on_error(issue)`` is called (on a thread of its own) once per background problem."""

    def __init__(
        self,
        destination: str,
        *,
        spool_dir: str | None = None,
        redact_pii: bool = False,
        redaction_rules: list[tuple[str, str]] | None = None,
        flush_interval: Seconds | None = None,
        memory_budget: int | None = None,
        upload_deadline: Seconds | None = None,
        on_error: Callable[[Issue], object] | None = None,
        store_options: Mapping[str, str] | None = None,
        queue_capacity: int | None = None,
        retry_interval: float | None = 60.0,
        upload_on_start: bool = True,
        sync_data: bool = True,
        key_template: str | None = None,
    ) -> None: ...
    @property
    def destination(self) -> str:
        """The destination URL."""
    @property
    def spool_dir(self) -> str:
        """The spool directory."""
    def start_session(
        self,
        session_id: str,
        *,
        agent: tuple[str, str] | None = None,
        environment: str | None = None,
        tags: Mapping[str, JSON] | None = None,
        tracks: list[tuple[Speaker, int, int] | tuple[Speaker, int, int, str | None]] | None = None,
        started_at: float | datetime.datetime | None = None,
        manual_clock: bool = False,
    ) -> Session:
        """Starts recording a call. Track ids are 1, 2, ... in the order given."""
    def health(self) -> Health:
        """Open sessions, queued bytes, errors so far."""
    def shutdown(self, deadline: Seconds | None = None) -> Awaitable[ShutdownReport]:
        """Finishes every open session and uploads within ``deadline`` (default 10 s)."""
    def upload_pending(self) -> Awaitable[list[UploadReport]]:
        """Recovers crash leftovers and uploads every archive waiting in the spool."""

class Session:
    """One call being recorded. Recording methods queue their record and return at once.
    Times are session nanoseconds: now by default, or ``at=``."""

    @property
    def id(self) -> str: ...
    @property
    def tracks(self) -> list[tuple[int, Speaker, int, int]]:
        """``(id, role, sample_rate, channels)`` per track."""
    def now_ns(self) -> int:
        """The session clock (ns since the session start)."""
    def at(self, time_ns: int) -> SessionAt:
        """A view whose recording methods record at ``time_ns``."""
    def turn_start(
        self, turn: int, speaker: Speaker = "user", *,
        attributes: Mapping[str, JSON] | None = None, at: int | None = None,
    ) -> None: ...
    def turn_end(
        self, turn: int, *, speaker: Speaker | None = None, interrupted: bool | None = None,
        reported_e2e_ns: int | None = None, attributes: Mapping[str, JSON] | None = None,
        at: int | None = None,
    ) -> None: ...
    def transcript(
        self, speaker: Speaker, text: str, is_final: bool = True, *, turn: int | None = None,
        confidence: float | None = None, language: str | None = None, interrupted: bool = False,
        heard_text: str | None = None, start_ns: int | None = None, end_ns: int | None = None,
        attributes: Mapping[str, JSON] | None = None, at: int | None = None,
    ) -> None: ...
    def stage(self, turn: int, stage: str, *, at: int | None = None) -> StageTimer:
        """Times a stage (``llm``, ``tts``, ``stt``, ``eou``, ``vad``, ``tool``, ``playback``
        or a custom name); a context manager."""
    def stage_timing(
        self, stage: str, start_ns: int, end_ns: int, *, turn: int | None = None,
        ttft_ns: int | None = None, ttfb_ns: int | None = None, prompt_tokens: int | None = None,
        completion_tokens: int | None = None, characters: int | None = None,
        model: str | None = None, provider: str | None = None, cancelled: bool = False,
        attributes: Mapping[str, JSON] | None = None,
    ) -> None: ...
    def tool_call(
        self, name: str, start_ns: int, end_ns: int, *, arguments: JSON = None,
        output: JSON = None, is_error: bool = False, turn: int | None = None,
        call_id: str | None = None, attributes: Mapping[str, JSON] | None = None,
    ) -> None: ...
    def state(self, scope: str, value: JSON, *, turn: int | None = None, at: int | None = None) -> None: ...
    def event(self, name: str, *, turn: int | None = None, at: int | None = None, **attrs: JSON) -> None: ...
    def log(
        self, level: str, message: str, *, target: str = "", turn: int | None = None,
        fields: Mapping[str, JSON] | None = None, at: int | None = None,
    ) -> None: ...
    def usage(
        self, *, prompt_tokens: int = 0, completion_tokens: int = 0, cached_tokens: int = 0,
        stt_audio_seconds: float = 0.0, tts_audio_seconds: float = 0.0, tts_characters: int = 0,
        model: str | None = None, provider: str | None = None, turn: int | None = None,
        at: int | None = None,
    ) -> None: ...
    def audio(self, track: int | Speaker, pcm: PCM, *, at: int | None = None) -> None:
        """16-bit signed PCM (interleaved if multi-channel); ``at``: capture time of the first
        sample. Raises ``AudioFormatError``, ``UnknownTrackError``."""
    def end(self, reason: str, outcome: str | None = None, *, at: int | None = None) -> None: ...
    def status(self) -> SessionStatus: ...
    def drained(self) -> Awaitable[None]:
        """Waits until the writer took every record queued so far."""
    def finish(self) -> Awaitable[FinishReport]:
        """Closes the archive and uploads it."""
    def activate(self) -> Activation:
        """Makes this the current session of the running task or thread."""

class SessionAt:
    """``session.at(t)``: the recording methods of ``Session`` without ``at=``."""

    @property
    def time_ns(self) -> int: ...
    def turn_start(self, turn: int, speaker: Speaker = "user", *, attributes: Mapping[str, JSON] | None = None) -> None: ...
    def turn_end(self, turn: int, *, speaker: Speaker | None = None, interrupted: bool | None = None, reported_e2e_ns: int | None = None, attributes: Mapping[str, JSON] | None = None) -> None: ...
    def transcript(self, speaker: Speaker, text: str, is_final: bool = True, **kwargs: Any) -> None: ...
    def stage(self, turn: int, stage: str) -> StageTimer: ...
    def state(self, scope: str, value: JSON, *, turn: int | None = None) -> None: ...
    def event(self, name: str, *, turn: int | None = None, **attrs: JSON) -> None: ...
    def log(self, level: str, message: str, **kwargs: Any) -> None: ...
    def usage(self, **kwargs: Any) -> None: ...
    def audio(self, track: int | Speaker, pcm: PCM) -> None: ...
    def end(self, reason: str, outcome: str | None = None) -> None: ...
    def now_ns(self) -> int: ...

class StageTimer:
    """Times one stage; recorded when ended (``end()``, the end of a ``with`` block)."""

    @property
    def start_ns(self) -> int: ...
    def first_token(self, *, at: int | None = None) -> None: ...
    def first_byte(self, *, at: int | None = None) -> None: ...
    def tokens(self, prompt: int, completion: int) -> None: ...
    def characters(self, n: int) -> None: ...
    def model(self, model: str, provider: str = "") -> None: ...
    def cancel(self) -> None: ...
    def attribute(self, key: str, value: JSON) -> None: ...
    def end(self, *, at: int | None = None) -> None: ...
    def __enter__(self) -> StageTimer: ...
    def __exit__(self, *exc: object) -> bool: ...

class UploadReport:
    """Where one archive went."""

    session_id: str
    key: str
    bytes: int
    recovered: bool
    uploaded: bool
    spool_path: str | None
    reason: str | None

class FinishReport:
    """What ``await session.finish()`` returns."""

    upload: UploadReport
    dropped_samples: int
    dropped_records: int
    error: str | None

class SessionStatus:
    session_id: str
    state: Literal["recording", "finishing", "finished"]
    degraded: bool
    records_written: int
    dropped_samples: int
    dropped_records: int
    error: str | None

class Health:
    open_sessions: int
    queued_bytes: int
    memory_budget: int
    errors: int
    last_error: str | None

class ShutdownReport:
    sessions: list[FinishReport]
    pending: list[UploadReport]
    timed_out: list[str]

class Issue:
    """A background problem, handed to ``on_error``."""

    session_id: str | None
    message: str

class PipecatMapping:
    """The Pipecat mapping shared with ``calltape import pipecat`` (used by
    ``calltape.pipecat.CalltapeObserver``): frames in, the session's records out."""

    def __init__(self, t0_unix_ns: int) -> None: ...
    def feed(
        self, session: Session, frame: str, t_ns: int, source: str,
        fields: Mapping[str, JSON] | None = None,
    ) -> int:
        """Feeds one frame (time order); queues the records it completes; returns the turn."""
    def finish(self, session: Session, end_ns: int) -> list[tuple[str, str]]:
        """Closes what is open at ``end_ns``; returns the warnings ``(code, message)``."""

class Call:
    """An opened archive. ``header``, ``tracks``, ``totals``, ``turns`` (with ``latency``
    and its ``flags``), ``summary`` are the format's summary as plain dicts and lists."""

    @property
    def location(self) -> str: ...
    @property
    def file_bytes(self) -> int: ...
    @property
    def chunk_count(self) -> int: ...
    @property
    def recovered(self) -> bool: ...
    @property
    def scanned(self) -> str | None:
        """Why a local file was read by a forward scan (no usable footer), or None."""
    @property
    def header(self) -> dict[str, Any]: ...
    @property
    def tracks(self) -> list[dict[str, Any]]: ...
    @property
    def totals(self) -> dict[str, Any]: ...
    @property
    def turns(self) -> list[dict[str, Any]]: ...
    @property
    def duration_ns(self) -> int: ...
    @property
    def recovery(self) -> dict[str, Any] | None: ...
    @property
    def summary(self) -> dict[str, Any]: ...
    def records(self, lane: int | None = None, from_ns: int | None = None, to_ns: int | None = None) -> RecordIter:
        """Records in time order (lane 0: control; a track id: its audio), times in
        ``[from_ns, to_ns]`` (both inclusive)."""
    def audio(self, track: int, from_ns: int = 0, to_ns: int | None = None, *, numpy: bool = False) -> Any:
        """PCM of ``[from_ns, to_ns)`` placed on the session clock (silence filled): bytes, or
        a numpy int16 array with ``numpy=True``."""

class RecordIter(Iterator[CallRecord]):
    def __iter__(self) -> RecordIter: ...
    def __next__(self) -> CallRecord: ...

class CallRecord:
    """One record: ``data`` holds its fields as SPEC.md names them."""

    time_ns: int
    kind: str
    kind_id: int
    lane: int
    turn: int | None
    data: dict[str, Any]
    samples: bytes | None

def _livekit_record_report(
    session: Session, report_json: str, done_turns: int = 0, horizon_ns: int = 0,
    last: bool = True,
) -> tuple[list[tuple[str, str]], int, int]:
    """``calltape.livekit``'s mapping: maps a LiveKit ``SessionReport.to_dict()``-shaped JSON
    text with the importer's mapping and records into ``session`` what was not recorded yet
    at ``(done_turns, horizon_ns)``: the turns that are over, or with ``last`` everything
    left. Returns ``(warnings, done_turns, horizon_ns)``. Raises ``ValueError``,
    ``SessionFinishedError``."""
