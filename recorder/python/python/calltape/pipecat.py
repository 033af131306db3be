"""``calltape.pipecat``: record a live Pipecat pipeline into a calltape archive.

    from calltape.pipecat import CalltapeObserver

    observer = CalltapeObserver(recorder)                  # a calltape.Recorder
    task = PipelineTask(pipeline, params=PipelineParams(enable_metrics=True,
                                                        enable_usage_metrics=True),
                        observers=[observer])
    await PipelineRunner().run(task)                       # the archive is closed and uploaded
    report = await observer.finished()                     # optional: wait for the upload

The observer hands each frame to the Rust mapping that ``calltape import pipecat`` uses for
Whisker recordings (``calltape-import``'s ``pipecat::mapping``, documented there), so a live
recording and an import of the same call agree turn by turn. Turns are numbered as Pipecat's
``TurnTrackingObserver`` numbers them. It also runs Pipecat's own ``UserBotLatencyObserver``
and records the latency breakdown it computes for each turn.

Audio: the user's track is the transport's input audio at its native rate, placed when it was
captured; the bot's track is the audio the output transport sent, at its rate, placed when a
client playing it as it arrives hears it (Pipecat's websocket transports send faster than
real time; what was sent but not yet played when an interruption came is dropped, as the
client drops its buffer).

Nothing here blocks or raises into the pipeline: every recording call queues and returns; an
exception is logged and counted (``errors``), never raised into Pipecat. The session is
finished (closed and uploaded in the background) when the pipeline is torn down.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import enum
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSTextFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pydantic import BaseModel

from ._calltape import FinishReport, PipecatMapping, Recorder, Session

__all__ = ["CalltapeObserver"]

logger = logging.getLogger("calltape.pipecat")

# The frames the mapping reads, and the fields it reads of each (as Whisker serializes them).
_FIELDS: dict[str, tuple[str, ...]] = {
    "StartFrame": ("audio_in_sample_rate", "audio_out_sample_rate"),
    "EndFrame": (),
    "CancelFrame": (),
    "UserStartedSpeakingFrame": (),
    "UserStoppedSpeakingFrame": (),
    "VADUserStartedSpeakingFrame": ("start_secs", "timestamp"),
    "VADUserStoppedSpeakingFrame": ("stop_secs", "timestamp"),
    "BotStartedSpeakingFrame": (),
    "BotStoppedSpeakingFrame": (),
    "InterimTranscriptionFrame": ("text", "user_id", "language"),
    "TranscriptionFrame": ("text", "user_id", "language"),
    "LLMFullResponseStartFrame": (),
    "LLMFullResponseEndFrame": (),
    "LLMTextFrame": ("text",),
    "TTSStartedFrame": (),
    "TTSStoppedFrame": (),
    "TTSTextFrame": ("text",),
    "FunctionCallInProgressFrame": ("function_name", "tool_call_id", "arguments"),
    "FunctionCallResultFrame": ("function_name", "tool_call_id", "arguments", "result", "error"),
    "FunctionCallCancelFrame": ("function_name", "tool_call_id"),
    "MetricsFrame": ("data",),
    "ErrorFrame": ("error", "fatal"),
}
# What Pipecat reports outside frames, fed to the same mapping (see calltape-import).
_LATENCY_BREAKDOWN = "UserBotLatencyBreakdown"
# JSON nesting kept of a tool's arguments or result.
_MAX_DEPTH = 16


def _json(value: Any, depth: int = 0) -> Any:
    """A frame field as JSON, the way Whisker's serializer writes it (enums by name, pydantic
    models dumped, ``None`` left out); anything else by its type name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth >= _MAX_DEPTH:
        return f"<nested deeper than {_MAX_DEPTH}>"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, BaseModel):
        dumped = value.model_dump(exclude_none=True, mode="json")
        dumped["metric"] = type(value).__name__
        return dumped
    if isinstance(value, Mapping):
        return {str(k): _json(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, set)):
        return [_json(v, depth + 1) for v in value if v is not None]
    return f"<type: {type(value).__name__}>"


def _mapped_class(frame: Frame) -> str | None:
    """The frame's class name if the mapping reads it (a subclass counts as its known base)."""
    for cls in type(frame).__mro__:
        if cls.__name__ in _FIELDS:
            return cls.__name__
        if cls is Frame:
            return None
    return None


def _default_session_id() -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"pipecat-{stamp}-{secrets.token_hex(3)}"


def _pipecat_version() -> str:
    try:
        return version("pipecat-ai")
    except PackageNotFoundError:
        return ""


class CalltapeObserver(BaseObserver):
    """Records the pipeline it observes into a calltape session.

    ``recorder``: a ``calltape.Recorder``. ``session_id``: the archive's id (default
    ``pipecat-<UTC time>-<random>``). ``agent``: ``(name, version)`` for the header (default
    ``("pipecat", <pipecat-ai version>)``). ``tags``: header tags. ``record_audio``: record both
    tracks (default True). ``on_session(session)``: called once the session is started (at the
    pipeline's ``StartFrame``), e.g. to add your own records.
    """

    def __init__(
        self,
        recorder: Recorder,
        session_id: str | None = None,
        *,
        agent: tuple[str, str] | None = None,
        environment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        record_audio: bool = True,
        on_session: Callable[[Session], object] | None = None,
        **kwargs: Any,
    ) -> None:
        # every push: spoken text counts when the output transport passes it on (as it plays)
        super().__init__(observe_every_push=True, **kwargs)
        self._recorder = recorder
        self._session_id = session_id or _default_session_id()
        self._agent = agent or ("pipecat", _pipecat_version())
        self._environment = environment
        self._tags = dict(tags or {})
        self._record_audio = record_audio
        self._on_session = on_session
        self._session: Session | None = None
        self._mapping: PipecatMapping | None = None
        # session ns minus pipeline-clock ns, once the pipeline clock runs
        self._clock_offset: int | None = None
        self._in_rate = 0
        self._out_rate = 0
        # bot audio sent but not yet played: (play time, pcm) in play order
        self._unplayed: collections.deque[tuple[int, bytes]] = collections.deque()
        self._playhead = 0
        self._turn = 0
        self._finish: asyncio.Future[FinishReport] | None = None
        self._closed = False
        #: Exceptions caught (logged, never raised into Pipecat).
        self.errors = 0
        #: Audio frames not recorded (sample rate or channel count other than the track's).
        self.skipped_audio_frames = 0
        # Pipecat's own latency breakdown, as its UserBotLatencyObserver computes it
        self._latency = UserBotLatencyObserver()
        self._latency.add_event_handler("on_latency_breakdown", self._on_latency_breakdown)

    @property
    def session(self) -> Session | None:
        """The session being recorded (``None`` before the pipeline starts)."""
        return self._session

    @property
    def turn(self) -> int:
        """The turn in progress, numbered as Pipecat's turn tracking numbers it."""
        return self._turn

    async def finished(self) -> FinishReport | None:
        """Waits until the archive is closed and uploaded (after the pipeline ended)."""
        if self._finish is None:
            return None
        return await self._finish

    # ---- Pipecat hooks ---------------------------------------------------------------------

    async def on_push_frame(self, data: FramePushed) -> None:
        try:
            await self._observe(data)
        except Exception:  # never into Pipecat
            self.errors += 1
            logger.exception("calltape: recording a Pipecat frame failed")

    async def on_pipeline_started(self) -> None:
        try:
            await self._latency.on_pipeline_started()
        except Exception:
            self.errors += 1
            logger.exception("calltape: Pipecat's latency observer failed")

    async def cleanup(self) -> None:
        try:
            self._close()
        except Exception:
            self.errors += 1
            logger.exception("calltape: finishing the Pipecat session failed")
        await self._latency.cleanup()
        await super().cleanup()

    # ---- the recording ---------------------------------------------------------------------

    def _now(self, data: FramePushed) -> int:
        """Session ns of the push, from the pipeline clock's timestamp when it runs."""
        session = self._session
        assert session is not None
        if data.timestamp > 0:
            if self._clock_offset is None:
                clock = data.source.get_clock()
                self._clock_offset = session.now_ns() - clock.get_time()
            return max(0, data.timestamp + self._clock_offset)
        return session.now_ns()

    async def _observe(self, data: FramePushed) -> None:
        frame = data.frame
        if self._closed:
            return
        if self._session is None:
            if not isinstance(frame, StartFrame):
                return
            self._start(frame)
        if isinstance(frame, TTSTextFrame):
            # spoken text: when the output transport passes it on, as it plays
            if isinstance(data.source, BaseOutputTransport):
                self._feed("TTSTextFrame", self._now(data), data.source.name, frame)
            if data.first_push:
                await self._latency.on_push_frame(data)
            return
        if not data.first_push:
            return
        t = self._now(data)
        if isinstance(frame, (InputAudioRawFrame, OutputAudioRawFrame)):
            if self._record_audio:
                self._audio(data, t)
        else:
            if self._unplayed:
                self._play_until(t)
            name = _mapped_class(frame)
            if name is not None:
                self._feed(name, t, data.source.name, frame)
            if isinstance(frame, InterruptionFrame):
                self._drop_unplayed(t)
        await self._latency.on_push_frame(data)

    def _start(self, frame: StartFrame) -> None:
        # read past the deprecation warning of these fields (they still carry the rates)
        self._in_rate = object.__getattribute__(frame, "audio_in_sample_rate")
        self._out_rate = object.__getattribute__(frame, "audio_out_sample_rate")
        tracks = [("user", self._in_rate, 1), ("agent", self._out_rate, 1)]
        self._session = self._recorder.start_session(
            self._session_id,
            agent=self._agent,
            environment=self._environment,
            tags={"source": "pipecat", **self._tags},
            tracks=tracks if self._record_audio else None,
        )
        t0_unix_ns = time.time_ns() - self._session.now_ns()
        self._mapping = PipecatMapping(t0_unix_ns)
        if self._on_session is not None:
            self._on_session(self._session)

    def _feed(self, name: str, t: int, source: str, frame: Any) -> None:
        fields = {}
        for key in _FIELDS[name]:
            try:
                # the raw field, as Whisker reads it (a deprecated field warns on getattr)
                value = object.__getattribute__(frame, key)
            except AttributeError:
                value = None
            if value is not None:
                fields[key] = _json(value)
        assert self._mapping is not None and self._session is not None
        self._turn = self._mapping.feed(self._session, name, t, source, fields)

    async def _on_latency_breakdown(self, _observer: Any, breakdown: BaseModel) -> None:
        try:
            if self._closed or self._session is None:
                return
            fields = breakdown.model_dump(exclude_none=True, mode="json")
            assert self._mapping is not None
            self._turn = self._mapping.feed(
                self._session, _LATENCY_BREAKDOWN, self._session.now_ns(), "", fields
            )
        except Exception:
            self.errors += 1
            logger.exception("calltape: recording Pipecat's latency breakdown failed")

    def _audio(self, data: FramePushed, t: int) -> None:
        frame = data.frame
        session = self._session
        assert session is not None
        if frame.num_channels != 1:
            self.skipped_audio_frames += 1
            return
        if isinstance(frame, InputAudioRawFrame):
            if not isinstance(data.source, BaseInputTransport) or frame.sample_rate != self._in_rate:
                if isinstance(data.source, BaseInputTransport):
                    self.skipped_audio_frames += 1
                return
            duration = len(frame.audio) // 2 * 1_000_000_000 // self._in_rate
            session.audio("user", frame.audio, at=max(0, t - duration))
            return
        # bot audio: only as the output transport sent it
        if not isinstance(data.source, BaseOutputTransport):
            return
        if frame.sample_rate != self._out_rate:
            self.skipped_audio_frames += 1
            return
        duration = len(frame.audio) // 2 * 1_000_000_000 // self._out_rate
        # the push follows the write; a client plays what it gets in order, without gaps
        sent = max(0, t - duration)
        at = max(sent, self._playhead)
        self._playhead = at + duration
        self._unplayed.append((at, frame.audio))
        self._play_until(t)

    def _play_until(self, t: int) -> None:
        """Records the bot audio whose playing started by ``t``."""
        assert self._session is not None
        while self._unplayed and self._unplayed[0][0] <= t:
            at, pcm = self._unplayed.popleft()
            self._session.audio("agent", pcm, at=at)

    def _drop_unplayed(self, t: int) -> None:
        self._play_until(t)
        if self._unplayed:
            self._unplayed.clear()
        self._playhead = t

    def _close(self) -> None:
        if self._closed or self._session is None:
            return
        self._closed = True
        session = self._session
        end = session.now_ns()
        while self._unplayed:
            at, pcm = self._unplayed.popleft()
            session.audio("agent", pcm, at=at)
        assert self._mapping is not None
        for code, message in self._mapping.finish(session, end):
            logger.warning("calltape: %s: %s", code, message)
        self._finish = asyncio.ensure_future(session.finish())
