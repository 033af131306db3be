"""calltape.livekit attached to a running AgentSession, and what it does when recording
fails: the agent never sees an exception of ours (livekit-agents' own code, our plugins)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "livekit.agents",
    reason="livekit-agents is not installed (tests/requirements/livekit.txt pins it)",
)

from livekit import rtc  # noqa: E402
from livekit.agents import AgentSession, llm  # noqa: E402
from livekit.agents.voice.events import ConversationItemAddedEvent  # noqa: E402

import calltape  # noqa: E402
import calltape.livekit  # noqa: E402
from livekit_call import LINES, _settle  # noqa: E402
from livekit_support import (  # noqa: E402
    USER_RATE,
    CallData,
    EnergyVAD,
    EspeakTTS,
    FrontDesk,
    Microphone,
    ScriptedLLM,
    ScriptedSTT,
    Speaker,
    require_tools,
    speak,
)


def _session(mic: Microphone, speaker: Speaker) -> AgentSession:
    session: AgentSession = AgentSession(
        stt=ScriptedSTT(LINES[:1]), vad=EnergyVAD(), llm=ScriptedLLM(), tts=EspeakTTS(),
        userdata=CallData(),
        turn_handling={"turn_detection": "vad",
                       "interruption": {"mode": "vad", "false_interruption_timeout": None,
                                        "resume_false_interruption": False},
                       "preemptive_generation": {"enabled": False}},
    )
    session.input.audio = mic
    session.output.audio = speaker
    return session


def test_attached_after_start(tmp_path: Path) -> None:
    require_tools()

    async def run() -> tuple[calltape.livekit.Recording, Speaker]:
        recorder = calltape.Recorder(f"file://{tmp_path / 'dest'}",
                                     spool_dir=str(tmp_path / "spool"),
                                     key_template="{session_id}.calltape")
        mic, speaker = Microphone(), Speaker()
        session = _session(mic, speaker)
        await session.start(FrontDesk(), record=False)
        await asyncio.sleep(0.3)
        rec = calltape.livekit.record(session, recorder, "lk-attached")
        mic.say(speak(LINES[0], USER_RATE))
        await _settle(session, mic, 1.0)
        await session.aclose()
        mic.close()
        report = await rec.finished()
        await recorder.shutdown(10)
        assert report is not None and report.upload.uploaded
        return rec, speaker

    rec, speaker = asyncio.run(run())
    assert rec.errors == 0
    call = calltape.open(str(tmp_path / "dest" / "lk-attached.calltape"))
    assert [t["user_text"] for t in call.turns] == [LINES[0]]
    assert call.turns[0]["tool_calls"] == 1
    # what was emitted before attaching comes from the session's own record of its events
    states = [r.data["attributes"]["new_state"] for r in call.records(lane=0)
              if r.kind == "event" and r.data["name"] == "agent_state_changed"]
    assert states[0] == "listening"
    assert np.count_nonzero(call.audio(1, numpy=True)) > USER_RATE  # > 1 s of speech
    heard = sum(len(p) for _, p, _ in speaker.heard)
    assert heard > 0 and np.count_nonzero(call.audio(2, numpy=True)) <= heard


def test_a_failing_recording_never_raises_into_the_agent(tmp_path: Path) -> None:
    async def run() -> calltape.livekit.Recording:
        recorder = calltape.Recorder(f"file://{tmp_path / 'dest'}",
                                     spool_dir=str(tmp_path / "spool"))
        mic, speaker = Microphone(), Speaker()
        session = _session(mic, speaker)
        rec = calltape.livekit.record(session, recorder, "lk-failing")
        await rec.session.finish()  # every recording method now raises SessionFinishedError
        # an event through LiveKit's own emit: our listener fails inside, emit does not
        session.emit("conversation_item_added", ConversationItemAddedEvent(
            item=llm.ChatMessage(role="assistant", content=["hello"])))
        # audio through the wrapped input: the agent still gets its frame
        mic.say(np.full(USER_RATE // 10, 3000, dtype=np.int16))
        frame = await session.input.audio.__anext__()
        assert isinstance(frame, rtc.AudioFrame) and frame.sample_rate == USER_RATE
        await recorder.shutdown(10)
        return rec

    rec = asyncio.run(run())
    assert rec.errors == 2, "the snapshot after the reply and the audio frame, both counted"


def test_audio_at_another_rate_is_converted(tmp_path: Path) -> None:
    """A track at another rate than the audio: converted (LiveKit's resampler), with the
    sound intact, and counted."""

    async def run() -> calltape.livekit.Recording:
        recorder = calltape.Recorder(f"file://{tmp_path / 'dest'}",
                                     spool_dir=str(tmp_path / "spool"),
                                     key_template="{session_id}.calltape")
        mic, speaker = Microphone(), Speaker()
        session = _session(mic, speaker)
        rec = calltape.livekit.record(session, recorder, "lk-rates", user_sample_rate=48_000)
        t = np.arange(USER_RATE) / USER_RATE  # 1 s of 440 Hz
        mic.say((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16))
        for _ in range(50):
            await session.input.audio.__anext__()
        await rec.aclose()
        await recorder.shutdown(10)
        return rec

    rec = asyncio.run(run())
    assert rec.errors == 0 and rec.resampled_frames == 50
    call = calltape.open(str(tmp_path / "dest" / "lk-rates.calltape"))
    assert call.tracks[0]["sample_rate"] == 48_000
    user = call.audio(1, numpy=True).astype(np.float64)
    loud = np.nonzero(np.abs(user) > 1000)[0]
    # the whole second, the resampler's tail included (flushed at the close)
    assert abs((loud[-1] - loud[0] + 1) - 48_000) <= 48, loud[-1] - loud[0] + 1
    spectrum = np.abs(np.fft.rfft(user))
    peak_hz = np.argmax(spectrum) * 48_000 / len(user)
    assert abs(peak_hz - 440) < 5, peak_hz
