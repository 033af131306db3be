"""calltape.pipecat.CalltapeObserver against Pipecat's own code: a real Pipeline, PipelineTask and
runner on Pipecat's websocket server transport, with a caller process streaming espeak-ng
speech in real time (pipecat_caller.py) and stand-in STT/LLM/TTS services built on Pipecat's
service classes (pipecat_agent.py): a greeting, a failing tool, a slow LLM turn the caller
barges into, a goodbye. Whisker's own file sink records the same run, and its import must agree
with the live archive turn by turn.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pipecat", reason="pipecat-ai is not installed (tests/requirements/pipecat.txt)")

import calltape  # noqa: E402
from calltape.pipecat import CalltapeObserver  # noqa: E402
from pipecat.frames.frames import MetricsFrame, StartFrame  # noqa: E402
from pipecat.metrics.metrics import TTFBMetricsData  # noqa: E402
from pipecat.observers.base_observer import BaseObserver, FramePushed  # noqa: E402
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat_whisker import WhiskerFile  # noqa: E402

from pipecat_tail_session import TailSessionFile  # noqa: E402

from pipecat_agent import (  # noqa: E402
    CALLER_LINES,
    GOODBYE,
    GREETING,
    SLOW_ANSWER,
    SLOW_TTFT,
    TOOL_APOLOGY,
    WEATHER_TOOL,
    AgentRun,
    run_agent,
    speak,
)

HERE = Path(__file__).resolve().parent
MS = 1_000_000


class MetricsLog(BaseObserver):
    """Pipecat's TTFB metrics as they pass, with the pipeline-clock time of their push."""

    def __init__(self) -> None:
        super().__init__(observe_every_push=False)
        self.ttfb: list[tuple[int, str, float]] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        if isinstance(data.frame, MetricsFrame):
            for m in data.frame.data:
                if isinstance(m, TTFBMetricsData) and m.value > 0:
                    self.ttfb.append((data.timestamp, m.processor, m.value))


@dataclass
class PipecatCall:
    archive: calltape.Call
    imported: calltape.Call
    tail: calltape.Call
    run: AgentRun
    observer: CalltapeObserver
    latencies: list[float]
    metrics: MetricsLog
    caller: list[dict[str, Any]]
    whisk: Path
    wav: Path
    archive_path: Path


def _records(call: calltape.Call, kind: str, **match: Any) -> list[Any]:
    out = []
    for r in call.records(lane=0):
        if r.kind != kind:
            continue
        if all(r.data.get(k) == v for k, v in match.items()):
            out.append(r)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pipecat_call(tmp_path_factory: pytest.TempPathFactory, calltape_bin: str) -> PipecatCall:
    out = tmp_path_factory.mktemp("pipecat")
    whisk, wav, tail = out / "session.whisk", out / "call.wav", out / "tail-session.jsonl"

    metrics = MetricsLog()

    async def scenario() -> tuple[CalltapeObserver, AgentRun, list[float], list[dict]]:
        recorder = calltape.Recorder(f"file://{out}/store", spool_dir=str(out / "spool"))
        observer = CalltapeObserver(recorder, "pipecat-live")
        latency = UserBotLatencyObserver()
        latencies: list[float] = []

        @latency.event_handler("on_latency_measured")
        async def _measured(_o, secs):
            latencies.append(secs)

        run = AgentRun()
        ready = asyncio.Event()
        port = _free_port()
        agent = asyncio.create_task(
            run_agent(port, [observer, latency, metrics, TailSessionFile(tail)], ready, run, whisker=WhiskerFile(str(whisk)),
                      wav_path=str(wav))
        )
        await asyncio.wait_for(ready.wait(), 60)
        caller = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "pipecat_caller.py"), f"ws://127.0.0.1:{port}",
            cwd=str(HERE), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(caller.communicate(), 180)
        if caller.returncode != 0:
            agent.cancel()
            pytest.fail(f"the caller failed ({caller.returncode}): {stderr.decode()[-3000:]}")
        await asyncio.wait_for(agent, 60)
        report = await asyncio.wait_for(observer.finished(), 30)
        assert report is not None and report.error is None, report
        await recorder.shutdown(10)
        lines = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
        return observer, run, latencies, lines

    observer, run, latencies, caller = asyncio.run(scenario())
    archives = list((out / "store").rglob("pipecat-live.calltape"))
    assert len(archives) == 1, archives
    imported = out / "imported.calltape"
    subprocess.run(
        [calltape_bin, "import", "pipecat", str(whisk), "--audio", str(wav), "-o", str(imported)],
        check=True, capture_output=True,
    )
    from_tail = out / "tail.calltape"
    subprocess.run(
        [calltape_bin, "import", "pipecat", str(tail), "-o", str(from_tail)],
        check=True, capture_output=True,
    )
    return PipecatCall(
        archive=calltape.open(str(archives[0])),
        imported=calltape.open(str(imported)),
        tail=calltape.open(str(from_tail)),
        run=run, observer=observer, latencies=latencies, metrics=metrics, caller=caller,
        whisk=whisk, wav=wav, archive_path=archives[0],
    )


def test_turns_are_numbered_as_pipecat_tracks_them(pipecat_call: PipecatCall) -> None:
    call, run = pipecat_call.archive, pipecat_call.run
    assert [t["turn"] for t in call.turns] == run.turns_started == [1, 2, 3, 4]
    ends = {r.data["turn"]: r.data["attributes"] for r in _records(call, "turn_end")}
    # Pipecat's own flag (it also calls the turn cut by the pipeline's end interrupted) is kept
    assert [(n, ends[n]["pipecat_was_interrupted"]) for n in ends] == run.turns_ended
    assert [t["speaker"] for t in call.turns] == ["agent", "user", "user", "user"]
    assert pipecat_call.observer.errors == 0
    assert pipecat_call.observer.skipped_audio_frames == 0


def test_transcripts_of_both_speakers(pipecat_call: PipecatCall) -> None:
    call = pipecat_call.archive
    user = [r.data for r in _records(call, "transcript", speaker="user", is_final=True)]
    assert [(u["turn"], u["text"]) for u in user] == list(zip([2, 3, 4], CALLER_LINES))
    interim = _records(call, "transcript", speaker="user", is_final=False)
    assert [r.data["text"] for r in interim] == [line.split()[0] for line in CALLER_LINES]
    agent = {r.data["turn"]: r.data["text"] for r in _records(call, "transcript", speaker="agent")}
    assert agent == {1: GREETING, 2: TOOL_APOLOGY, 3: SLOW_ANSWER, 4: GOODBYE}


def test_breakdown_matches_what_pipecat_measured(pipecat_call: PipecatCall) -> None:
    call = pipecat_call.archive
    user_turns = [t for t in call.turns if t["speaker"] == "user"]
    # Pipecat's UserBotLatencyObserver (run beside ours) measured one latency per user turn;
    # each turn's reported e2e is its number, and the breakdown's e2e agrees with it
    assert len(pipecat_call.latencies) == len(user_turns) == 3
    for turn, secs in zip(user_turns, pipecat_call.latencies):
        lat = turn["latency"]
        # (two instances of Pipecat's observer, each reading the clock when it gets the frame)
        assert lat["reported_e2e_ns"] == pytest.approx(secs * 1e9, abs=50 * MS), turn["turn"]
        assert lat["e2e_ns"] == pytest.approx(secs * 1e9, abs=50 * MS), turn["turn"]
        assert "flags" not in lat or not lat["flags"], lat
    # LLM TTFT: the TTFB metrics Pipecat emitted for the LLM in the turn, summed over its
    # steps (the tool turn asks the LLM twice)
    llm = {r.data["turn"]: [] for r in _records(call, "turn_start")}
    for r in _records(call, "stage_timing", stage="llm"):
        llm[r.data["turn"]].append(r.data["ttft_ns"])
    for turn in user_turns:
        assert turn["latency"]["llm_ttft_ns"] == sum(llm[turn["turn"]])
    emitted = [v for _, p, v in pipecat_call.metrics.ttfb if p.startswith("ScriptedLLM")]
    recorded = [x / 1e9 for turn in sorted(llm) for x in llm[turn]]
    assert recorded == pytest.approx(emitted, abs=1e-6)
    tts = [v for _, p, v in pipecat_call.metrics.ttfb if p.startswith("EspeakTTS")]
    firsts = [r.data["ttfb_ns"] / 1e9 for r in _records(call, "stage_timing", stage="tts")]
    assert firsts == pytest.approx(tts, abs=1e-6)
    # Pipecat's contributions are kept, summing to its total
    for ev in _records(call, "event", name="pipecat_latency"):
        a = ev.data["attributes"]
        assert sum(c["duration_ns"] for c in a["contributions"]) == pytest.approx(
            a["total_ns"], abs=MS)


def test_the_slow_turn_and_its_cause(pipecat_call: PipecatCall) -> None:
    turns = pipecat_call.archive.turns
    slowest = max((t for t in turns if t["speaker"] == "user"), key=lambda t: t["latency"]["e2e_ns"])
    assert slowest["user_text"] == CALLER_LINES[1]
    lat = slowest["latency"]
    assert lat["e2e_ns"] > 1_500_000_000
    parts = {k: lat[k] or 0 for k in ("eou_ns", "stt_ns", "llm_ttft_ns", "tool_ns", "tts_ttfb_ns", "rest_ns")}
    assert max(parts, key=parts.get) == "llm_ttft_ns"
    assert lat["llm_ttft_ns"] >= SLOW_TTFT * 1e9


def test_the_failed_tool_by_name(pipecat_call: PipecatCall) -> None:
    call = pipecat_call.archive
    tools = [r.data for r in _records(call, "tool_call")]
    assert len(tools) == 1
    tool = tools[0]
    assert (tool["name"], tool["is_error"], tool["turn"]) == (WEATHER_TOOL, True, 2)
    assert tool["arguments"] == {"city": "Paris"}
    assert "weather backend unreachable" in tool["output"]
    assert tool["end_ns"] > tool["start_ns"]
    assert call.totals["tool_errors"] == 1 and call.turns[1]["tool_errors"] == 1
    errors = _records(call, "event", name="error")
    assert len(errors) == 1 and WEATHER_TOOL in errors[0].data["attributes"]["message"]


def test_one_interruption_with_what_was_heard(pipecat_call: PipecatCall) -> None:
    call = pipecat_call.archive
    # Pipecat interrupts at every user turn start (3 times here); one was a barge-in
    assert call.totals["interruptions"] == 1
    assert [t["interrupted"] for t in call.turns] == [False, False, True, False]
    (cut,) = _records(call, "event", name="interruption")
    heard = cut.data["attributes"]["heard_text"]
    assert cut.data["turn"] == 3
    assert heard and SLOW_ANSWER.startswith(heard) and len(heard) < len(SLOW_ANSWER)
    (said,) = _records(call, "transcript", speaker="agent", interrupted=True)
    assert said.data["heard_text"] == heard and said.data["text"] == SLOW_ANSWER
    # the caller barged in while the bot's answer played: the cut lies in its playback
    (playback,) = [r.data for r in _records(call, "stage_timing", stage="playback", turn=3)]
    assert playback["start_ns"] < cut.time_ns <= playback["end_ns"]


def _speech_onsets(pcm: np.ndarray, rate: int, threshold: float = 300.0) -> list[int]:
    """Session ns where speech starts: 10 ms frames above ``threshold`` RMS after 300 ms of quiet."""
    step = rate // 100
    frames = pcm[: len(pcm) // step * step].astype(np.float64).reshape(-1, step)
    loud = np.sqrt((frames * frames).mean(axis=1)) >= threshold
    onsets, quiet = [], 30
    for i, on in enumerate(loud):
        if on and quiet >= 30:
            onsets.append(i * 10 * MS)
        quiet = 0 if on else quiet + 1
    return onsets


def test_both_tracks_line_up_with_the_events(pipecat_call: PipecatCall) -> None:
    call = pipecat_call.archive
    tracks = {t["role"]: t for t in call.tracks}
    assert (tracks["user"]["sample_rate"], tracks["agent"]["sample_rate"]) == (16000, 24000)
    user = _speech_onsets(call.audio(tracks["user"]["id"], numpy=True), 16000)
    agent = _speech_onsets(call.audio(tracks["agent"]["id"], numpy=True), 24000)
    vad = [r.data for r in _records(call, "stage_timing", stage="vad")]
    playback = [r.data for r in _records(call, "stage_timing", stage="playback")]
    assert len(vad) == 3 and len(playback) == 4
    # the caller's own clock: when it started speaking each line (plus espeak-ng's lead-in
    # silence) and when it first heard the bot, against the onsets measured in the archive
    t0 = call.header["started_at_unix_ns"]
    said = [
        int(line["t"] * 1e9) - t0 + _speech_onsets(np.frombuffer(speak(line["text"], 16000),
                                                                   dtype=np.int16), 16000)[0]
        for line in pipecat_call.caller if line["what"] == "say"
    ]
    # the caller stamps what it hears when its loop gets to the message: late by as much as
    # the caller itself lagged then (it measures that on its microphone's 20 ms ticks)
    heard = [(int(line["started"] * 1e9) - t0, int(line["lag"] * 1e9))
             for line in pipecat_call.caller
             if line["what"] in ("greeting_heard", "slow_answer_heard")]
    assert len(said) == 3 and len(heard) == 2
    for expected in said:
        assert min(abs(o - expected) for o in user) < 100 * MS, (expected, user)
    for expected, lag in heard:
        assert min(abs(o - expected) for o in agent) < 150 * MS + lag, (expected, lag, agent)
    # the events: the bot's speech starts with its audio; the VAD reports the user's speech
    # after its onset (Silero needs some speech to be sure; more on a busy machine); every
    # onset lies within one of the events
    for e in playback:
        assert min(abs(o - e["start_ns"]) for o in agent) < 150 * MS, (e, agent)
    for e in vad:
        assert any(0 <= e["start_ns"] - o < 800 * MS for o in user), (e, user)
    for onsets, events in [(user, vad), (agent, playback)]:
        for o in onsets:
            assert any(e["start_ns"] - 800 * MS <= o <= e["end_ns"] for e in events), (o, events)


def test_tail_import_agrees_turn_by_turn(pipecat_call: PipecatCall) -> None:
    live, tail = pipecat_call.archive, pipecat_call.tail
    assert tail.header["tags"]["imported_from"] == "pipecat-tail"
    assert len(tail.turns) == len(live.turns)
    for a, b in zip(live.turns, tail.turns):
        for k in ("turn", "speaker", "user_text", "agent_text", "interrupted", "tool_calls",
                  "tool_errors", "errors"):
            assert a[k] == b[k], (k, a, b)
        la, lb = a["latency"], b["latency"]
        # the same metrics; Tail's latency message is Pipecat's own breakdown, as ours
        assert la["llm_ttft_ns"] == lb["llm_ttft_ns"]
        assert la["tts_ttfb_ns"] == lb["tts_ttfb_ns"]
        if a["speaker"] == "user":
            assert lb["reported_e2e_ns"] == pytest.approx(la["reported_e2e_ns"], abs=5 * MS)
            assert abs(la["e2e_ns"] - lb["e2e_ns"]) < 100 * MS, (la, lb)
    heard = [_records(c, "event", name="interruption")[0].data["attributes"]["heard_text"]
             for c in (live, tail)]
    assert heard[0] == heard[1]


def test_whisker_import_agrees_turn_by_turn(pipecat_call: PipecatCall) -> None:
    live, imported = pipecat_call.archive, pipecat_call.imported
    assert len(imported.turns) == len(live.turns)
    for a, b in zip(live.turns, imported.turns):
        for k in ("turn", "speaker", "user_text", "agent_text", "interrupted", "tool_calls",
                  "tool_errors", "errors"):
            assert a[k] == b[k], (k, a, b)
        la, lb = a["latency"], b["latency"]
        # the same metrics values; Whisker's times are when its observer got round to each
        # frame (it records every hop of every frame, and lags under load)
        assert la["llm_ttft_ns"] == lb["llm_ttft_ns"]
        assert la["tts_ttfb_ns"] == lb["tts_ttfb_ns"]
        assert la["eou_ns"] is None or abs(la["eou_ns"] - lb["eou_ns"]) < 1000 * MS
        if a["speaker"] == "user":
            assert abs(la["e2e_ns"] - lb["e2e_ns"]) < 1000 * MS, (la, lb)
    assert imported.totals["interruptions"] == 1
    live_heard = _records(live, "event", name="interruption")[0].data["attributes"]["heard_text"]
    imp_heard = _records(imported, "event", name="interruption")[0].data["attributes"]["heard_text"]
    assert live_heard == imp_heard
    # the WAV of Pipecat's AudioBufferProcessor is split into the two tracks, placed where it
    # began, and its offset and stretch against the frames measured and noted
    assert [t["role"] for t in imported.tracks] == ["user", "agent"]
    (note,) = _records(imported, "event", name="audio_alignment")
    a = note.data["attributes"]
    assert a["matched"] == a["playbacks"] == 4, a
    # (Whisker's times lag the frames by up to a few hundred ms when the machine is busy)
    assert abs(a["first_offset_ns"]) < 1000 * MS and abs(a["last_offset_ns"]) < 1000 * MS, a


def test_an_exception_is_counted_never_raised_into_pipecat(tmp_path: Path) -> None:
    async def scenario() -> CalltapeObserver:
        recorder = calltape.Recorder(f"file://{tmp_path}/d", spool_dir=str(tmp_path / "s"))
        held = recorder.start_session("taken")  # kept open: the id stays taken
        observer = CalltapeObserver(recorder, "taken")  # a duplicate id: start_session raises
        push = FramePushed(
            source=FrameProcessor(), destination=FrameProcessor(), frame=StartFrame(),
            direction=FrameDirection.DOWNSTREAM, timestamp=0,
        )
        await observer.on_push_frame(push)
        await held.finish()
        await recorder.shutdown(5)
        return observer

    observer = asyncio.run(scenario())
    assert observer.errors == 1
    assert observer.session is None


def test_a_cancelled_pipeline_is_finished_and_uploaded(tmp_path: Path) -> None:
    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        TranscriptionFrame,
        UserStartedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.task import PipelineTask
    from pipecat.processors.filters.identity_filter import IdentityFilter
    from pipecat.workers.runner import WorkerRunner

    async def scenario() -> tuple[CalltapeObserver, Any]:
        recorder = calltape.Recorder(f"file://{tmp_path}/d", spool_dir=str(tmp_path / "s"))
        observer = CalltapeObserver(recorder, "pipecat-cancelled")
        task = PipelineTask(Pipeline([IdentityFilter()]), observers=[observer],
                            enable_rtvi=False)
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(task)
        running = asyncio.create_task(runner.run())
        while observer.session is None:
            await asyncio.sleep(0.01)
        await task.queue_frames([
            BotStartedSpeakingFrame(),
            UserStartedSpeakingFrame(),
            TranscriptionFrame("hello", "caller", "2026-12-01T00:00:00Z"),
        ])
        while observer.turn < 2:
            await asyncio.sleep(0.01)
        await task.cancel(reason="test")
        await asyncio.wait_for(running, 30)
        report = await asyncio.wait_for(observer.finished(), 30)
        await recorder.shutdown(5)
        return observer, report

    observer, report = asyncio.run(scenario())
    assert report is not None and report.error is None and report.upload.uploaded
    call = calltape.open(str(tmp_path / "d" / report.upload.key))
    assert call.totals["end_reason"] == "cancelled"
    # the user started while the bot was speaking (no stop came): a barge-in ends turn 1
    assert [t["turn"] for t in call.turns] == [1, 2]
    assert [t["interrupted"] for t in call.turns] == [True, False]
    assert [r.data["text"] for r in _records(call, "transcript", speaker="user")] == ["hello"]
    assert observer.errors == 0
