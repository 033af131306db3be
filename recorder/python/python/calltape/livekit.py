"""Records LiveKit Agents calls live, in-process: ``calltape.livekit.record(session, recorder)``.

    from calltape import Recorder, livekit

    recorder = Recorder("s3://my-bucket/calls")
    session = AgentSession(stt=..., llm=..., tts=..., vad=...)
    livekit.record(session, recorder)            # before or after session.start()
    await session.start(agent=MyAgent(), room=ctx.room)

What is recorded, on the session clock (0 = when ``record`` was called):

- audio, both tracks at their native rates, tapped where LiveKit's own RecorderIO taps them:
  ``session.input.audio`` is wrapped (each frame placed at its arrival time minus its
  duration, kept sample-contiguous within 100 ms of drift, like RecorderIO; frames that
  arrive later than that are held until the burst after a stall of the agent's loop catches
  up, so a stall does not shift the rest of the call) and
  ``session.output.audio`` is wrapped (the frames captured for a playback segment are placed
  when the sink reports them played: ``playback_progressed`` stretches, else the first
  ``playback_position`` seconds from ``playback_started``; so an interrupted segment holds
  exactly what was heard). Each playback also becomes ``playback_started`` /
  ``playback_finished`` events (``interrupted``, ``playback_position``,
  ``synchronized_transcript``).
- ``session.userdata`` and the current agent's name and instructions as ``state`` records
  (scopes ``userdata`` and ``agent``) after every agent reply, so the replayer's state diff
  works.
- everything else through ONE mapping shared with ``calltape import livekit``: the session's
  events (every ``AgentSession`` event but ``metrics_collected``, dumped with
  ``model_dump()``, exactly as ``SessionReport.to_dict()`` writes them) and its chat history
  (``ChatContext.to_dict(exclude_timestamp=False)``, with each message's ``metrics``) form a
  report of LiveKit's own shape, and the importer's mapping
  (``calltape_import::livekit::from_report``, reached through the existing ``_calltape``
  extension) turns it into turns, transcripts (interim and final, with confidence and
  language), stages (eou, stt, llm ttft, tts ttfb, playback), tool calls (arguments, output,
  is_error), interruptions, handoffs, errors, usage per model and the close reason. The
  mapping table is in ``replayer/import/src/livekit/mod.rs``. This is how a live recording and
  an imported report of the same call agree turn by turn.

Audio and state snapshots are recorded as they happen. Each event is dumped once, when it
arrives; each time a user turn starts (its message is added to the chat), the report so far
is mapped and the records of the turns that are over are written
(``calltape_import::livekit::settle``), so a crash loses at most the turn in progress. When
the session closes (its ``close`` event) the rest is written (the report-wide records and the
mapping's warnings too), then the archive is finished and uploaded;
``ctx.add_shutdown_callback`` finishes it when the job ends without a close. A record the
mapping places in a turn already written (an event emitted long after its ``created_at``)
is not written again.

Nothing here blocks or slows the agent's loop: recording methods queue and return, the
mapping runs in a worker thread, and every callback is wrapped so an exception is logged
(logger ``calltape.livekit``) and counted (``Recording.errors``), never raised into the agent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.voice import io as lk_io
from livekit.agents.voice.events import EventTypes

from . import _calltape

logger = logging.getLogger("calltape.livekit")

__all__ = ["Recording", "record"]

#: Drift (s) between a frame's arrival-derived time and the end of the run before it, below
#: which the frame continues the run sample-exactly (LiveKit's RecorderIO uses the same).
RESYNC_TOLERANCE = 0.1
#: Arrival (s) over which a user frame must stay late before it counts as a gap in the stream
#: rather than the burst after a stall of the agent's loop (which catches up in far less).
STALL_HOLD = 0.3
#: Most audio (s) held while telling a stall from a gap: a longer backlog is placed as a gap.
MAX_HELD_SECONDS = 10
#: Events the report leaves out ("metrics are too noisy", report.py); left out here too.
SKIPPED_EVENTS = ("metrics_collected",)


class Recording:
    """One AgentSession being recorded; returned by :func:`record`."""

    def __init__(
        self, agent_session: Any, calltape_session: Any, t0: float, rates: dict[str, int]
    ) -> None:
        self._agent_session = agent_session
        self.session = calltape_session
        self._t0 = t0
        self._rates = rates
        self._dumps: list[dict[str, Any]] = []  # the events as the report holds them
        self._closed = asyncio.Event()  # the session's close event was seen
        self._failed: set[str] = set()  # what failed so far (logged with a traceback once)
        #: Turns written so far, and the session ns before which the records in no turn are.
        self.done_turns = 0
        self._horizon_ns = 0
        self._mapping: asyncio.Future[None] | None = None
        #: Times the report so far was mapped (at each user turn, and at the close).
        self.mappings = 0
        #: Exceptions caught inside the integration (logged, never raised into the agent).
        self.errors = 0
        #: Frames at a rate other than their track's, resampled by LiveKit's resampler.
        self.resampled_frames = 0
        #: Mapping warnings ``(code, message)`` of the close.
        self.warnings: list[tuple[str, str]] = []
        self._input_tap: _TapInput | None = None
        self._output_tap: _TapOutput | None = None
        self._finishing: asyncio.Task[Any] | None = None
        self._report: Any = None
        self._listeners: list[tuple[str, Callable[..., None]]] = []
        self._resamplers: dict[tuple[str, int], rtc.AudioResampler] = {}

    # -- time ---------------------------------------------------------------------------------

    def ns(self, wall: float) -> int:
        """Session ns of a wall-clock time (``time.time()`` seconds), at least 0."""
        return max(0, round((wall - self._t0) * 1e9))

    # -- guarding -----------------------------------------------------------------------------

    def guarded(self, what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with every exception logged and counted instead of raised."""

        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                self.errors += 1
                if what not in self._failed:
                    self._failed.add(what)
                    logger.exception(
                        "calltape.livekit: %s failed (the agent is not affected; further "
                        "failures of this are counted in Recording.errors)", what)
                return None

        return run

    # -- taps ---------------------------------------------------------------------------------

    def attach_io(self) -> None:
        """Wraps ``session.input.audio`` / ``session.output.audio`` where our taps are not in
        their chains (not yet, or replaced since, e.g. by RoomIO during ``start()``)."""
        s = self._agent_session
        if s.input.audio is not None and not _in_chain(s.input.audio, self._input_tap, "source"):
            tap = _TapInput(self, s.input.audio)
            if self._input_tap is not None:
                tap._run = self._input_tap._run
            self._input_tap = tap
            s.input.audio = tap
        if s.output.audio is not None and not _in_chain(
            s.output.audio, self._output_tap, "next_in_chain"
        ):
            self._output_tap = _TapOutput(self, s.output.audio)
            s.output.audio = self._output_tap

    def audio(self, track: str, started_at: float, frame: rtc.AudioFrame, run: _Run) -> None:
        """Queues ``frame`` (began at wall time ``started_at``) on ``track``."""
        rate = self._rates[track]
        if frame.sample_rate != rate or frame.num_channels != 1:
            frame = self._convert(track, frame, rate)
            if frame is None:
                return
        for at, pcm in run.place(started_at, bytes(frame.data), frame.samples_per_channel, rate):
            self.session.audio(track, pcm, at=self.ns(at))

    def _convert(self, track: str, frame: rtc.AudioFrame, rate: int) -> rtc.AudioFrame | None:
        """``frame`` as mono at the track's ``rate`` (channels averaged, LiveKit's resampler);
        None while the resampler still holds the samples back."""
        if self.resampled_frames == 0:
            logger.warning(
                "calltape.livekit: %s audio arrives at %d Hz x %d, its track is %d Hz mono: "
                "converted with LiveKit's resampler (pass %s_sample_rate=%d to record it "
                "sample for sample)",
                track, frame.sample_rate, frame.num_channels, rate, track, frame.sample_rate,
            )
        self.resampled_frames += 1
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        mono = rtc.AudioFrame(pcm.tobytes(), frame.sample_rate, 1, len(pcm))
        if frame.sample_rate == rate:
            return mono
        key = (track, frame.sample_rate)
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = rtc.AudioResampler(input_rate=frame.sample_rate, output_rate=rate,
                                           num_channels=1)
            self._resamplers[key] = resampler
        return _joined(resampler.push(mono), rate)

    def end_run(self, track: str, run: _Run) -> None:
        """The end of a contiguous stretch of ``track``: what a resampler still holds goes
        right after it."""
        rate = self._rates[track]
        for at, pcm in run.flush(rate):
            self.session.audio(track, pcm, at=self.ns(at))
        for key in [k for k in self._resamplers if k[0] == track]:
            tail = _joined(self._resamplers.pop(key).flush(), rate)
            if tail is not None and run.start is not None:
                end = run.start + run.samples / rate
                for at, pcm in run.place(end, bytes(tail.data), tail.samples_per_channel, rate):
                    self.session.audio(track, pcm, at=self.ns(at))
        run.end()

    @property
    def user_audio_resyncs(self) -> int:
        """Times the user track's contiguous run was restarted (a gap in the stream: arrival
        drifted > 100 ms and stayed)."""
        return self._input_tap._run.resyncs if self._input_tap is not None else 0

    @property
    def user_audio_stalls(self) -> int:
        """Stalls of the agent's loop the user track rode out (frames arrived > 100 ms late,
        then caught up): placed sample-contiguously, as captured."""
        return self._input_tap._run.stalls if self._input_tap is not None else 0

    # -- events -------------------------------------------------------------------------------

    def on_event(self, ev: Any) -> None:
        if self._report is not None:
            return
        kind = getattr(ev, "type", "")
        if kind not in SKIPPED_EVENTS:
            self._dumps.append(ev.model_dump())
        self.attach_io()
        if kind == "conversation_item_added":
            item = getattr(ev, "item", None)
            role = getattr(item, "role", "") if getattr(item, "type", "") == "message" else ""
            if role == "assistant":
                self.snapshot(getattr(ev, "created_at", time.time()))
            elif role == "user":
                self.map_soon(last=False)
        elif kind == "close":
            self._closed.set()
            self.finish_soon()

    def snapshot(self, wall: float) -> None:
        """``userdata`` and the current agent as state records at ``wall``."""
        s = self._agent_session
        at = self.ns(wall)
        try:
            userdata = s.userdata
        except ValueError:  # not set
            userdata = None
        if userdata is not None:
            self.session.state("userdata", _plain(userdata), at=at)
        try:
            agent = s.current_agent
        except RuntimeError:  # not running
            return
        instructions = getattr(agent, "instructions", None)
        self.session.state(
            "agent",
            {"name": getattr(agent, "label", type(agent).__name__), "instructions": str(instructions)},
            at=at,
        )

    # -- the close ----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The session so far as LiveKit's ``SessionReport.to_dict()`` shapes it, time 0 =
        ours."""
        s = self._agent_session
        events = list(self._dumps)
        usage = None
        try:
            summaries = s.usage.model_usage
            if summaries:
                usage = [{"type": u.type, **u.model_dump(exclude_defaults=True)} for u in summaries]
        except Exception:
            self.errors += 1
            logger.exception("calltape.livekit: reading session.usage failed")
        return {
            "events": events,
            "audio_recording_path": None,
            "audio_recording_started_at": self._t0,
            "chat_history": s.history.to_dict(exclude_timestamp=False),
            "timestamp": time.time(),
            "usage": usage,
        }

    def map_soon(self, *, last: bool) -> asyncio.Future[None]:
        """Maps the report so far in a worker thread, after the mapping before it, and writes
        what it may (``last``: everything left)."""
        report = self.report()  # on the loop: the session's state is read here only
        previous = self._mapping

        async def run() -> None:
            if previous is not None:
                await asyncio.shield(previous)
            try:
                text = json.dumps(report, default=str)
                warnings, self.done_turns, self._horizon_ns = await asyncio.to_thread(
                    _calltape._livekit_record_report, self.session, text, self.done_turns,
                    self._horizon_ns, last,
                )
                self.mappings += 1
                if last:
                    self.warnings = warnings
            except Exception:
                self.errors += 1
                logger.exception("calltape.livekit: mapping the session's events failed")

        self._mapping = asyncio.ensure_future(run())
        return self._mapping

    def finish_soon(self) -> None:
        """Starts finishing in a task of its own (the caller returns at once)."""
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self.aclose())

    async def aclose(self) -> None:
        """Maps the session's events, finishes the archive and uploads it. Idempotent; never
        raises (failures are logged and counted)."""
        if self._report is not None:
            return
        self._report = {}
        for name, fn in self._listeners:
            try:
                self._agent_session.off(name, fn)
            except Exception:
                pass
        try:
            if self._output_tap is not None:
                self._output_tap.place_pending()
            if self._input_tap is not None:
                self.end_run("user", self._input_tap._run)
            await self.map_soon(last=True)
        except Exception:
            self.errors += 1
            logger.exception("calltape.livekit: mapping the session's events failed")
        try:
            self._report = await self.session.finish()
        except Exception:
            self.errors += 1
            logger.exception("calltape.livekit: finishing the archive failed")

    async def on_job_shutdown(self) -> None:
        """The job's shutdown callback: the session closes in a callback of its own, run
        alongside this one; its close event finishes the archive. Without one within 10 s,
        the archive is finished with what was recorded."""
        try:
            await asyncio.wait_for(self._closed.wait(), 10)
        except asyncio.TimeoutError:
            logger.warning("calltape.livekit: the job ended without the session's close event; "
                           "finishing the archive with what was recorded")
        await self.finished()

    async def finished(self) -> Any:
        """Waits until the archive is finished; returns the ``FinishReport`` (or None)."""
        if self._finishing is None:
            self.finish_soon()
        assert self._finishing is not None
        await asyncio.shield(self._finishing)
        return self._report or None


class _Run:
    """A contiguous stretch of one track: places frames sample-exactly after each other while
    their wall times agree within RESYNC_TOLERANCE; a frame further off starts a new run at
    its own time (``resyncs`` counts them).

    A run clocked by arrival (the user's microphone: its frames carry no capture time) tells
    a stall of the agent's loop from a real gap before it moves. Frames that arrive late are
    held: after a stall the backlog comes in a burst, so the lateness shrinks by a frame per
    frame and the held frames continue the run (``stalls`` counts them); after a gap (the
    stream stopped, then resumed in real time) the lateness stays, and once the held frames
    span STALL_HOLD of arrival the run restarts at the first of them."""

    def __init__(self, *, clocked_by_arrival: bool = False) -> None:
        self.start: float | None = None
        self.samples = 0
        self.resyncs = 0
        self.stalls = 0
        self._by_arrival = clocked_by_arrival
        self._held: list[tuple[float, bytes, int]] = []  # (started_at, pcm, samples)
        self._held_samples = 0

    def place(self, started_at: float, pcm: bytes, samples: int,
              rate: int) -> list[tuple[float, bytes]]:
        """Where ``pcm`` (``samples`` long, began at wall time ``started_at``) and any frames
        held before it go: a list of (wall time, pcm), empty while frames are held."""
        if self.start is not None and (
            self._held or (self._by_arrival and started_at - self._end(rate) > RESYNC_TOLERANCE)
        ):
            return self._hold(started_at, pcm, samples, rate)
        expected = None if self.start is None else self._end(rate)
        if expected is None or abs(started_at - expected) > RESYNC_TOLERANCE:
            if expected is not None:
                self.resyncs += 1
            self.start, self.samples = started_at, 0
            expected = started_at
        self.samples += samples
        return [(expected, pcm)]

    def flush(self, rate: int) -> list[tuple[float, bytes]]:
        """Frames still held (the stream ended while they were late): placed where they
        arrived."""
        return self._release(rate, resync=True) if self._held else []

    def end(self) -> None:
        self.start, self.samples = None, 0
        self._held, self._held_samples = [], 0

    def _end(self, rate: int) -> float:
        assert self.start is not None
        return self.start + (self.samples + self._held_samples) / rate

    def _hold(self, started_at: float, pcm: bytes, samples: int,
              rate: int) -> list[tuple[float, bytes]]:
        late = started_at - self._end(rate)
        self._held.append((started_at, pcm, samples))
        self._held_samples += samples
        if late <= RESYNC_TOLERANCE:
            self.stalls += 1
            return self._release(rate, resync=False)
        if (started_at - self._held[0][0] >= STALL_HOLD
                or self._held_samples >= MAX_HELD_SECONDS * rate):
            return self._release(rate, resync=True)
        return []

    def _release(self, rate: int, *, resync: bool) -> list[tuple[float, bytes]]:
        held, self._held, self._held_samples = self._held, [], 0
        if resync:
            self.resyncs += 1
            self.start, self.samples = held[0][0], 0
        assert self.start is not None
        out = []
        for _, pcm, samples in held:
            out.append((self.start + self.samples / rate, pcm))
            self.samples += samples
        return out


class _TapInput(lk_io.AudioInput):
    """``session.input.audio`` with every frame also queued on the user track."""

    def __init__(self, rec: Recording, source: lk_io.AudioInput) -> None:
        super().__init__(label="calltape", source=source)
        self._rec = rec
        self._run = _Run(clocked_by_arrival=True)
        self._tap = rec.guarded("recording user audio", self._record)

    def _record(self, frame: rtc.AudioFrame) -> None:
        # frames carry no capture time: arrival is the clock (as in RecorderIO)
        self._rec.audio("user", time.time() - frame.duration, frame, self._run)

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self

    async def __anext__(self) -> rtc.AudioFrame:
        assert self.source is not None
        frame = await self.source.__anext__()
        self._tap(frame)
        return frame


class _TapOutput(lk_io.AudioOutput):
    """``session.output.audio`` with what was played (heard) queued on the agent track."""

    def __init__(self, rec: Recording, sink: lk_io.AudioOutput) -> None:
        super().__init__(
            label="calltape",
            next_in_chain=sink,
            capabilities=lk_io.AudioOutputCapabilities(pause=True),
        )
        self._rec = rec
        self._run = _Run()
        self._frames: list[rtc.AudioFrame] = []
        self._started_at: float | None = None
        self._reported = False
        self._capture = rec.guarded("capturing agent audio", lambda f: self._frames.append(f))
        self._started = rec.guarded("recording playback start", self._on_started)
        self._progressed = rec.guarded("recording played audio", self._place)
        self._finished = rec.guarded("recording playback end", self._on_finished)

    @property
    def sample_rate(self) -> int | None:
        if self._sample_rate is not None:
            return self._sample_rate
        return self.next_in_chain.sample_rate if self.next_in_chain else None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if self.next_in_chain:
            await self.next_in_chain.capture_frame(frame)
        await super().capture_frame(frame)
        self._capture(frame)

    def flush(self) -> None:
        super().flush()
        if self.next_in_chain:
            self.next_in_chain.flush()

    def clear_buffer(self) -> None:
        if self.next_in_chain:
            self.next_in_chain.clear_buffer()

    def on_playback_started(self, *, created_at: float) -> None:
        super().on_playback_started(created_at=created_at)
        self._started(created_at)

    def on_playback_progressed(self, *, started_at: float, offset: float, duration: float) -> None:
        super().on_playback_progressed(started_at=started_at, offset=offset, duration=duration)
        self._reported = True
        self._progressed(started_at, offset, duration)

    def on_playback_finished(
        self,
        *,
        playback_position: float,
        interrupted: bool,
        synchronized_transcript: str | None = None,
    ) -> None:
        super().on_playback_finished(
            playback_position=playback_position,
            interrupted=interrupted,
            synchronized_transcript=synchronized_transcript,
        )
        self._finished(playback_position, interrupted, synchronized_transcript)

    def _on_started(self, created_at: float) -> None:
        if self._started_at is None:
            self._started_at = created_at
            self._rec.session.event("playback_started", at=self._rec.ns(created_at))

    def _on_finished(self, position: float, interrupted: bool, transcript: str | None) -> None:
        now = time.time()
        if not self._reported and self._frames:
            # the sink reports no stretches: its start and position describe the segment
            start = self._started_at if self._started_at is not None else now - position
            self._place(start, 0.0, position)
        self._rec.session.event(
            "playback_finished",
            at=self._rec.ns(now),
            interrupted=interrupted,
            playback_position=position,
            synchronized_transcript=transcript,
        )
        self._frames = []
        self._started_at = None
        self._reported = False
        self._rec.end_run("agent", self._run)

    def _place(self, started_at: float, offset: float, duration: float) -> None:
        """Queues the captured audio of ``[offset, offset + duration)`` as played at
        ``started_at``."""
        if not self._frames or duration <= 0:
            return
        pcm = b"".join(bytes(f.data) for f in self._frames)
        rate, channels = self._frames[0].sample_rate, self._frames[0].num_channels
        width = 2 * channels
        lo = round(offset * rate) * width
        hi = min(round((offset + duration) * rate) * width, len(pcm))
        if hi <= lo:
            return
        chunk = pcm[lo:hi]
        frame = rtc.AudioFrame(chunk, rate, channels, len(chunk) // width)
        self._rec.audio("agent", started_at, frame, self._run)

    def place_pending(self) -> None:
        """At the close: a segment still playing is placed as far as it is known to have
        played (from its start until now)."""
        if self._frames and self._started_at is not None and not self._reported:
            self._place(self._started_at, 0.0, time.time() - self._started_at)
            self._frames = []


def _joined(frames: list[rtc.AudioFrame], rate: int) -> rtc.AudioFrame | None:
    if not frames:
        return None
    data = b"".join(bytes(f.data) for f in frames)
    return rtc.AudioFrame(data, rate, 1, len(data) // 2)


def _in_chain(head: Any, tap: Any, link: str) -> bool:
    """Is ``tap`` in the I/O chain from ``head`` (following ``link``)?"""
    seen = 0
    while head is not None and tap is not None and seen < 32:
        if head is tap:
            return True
        head = getattr(head, link, None)
        seen += 1
    return False


def _plain(value: Any) -> Any:
    """``value`` as JSON-like data (dataclasses, pydantic models, mappings, sequences; other
    objects by ``repr``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif hasattr(value, "model_dump"):
        value = value.model_dump()
    return json.loads(json.dumps(value, default=repr))


def _native_rate(chain: Any) -> int | None:
    """The first ``sample_rate`` along an I/O chain (``source`` / ``next_in_chain``)."""
    seen = 0
    while chain is not None and seen < 32:
        # RoomIO's input keeps its rate in `_sample_rate`
        rate = getattr(chain, "sample_rate", None) or getattr(chain, "_sample_rate", None)
        if isinstance(rate, int) and rate > 0:
            return rate
        chain = getattr(chain, "source", None) or getattr(chain, "next_in_chain", None)
        seen += 1
    return None


def record(
    session: Any,
    recorder: Any,
    session_id: str | None = None,
    *,
    agent: tuple[str, str] | None = None,
    environment: str | None = None,
    tags: dict[str, Any] | None = None,
    user_sample_rate: int | None = None,
    agent_sample_rate: int | None = None,
    job_context: Any = None,
) -> Recording:
    """Records ``session`` (a ``livekit.agents.AgentSession``) into ``recorder``; call it before
    or after ``session.start()``.

    ``session_id`` defaults to the job id (inside a job) or ``livekit-<unix time>``. The audio
    tracks are ``user`` and ``agent`` at ``user_sample_rate`` / ``agent_sample_rate``, by
    default the rates the session's audio input and output declare (24000, RoomIO's default,
    when they declare none or do not exist yet; audio at another rate is resampled, with a
    warning, so pass the rates when you attach before ``start()`` with other room options). Inside a job (or with
    ``job_context``) the archive is also finished by the job's shutdown callback.
    """
    from livekit.agents import get_job_context

    ctx = job_context if job_context is not None else get_job_context(required=False)
    t0 = time.time()
    if session_id is None:
        job_id = getattr(getattr(ctx, "job", None), "id", None)
        session_id = job_id or f"livekit-{int(t0 * 1000)}"
    user_rate = user_sample_rate or _native_rate(session.input.audio) or 24000
    agent_rate = agent_sample_rate or _native_rate(session.output.audio) or 24000
    from livekit.agents import __version__ as sdk_version

    all_tags = {"framework": "livekit-agents", "livekit.sdk_version": sdk_version}
    all_tags.update(tags or {})
    cs = recorder.start_session(
        session_id,
        agent=agent or ("livekit-agents", sdk_version),
        environment=environment,
        tags=all_tags,
        tracks=[("user", user_rate, 1, "user"), ("agent", agent_rate, 1, "agent")],
        started_at=t0,
    )
    rec = Recording(session, cs, t0, {"user": user_rate, "agent": agent_rate})
    # events emitted before attaching: the session's own record of them (what its report holds)
    for ev in list(getattr(session, "_recorded_events", []) or []):
        rec.guarded("reading earlier events", rec.on_event)(ev)
    on_event = rec.guarded("recording an event", rec.on_event)
    for name in typing.get_args(EventTypes):
        if name not in SKIPPED_EVENTS:
            session.on(name, on_event)
            rec._listeners.append((name, on_event))
    rec.attach_io()
    if ctx is not None:
        ctx.add_shutdown_callback(rec.on_job_shutdown)
    return rec
