"""One LiveKit Agents session sent to an observability endpoint by livekit-agents' own code.

Run as a script (a fresh process: LiveKit's telemetry sets process-wide OpenTelemetry
providers): ``python livekit_session_upload.py OUT_DIR OBSERVABILITY_URL JOB_ID``, with
LIVEKIT_API_KEY / LIVEKIT_API_SECRET in the environment.

It builds a real ``SessionReport`` (ChatContext items with their metrics, session events, the
session options with recording on) and a stereo Ogg Opus recording encoded the way
``RecorderIO`` encodes it (PyAV, ogg container, opus, 48 kHz stereo: user left, agent right);
configures the job's cloud telemetry with ``_setup_cloud_tracer`` (the OTLP span and log
exporters, pointed at LIVEKIT_OBSERVABILITY_URL); emits the session's spans through the
framework's tracer and a log line through Python logging; then does what ``JobContext``
does at session end: ``_upload_session_report`` (the session-report logs and the multipart
recording upload), then ``_shutdown_telemetry`` (flush). It writes ``session_report.json``
(``report.to_dict()``) and ``audio.ogg`` to OUT_DIR for ``calltape import livekit``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import aiohttp
import av
import numpy as np
from opentelemetry import trace as trace_api

from livekit.agents import AgentSession, llm
from livekit.agents.observability import Tagger
from livekit.agents.telemetry import trace_types
from livekit.agents.telemetry.traces import (
    _setup_cloud_tracer,
    _shutdown_telemetry,
    _upload_session_report,
    tracer,
)
from livekit.agents.voice import events as ev
from livekit.agents.voice.agent_session import _resolve_recording_options
from livekit.agents.voice.report import SessionReport

RATE = 48_000
SECONDS = 8.0


def write_ogg(path: Path, user: list[tuple[float, float]], agent: list[tuple[float, float]]) -> None:
    """Stereo Ogg Opus like RecorderIO writes: tones where each side speaks, silence elsewhere."""
    n = int(SECONDS * RATE)
    t = np.arange(n) / RATE
    block = np.zeros((2, n), dtype=np.float32)
    for ch, spans, hz in ((0, user, 220.0), (1, agent, 330.0)):
        for a, b in spans:
            i, j = int(a * RATE), int(b * RATE)
            block[ch, i:j] = 0.3 * np.sin(2 * np.pi * hz * t[i:j])
    try:
        av.Codec("libopus", "w")
        codec = "libopus"
    except av.codec.codec.UnknownCodecError:
        codec = "opus"
    with av.open(str(path), mode="w", format="ogg") as container:
        stream = container.add_stream(codec, rate=RATE, layout="stereo")
        if codec == "opus":
            stream.codec_context.options["strict"] = "-2"
        step = RATE // 50
        for k in range(0, n, step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block[:, k:k + step]), format="fltp", layout="stereo"
            )
            frame.sample_rate = RATE
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def build_report(out: Path, job_id: str, t0: float) -> SessionReport:
    session = AgentSession()
    session.options.recording_options = _resolve_recording_options(True)
    ctx = llm.ChatContext.empty()
    ctx.add_message(
        role="assistant", content="Hello, how can I help?", created_at=t0 + 0.2,
        metrics={"started_speaking_at": t0 + 0.3, "stopped_speaking_at": t0 + 1.5},
    )
    ctx.items.append(llm.ChatMessage(
        role="user", content=["What's the weather in Paris?"], created_at=t0 + 3.0,
        transcript_confidence=0.93,
        metrics={"started_speaking_at": t0 + 2.0, "stopped_speaking_at": t0 + 2.8,
                 "transcription_delay": 0.12, "end_of_turn_delay": 0.25,
                 "on_user_turn_completed_delay": 0.01},
    ))
    ctx.items.append(llm.FunctionCall(
        call_id="call_1", name="get_weather", arguments='{"city": "Paris"}', created_at=t0 + 3.4,
    ))
    ctx.items.append(llm.FunctionCallOutput(
        call_id="call_1", name="get_weather", output="sunny, 21C", is_error=False,
        created_at=t0 + 3.6,
    ))
    ctx.add_message(
        role="assistant", content="It is sunny and 21 degrees in Paris.", created_at=t0 + 3.9,
        metrics={"started_speaking_at": t0 + 4.0, "stopped_speaking_at": t0 + 5.2,
                 "llm_node_ttft": 0.3, "tts_node_ttfb": 0.15, "e2e_latency": 1.2},
    )
    ctx.add_message(
        role="user", content="Thanks, bye.", created_at=t0 + 6.5,
        metrics={"started_speaking_at": t0 + 5.9, "stopped_speaking_at": t0 + 6.4,
                 "transcription_delay": 0.1, "end_of_turn_delay": 0.2},
    )
    ctx.add_message(
        role="assistant", content="Goodbye and have a", created_at=t0 + 6.8, interrupted=True,
        metrics={"started_speaking_at": t0 + 6.9, "stopped_speaking_at": t0 + 7.3,
                 "llm_node_ttft": 0.2, "tts_node_ttfb": 0.1},
    )
    events = [
        ev.AgentStateChangedEvent(old_state="initializing", new_state="speaking", created_at=t0 + 0.3),
        ev.AgentStateChangedEvent(old_state="speaking", new_state="listening", created_at=t0 + 1.5),
        ev.UserStateChangedEvent(old_state="listening", new_state="speaking", created_at=t0 + 2.0),
        ev.UserStateChangedEvent(old_state="speaking", new_state="listening", created_at=t0 + 2.8),
        ev.AgentStateChangedEvent(old_state="listening", new_state="speaking", created_at=t0 + 4.0),
        ev.AgentStateChangedEvent(old_state="speaking", new_state="listening", created_at=t0 + 5.2),
        ev.CloseEvent(reason=ev.CloseReason.USER_INITIATED, created_at=t0 + 7.5),
    ]
    audio = out / "audio.ogg"
    write_ogg(audio, user=[(2.0, 2.8), (5.9, 6.4)], agent=[(0.3, 1.5), (4.0, 5.2), (6.9, 7.3)])
    return SessionReport(
        job_id=job_id, room_id=f"RM_{job_id}", room="weather-room", options=session.options,
        events=events, chat_history=ctx, audio_recording_path=audio,
        audio_recording_started_at=t0, started_at=t0, duration=SECONDS, timestamp=t0 + SECONDS,
    )


def emit_spans(t0: float) -> None:
    ns = lambda s: int((t0 + s) * 1e9)  # noqa: E731
    root = tracer.start_span("agent_session", start_time=ns(0.0))
    parent = trace_api.set_span_in_context(root)
    for name, a, b, attrs in (
        ("user_turn", 2.0, 2.8, {trace_types.ATTR_USER_TRANSCRIPT: "What's the weather in Paris?"}),
        ("agent_turn", 3.0, 5.2, {trace_types.ATTR_SPEECH_ID: "speech_1"}),
        ("llm_node", 3.0, 3.3, {trace_types.ATTR_RESPONSE_TTFT: 0.3}),
        ("function_tool", 3.4, 3.6, {trace_types.ATTR_FUNCTION_TOOL_NAME: "get_weather"}),
        ("tts_node", 3.9, 4.05, {trace_types.ATTR_RESPONSE_TTFB: 0.15}),
    ):
        s = tracer.start_span(name, context=parent, start_time=ns(a), attributes=attrs)
        s.end(end_time=ns(b))
    failed = tracer.start_span("tts_request", context=parent, start_time=ns(6.9))
    failed.set_status(trace_api.Status(trace_api.StatusCode.ERROR, "tts provider timed out"))
    failed.end(end_time=ns(7.1))
    root.end(end_time=ns(7.5))


async def main(out: Path, url: str, job_id: str) -> None:
    t0 = time.time() - SECONDS
    report = build_report(out, job_id, t0)
    _setup_cloud_tracer(room_id=report.room_id, job_id=job_id, observability_url=url)
    emit_spans(t0)
    logging.getLogger("livekit.agents").warning("tts provider timed out, retrying")
    async with aiohttp.ClientSession() as http:
        await _upload_session_report(
            agent_name="", observability_url=url, report=report, tagger=Tagger(),
            http_session=http,
        )
    _shutdown_telemetry(job_id)
    (out / "session_report.json").write_text(json.dumps(report.to_dict(), indent=2))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
