"""Runs the test call once: a real ``AgentSession`` (no room) with the classes of
``livekit_support``, recorded by ``calltape.livekit.record`` and, beside it, by LiveKit's own
RecorderIO + ``SessionReport`` (what ``console --record`` writes: session_report.json and
audio.ogg)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from livekit.agents import AgentSession, APIConnectOptions
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.recorder_io import RecorderIO
from livekit.agents.voice.report import SessionReport
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

import calltape
import calltape.livekit
from livekit_support import (
    USER_RATE,
    CallData,
    EnergyVAD,
    EspeakTTS,
    FrontDesk,
    Microphone,
    Screen,
    ScriptedLLM,
    ScriptedSTT,
    Speaker,
    require_tools,
    speak,
)

LINES = [
    "What is the weather in Paris",
    "Can you check my order please",
    "Book a table for two at eight",
    "Tell me a long story",
    "Stop and transfer me to billing",
    "Thank you and goodbye",
]
SESSION_ID = "lk-live-test"


@dataclasses.dataclass
class LiveCall:
    archive: Path  # calltape.livekit's recording
    report: Path  # LiveKit's session_report.json (audio.ogg beside it)
    mic: Microphone
    speaker: Speaker
    recording: calltape.livekit.Recording
    metrics: list[dict[str, Any]]  # each chat message's metrics, as LiveKit reported them
    events: list[str]
    written_before_close: int  # turns calltape.livekit had written before the session closed


async def _settle(session: AgentSession, mic: Microphone, quiet: float) -> None:
    """Waits until the user's audio is played and the agent has listened for ``quiet`` s."""
    deadline = time.monotonic() + 60
    calm_since: float | None = None
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        idle = not mic.busy and session.agent_state in ("listening", "idle")
        idle = idle and session.user_state != "speaking"
        if not idle:
            calm_since = None
            continue
        calm_since = calm_since or time.monotonic()
        if time.monotonic() - calm_since >= quiet:
            return
    raise TimeoutError(f"the agent did not settle (state {session.agent_state})")


async def _until(pred: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        await asyncio.sleep(0.02)


async def run_call(tmp: Path) -> LiveCall:
    require_tools()
    speech = {line: speak(line, USER_RATE) for line in LINES}
    dest, spool, lk_dir = tmp / "dest", tmp / "spool", tmp / "livekit"
    lk_dir.mkdir(parents=True)
    recorder = calltape.Recorder(f"file://{dest}", spool_dir=str(spool),
                                 key_template="{session_id}.calltape")
    mic, speaker = Microphone(), Speaker()
    session: AgentSession = AgentSession(
        stt=ScriptedSTT(LINES), vad=EnergyVAD(), llm=ScriptedLLM(), tts=EspeakTTS(),
        userdata=CallData(),
        conn_options=SessionConnectOptions(
            llm_conn_options=APIConnectOptions(max_retry=2, retry_interval=0.1)),
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": 0.4, "max_delay": 3.0},
            "interruption": {"enabled": True, "mode": "vad", "min_duration": 0.4,
                             "resume_false_interruption": False,
                             "false_interruption_timeout": None},
            "preemptive_generation": {"enabled": False},
        },
    )
    # LiveKit's own recorder, as console --record sets it up (it taps the same I/O)
    # the transcript paced with the audio (as RoomIO does), so an interrupted reply keeps the
    # text that was heard
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=Screen())
    session.output.transcription = sync.text_output
    rio = RecorderIO(agent_session=session)
    session.input.audio = rio.record_input(mic)
    session.output.audio = rio.record_output(sync.audio_output)
    await rio.start(output_path=lk_dir / "audio.ogg")

    recording = calltape.livekit.record(session, recorder, SESSION_ID)
    await session.start(FrontDesk(), record=False)

    for line in LINES[:4]:
        await asyncio.sleep(0.4)
        mic.say(speech[line])
        if line == LINES[3]:
            break
        await _settle(session, mic, 1.2)
    # barge in 2 s into the long story
    await _until(lambda: session.agent_state == "speaking", "the story to start")
    await asyncio.sleep(2.0)
    mic.say(speech[LINES[4]])
    await _settle(session, mic, 2.0)
    mic.say(speech[LINES[5]])
    await _settle(session, mic, 1.2)

    # the turns that were over by the last user turn are in the archive already
    written_before_close = recording.done_turns
    await session.aclose()
    await rio.aclose()
    mic.close()
    finish = await recording.finished()
    await recorder.shutdown(10)
    assert finish is not None and finish.upload.uploaded, finish

    report = SessionReport(
        job_id="AJ_livetest", room_id="RM_livetest", room="livetest", options=session.options,
        events=session._recorded_events, chat_history=session.history.copy(),
        audio_recording_path=rio.output_path, audio_recording_started_at=rio.recording_started_at,
        started_at=session._started_at, model_usage=session.usage.model_usage,
        agent_name="front-desk",
    )
    report.duration = report.timestamp - (report.audio_recording_started_at or report.timestamp)
    report_path = lk_dir / "session_report.json"
    report_path.write_text(json.dumps(report.to_dict(), indent=2))
    metrics = [
        {"role": i.role, "text": i.text_content, **dict(i.metrics)}
        for i in session.history.items if i.type == "message"
    ]
    return LiveCall(
        archive=dest / f"{SESSION_ID}.calltape", report=report_path, mic=mic, speaker=speaker,
        recording=recording, metrics=metrics, written_before_close=written_before_close,
        events=[e.type for e in session._recorded_events],
    )


def pcm_of(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
