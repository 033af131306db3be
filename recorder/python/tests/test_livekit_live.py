"""calltape.livekit against livekit-agents' own code: one real AgentSession (no room) with a
microphone and a speaker of ours fed by espeak-ng in real time, recorded live; the archive is
checked against what LiveKit reported (the metrics on its chat messages), against the audio
that was actually fed and heard, and turn by turn against LiveKit's own SessionReport of the
same session imported with `calltape import livekit`.

The call (about 45 s): a tool turn, a reply spoken over a failing tool, a slow LLM turn, a
long story cut off by a barge-in that hands off to another agent, and a goodbye."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "livekit.agents",
    reason="livekit-agents is not installed (tests/requirements/livekit.txt pins it)",
)

import calltape  # noqa: E402
from conftest import inspect_json  # noqa: E402
from livekit_call import LINES, LiveCall, pcm_of, run_call  # noqa: E402
from livekit_support import AGENT_RATE, USER_RATE  # noqa: E402

NS = 1_000_000_000
US = 1_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> LiveCall:
    return asyncio.run(run_call(tmp_path_factory.mktemp("livekit")))


@pytest.fixture(scope="module")
def call(live: LiveCall) -> calltape.Call:
    return calltape.open(str(live.archive))


def control(call: calltape.Call, kind: str, name: str | None = None) -> list[calltape.CallRecord]:
    out = []
    for r in call.records(lane=0):
        if r.kind != kind:
            continue
        if name is not None and r.data.get("name") != name:
            continue
        out.append(r)
    return out


def assistant_metrics(live: LiveCall) -> list[list[dict[str, Any]]]:
    """LiveKit's metrics of each user turn's assistant messages, in order."""
    turns: list[list[dict[str, Any]]] = []
    for m in live.metrics:
        if m["role"] == "user":
            turns.append([m])
        elif turns:
            turns[-1].append(m)
    return turns


def test_the_integration_recorded_without_errors(live: LiveCall) -> None:
    assert live.recording.errors == 0
    # mapped at each user turn and at the close; all turns but the last written before it
    assert live.recording.mappings == len(LINES) + 1
    assert live.written_before_close == len(LINES) - 1
    assert live.recording.resampled_frames == 0
    codes = [c for c, _ in live.recording.warnings]
    assert "unknown_event_type" not in codes and "unknown_fields" not in codes, codes


def test_turns_transcripts_and_interims(call: calltape.Call) -> None:
    turns = call.turns
    assert [t["user_text"] for t in turns] == LINES
    assert all(t["speaker"] == "user" for t in turns)
    finals = [r.data for r in control(call, "transcript")
              if r.data["speaker"] == "user" and r.data.get("is_final", True)]
    assert [f["text"] for f in finals] == LINES
    assert all(f["confidence"] == pytest.approx(0.92) and f["language"] == "en" for f in finals)
    interims = [r.data for r in control(call, "transcript") if r.data.get("is_final") is False]
    assert len(interims) >= len(LINES) - 1, "an interim per utterance of more than 0.5 s"
    assert all(i["language"] == "en" for i in interims)
    assert all(any(line.startswith(i["text"]) for line in LINES) for i in interims)
    agent = [t["agent_text"] for t in turns]
    assert agent[0] == "It is sunny and twenty degrees in Paris today."
    assert agent[1] == ("Let me check that order for you. "
                        "Sorry, I could not find that order in our system.")
    assert agent[4] == "Billing desk here, how can I help?"


def test_breakdown_of_every_turn_is_what_livekit_measured(
    live: LiveCall, call: calltape.Call
) -> None:
    for turn, msgs in zip(call.turns, assistant_metrics(live), strict=True):
        user, first = msgs[0], msgs[1]
        lat = turn["latency"]
        assert not lat.get("flags"), (turn["turn"], lat)
        assert lat["eou_ns"] == pytest.approx(user["end_of_turn_delay"] * NS, abs=US)
        e2e = first["started_speaking_at"] - user["stopped_speaking_at"]
        assert lat["e2e_ns"] == pytest.approx(e2e * NS, abs=US)
        assert lat["reported_e2e_ns"] == pytest.approx(first["e2e_latency"] * NS, abs=US)
        assert lat["tts_ttfb_ns"] == pytest.approx(first["tts_node_ttfb"] * NS, abs=US)
        if "llm_node_ttft" in first:
            assert lat["llm_ttft_ns"] == pytest.approx(first["llm_node_ttft"] * NS, abs=US)
        else:  # the billing agent's greeting is session.say(): no LLM
            assert lat["llm_ttft_ns"] is None
        parts = [lat[k] or 0 for k in ("eou_ns", "stt_ns", "llm_ttft_ns", "tool_ns", "tts_ttfb_ns")]
        assert lat["rest_ns"] == lat["e2e_ns"] - sum(parts)
        assert lat["rest_ns"] >= 0, (turn["turn"], lat)
    # the reply spoken over its tool: the tool is not part of the wait (no METRIC? flag)
    assert call.turns[1]["latency"]["tool_ns"] is None
    # the weather tool ran before the answer: it is
    assert call.turns[0]["latency"]["tool_ns"] > 0


def test_the_slow_turn_and_its_cause(live: LiveCall, calltape_bin: str) -> None:
    inspected = inspect_json(calltape_bin, str(live.archive))
    slow = [t["turn"] for t in inspected["turns"] if t["slow"]]
    assert slow == [3]
    lat = inspected["turns"][2]["latency"]
    parts = {k: lat[k] or 0 for k in ("eou_ns", "stt_ns", "llm_ttft_ns", "tool_ns", "tts_ttfb_ns",
                                      "rest_ns")}
    assert max(parts, key=parts.__getitem__) == "llm_ttft_ns", parts


def test_the_failed_tool_by_name(live: LiveCall, call: calltape.Call, calltape_bin: str) -> None:
    tools = [r.data for r in control(call, "tool_call")]
    assert [(t["name"], t["is_error"]) for t in tools] == [
        ("get_weather", False), ("lookup_order", True), ("transfer_to_billing", False)]
    assert tools[0]["arguments"] == {"city": "Paris"}
    assert tools[0]["output"] == "sunny, 20 C in Paris"
    assert tools[1]["arguments"] == {"order_id": "A123"}
    assert tools[1]["output"] == "order A123 not found"
    inspected = inspect_json(calltape_bin, str(live.archive))
    turn2 = inspected["turns"][1]
    assert [(t["name"], t["is_error"], t["error"]) for t in turn2["tools"]] == [
        ("lookup_order", True, "order A123 not found")]
    assert turn2["tools"][0]["duration_ns"] > 0
    out = subprocess.run([calltape_bin, "inspect", str(live.archive)], check=True,
                         capture_output=True, text=True).stdout
    assert "turn 2: 1 of 1 tool call(s) failed: lookup_order (order A123 not found)" in out


def test_the_cut_turn_keeps_what_was_heard(live: LiveCall, call: calltape.Call) -> None:
    cut = call.turns[3]
    assert cut["interrupted"] and not any(t["interrupted"] for i, t in enumerate(call.turns)
                                          if i != 3)
    story = [r.data for r in control(call, "transcript")
             if r.data["speaker"] == "agent" and r.data.get("interrupted")]
    assert len(story) == 1
    heard = story[0]["heard_text"]
    full = "Once upon a time there was a small lighthouse on a rocky island"
    assert heard and full.startswith(heard.rstrip(" ,")) and len(heard) < len(full), heard
    # the speaker's own account of the cut segment says the same
    finished = [r.data["attributes"] for r in control(call, "event", "playback_finished")
                if r.data["attributes"]["interrupted"]]
    assert [f["synchronized_transcript"] for f in finished] == [heard]
    assert [c for _, _, c in live.speaker.heard].count(True) == 1


def test_handoff_and_state_snapshots(call: calltape.Call) -> None:
    handoffs = [r.data["attributes"] for r in control(call, "event", "handoff")]
    assert [(h["old_agent"], h["new_agent"]) for h in handoffs] == [
        (None, "front_desk"), ("front_desk", "billing")]
    states = [r.data for r in control(call, "state_snapshot")]
    userdata = [s["value"] for s in states if s["scope"] == "userdata"]
    agents = [s["value"] for s in states if s["scope"] == "agent"]
    assert len(userdata) == len(agents) == 7, "after every agent reply"
    assert userdata[0] == {"city": "Paris", "order_checked": False, "transferred": False}
    assert userdata[-1] == {"city": "Paris", "order_checked": True, "transferred": True}
    assert agents[0]["instructions"] == "You are the front desk of a restaurant."
    assert agents[-1]["instructions"] == "You are the billing desk."
    assert agents[0]["name"] != agents[-1]["name"]


def test_the_recoverable_llm_error(call: calltape.Call) -> None:
    errors = [r for r in control(call, "event", "error")]
    assert len(errors) == 1
    a = errors[0].data["attributes"]
    assert a["source"] == "llm" and a["recoverable"] is True
    assert a["message"] == "llm_error in livekit_support.ScriptedLLM (recoverable: retried)"
    assert errors[0].turn == 6
    assert [t["errors"] for t in call.turns] == [0, 0, 0, 0, 0, 1]


def test_usage_per_model_and_close(call: calltape.Call) -> None:
    usage = [r.data for r in control(call, "usage")]
    assert {u.get("model") for u in usage} >= {"scripted-llm", "espeak-ng"}
    llm = next(u for u in usage if u.get("model") == "scripted-llm")
    assert llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0
    assert call.totals["end_reason"] == "agent_hangup"
    assert len(control(call, "event", "close")) == 1


def _match_at(track: np.ndarray, pcm: np.ndarray, guess: int, slack: int) -> int | None:
    """The offset near ``guess`` where ``track`` holds ``pcm`` sample for sample."""
    for off in sorted(range(guess - slack, guess + slack + 1), key=lambda o: abs(o - guess)):
        if off >= 0 and np.array_equal(track[off:off + len(pcm)], pcm):
            return off
    return None


def test_user_audio_is_what_the_microphone_fed_sample_for_sample(
    live: LiveCall, call: calltape.Call
) -> None:
    user = call.audio(1, numpy=True)
    assert call.tracks[0]["sample_rate"] == USER_RATE
    t0 = call.header["started_at_unix_ns"] / NS
    fed = live.mic.fed
    frame = len(fed[0])
    # every utterance is on the track sample for sample, where the microphone played it
    offsets = []
    for started in live.mic.utterance_starts:
        k = next(i for i, (t, _) in enumerate(live.mic.fed_at) if t + 0.02 > started)
        utterance = pcm_of(fed[k:k + 100])  # 2 s from the frame it starts in
        at = round((live.mic.fed_at[k][0] - t0) * USER_RATE)
        # the tap dates a frame by its arrival: within a frame or two of when it was played
        off = _match_at(user, utterance, at, 2 * frame)
        assert off is not None, f"utterance at {started - t0:.3f} s"
        offsets.append((off - at) / USER_RATE * 1000)
    print(f"user frames placed vs played (ms): {offsets}")
    assert len(offsets) == len(LINES)


def test_agent_audio_is_what_was_heard_at_the_time_it_played(
    live: LiveCall, call: calltape.Call
) -> None:
    agent = call.audio(2, numpy=True)
    assert call.tracks[1]["sample_rate"] == AGENT_RATE
    t0 = call.header["started_at_unix_ns"] / NS
    for started, pcm, cut in live.speaker.heard:
        at = round((started - t0) * AGENT_RATE)
        off = _match_at(agent, pcm, at, 3)
        assert off is not None, f"segment at {started - t0:.3f} s (cut={cut})"
        after = agent[off + len(pcm):off + len(pcm) + AGENT_RATE // 10]
        assert not after.any(), "nothing beyond what was heard"
    heard = sum(len(p) for _, p, _ in live.speaker.heard)
    assert int(np.count_nonzero(agent)) <= heard


def test_audio_lines_up_with_the_events(live: LiveCall, call: calltape.Call) -> None:
    """The gap between what the audio shows and what the events say, per turn."""
    user = call.audio(1, numpy=True)
    agent = call.audio(2, numpy=True)
    playback = [r.data for r in control(call, "stage_timing") if r.data["stage"] == "playback"]
    user_gaps, agent_gaps = [], []
    finals = [r.data for r in control(call, "transcript")
              if r.data["speaker"] == "user" and r.data.get("is_final", True)]
    for f in finals:
        lo = int(f["start_ns"] * USER_RATE // NS) - USER_RATE // 2
        seg = np.abs(user[max(lo, 0):]) > 1000
        onset_ns = (max(lo, 0) + int(np.argmax(seg))) * NS // USER_RATE
        user_gaps.append((f["start_ns"] - onset_ns) / 1e6)
    for p in playback:
        lo = int(p["start_ns"] * AGENT_RATE // NS) - AGENT_RATE // 2
        seg = np.abs(agent[max(lo, 0):]) > 200
        onset_ns = (max(lo, 0) + int(np.argmax(seg))) * NS // AGENT_RATE
        agent_gaps.append((onset_ns - p["start_ns"]) / 1e6)
    print(f"user speech onset -> LiveKit started_speaking_at (ms): {user_gaps}")
    print(f"agent playback start -> first audible agent sample (ms): {agent_gaps}")
    assert len(agent_gaps) == 7
    # the events sit where the audio is: within a few 20 ms detection frames, not off by a shift
    assert all(-60 <= g <= 120 for g in user_gaps), user_gaps
    assert all(0 <= g <= 120 for g in agent_gaps), agent_gaps


def test_live_recording_and_livekit_report_agree_turn_by_turn(
    live: LiveCall, call: calltape.Call, calltape_bin: str, tmp_path: Path
) -> None:
    imported_path = tmp_path / "imported.calltape"
    subprocess.run([calltape_bin, "import", "livekit", str(live.report), "-o",
                    str(imported_path)], check=True, capture_output=True, text=True)
    imported = calltape.open(str(imported_path))
    assert len(imported.turns) == len(call.turns) == len(LINES)
    keys = ("speaker", "user_text", "agent_text", "interrupted", "errors", "tool_calls",
            "tool_errors")
    for a, b in zip(call.turns, imported.turns, strict=True):
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}, a["turn"]
        la, lb = a["latency"], b["latency"]
        for k in ("e2e_ns", "eou_ns", "stt_ns", "llm_ttft_ns", "tool_ns", "tts_ttfb_ns",
                  "rest_ns", "reported_e2e_ns"):
            if la[k] is None or lb[k] is None:
                assert la[k] == lb[k], (a["turn"], k)
            else:
                assert la[k] == pytest.approx(lb[k], abs=US), (a["turn"], k)
        assert la.get("flags", []) == lb.get("flags", []), a["turn"]

    def transcripts(c: calltape.Call) -> list[tuple]:
        return [(r.turn, r.data["speaker"], r.data["text"], r.data.get("is_final", True),
                 r.data.get("confidence"), r.data.get("language"), r.data.get("interrupted"),
                 r.data.get("heard_text")) for r in control(c, "transcript")]

    def tools(c: calltape.Call) -> list[tuple]:
        return [(r.turn, r.data["name"], json.dumps(r.data["arguments"]), r.data["output"],
                 r.data["is_error"], r.data["end_ns"] - r.data["start_ns"])
                for r in control(c, "tool_call")]

    assert transcripts(call) == transcripts(imported)
    assert tools(call) == tools(imported)
    for name in ("interruption", "handoff", "agent_config_update", "close"):
        assert len(control(call, "event", name)) == len(control(imported, "event", name)), name
    assert call.totals["interruptions"] == imported.totals["interruptions"] == 1
    assert call.totals["end_reason"] == imported.totals["end_reason"]
    # both put the same moments at the same place relative to their session start
    shift = call.header["started_at_unix_ns"] - imported.header["started_at_unix_ns"]
    for a, b in zip(call.turns, imported.turns, strict=True):
        assert a["start_ns"] + shift == pytest.approx(b["start_ns"], abs=US)
    # and the same sound at the same moment: LiveKit's own recording (RecorderIO's
    # audio.ogg, resampled to 48 kHz and Opus-coded) against ours, per track
    lags = {}
    for track in (1, 2):
        ours = _envelope(call.audio(track, numpy=True), call.tracks[track - 1]["sample_rate"])
        theirs = _envelope(imported.audio(track, numpy=True),
                           imported.tracks[track - 1]["sample_rate"])
        lags[track] = _lag_ms(ours, theirs, shift)
    print(f"LiveKit's recording vs calltape.livekit's (ms, user/agent): {lags}")
    # ours is sample-exact to what was fed and heard (the tests above); LiveKit's recording
    # dates its frames by arrival too and resamples them: measured 5-90 ms off ours,
    # depending on the machine's load. What this checks is that the import puts LiveKit's
    # audio on the same session clock (a unit or offset mistake is off by seconds)
    assert all(abs(lag) <= 200 for lag in lags.values()), lags


def _envelope(pcm: np.ndarray, rate: int) -> np.ndarray:
    """RMS per 5 ms."""
    step = rate // 200
    n = len(pcm) // step
    blocks = pcm[: n * step].astype(np.float64).reshape(n, step)
    return np.sqrt((blocks ** 2).mean(axis=1))


def _lag_ms(ours: np.ndarray, theirs: np.ndarray, shift_ns: int) -> float:
    """How much later (ms) ``theirs`` has the sound ``ours`` has, on one clock."""
    offset = round(shift_ns / 5_000_000)  # our 5 ms block k is their block k + offset
    best, best_lag = -1.0, 0
    for lag in range(-200, 201):  # +-1 s
        lo = max(0, -(offset + lag))
        n = min(len(ours), len(theirs) - offset - lag) - lo
        if n <= 0:
            continue
        a = ours[lo:lo + n]
        b = theirs[lo + offset + lag:lo + offset + lag + n]
        score = float(np.dot(a - a.mean(), b - b.mean()))
        if score > best:
            best, best_lag = score, lag
    return best_lag * 5.0
