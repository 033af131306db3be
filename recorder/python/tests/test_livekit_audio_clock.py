"""The user track's clock in ``calltape.livekit``: frames carry no capture time, so they are
placed by arrival and kept sample-contiguous. A stall of the agent's event loop delivers the
backlog in a burst; a gap in the stream resumes in real time. The first must not move the
audio, the second must."""

from __future__ import annotations

import pytest

pytest.importorskip("livekit.agents", reason="livekit-agents is not installed")

from calltape.livekit import STALL_HOLD, _Run  # noqa: E402

RATE = 16000
FRAME = 320  # 20 ms
F = FRAME / RATE


def pcm(i: int) -> bytes:
    return i.to_bytes(2, "little") * FRAME


def feed(run: _Run, arrivals: list[float]) -> list[tuple[float, int]]:
    """Feeds frame i arriving at ``arrivals[i]``; returns (placed at, frame i) in the order
    they were released, then the ones still held at the end."""
    out = []
    for i, t in enumerate(arrivals):
        out += run.place(t - F, pcm(i), FRAME, RATE)
    out += run.flush(RATE)
    return [(at, int.from_bytes(p[:2], "little")) for at, p in out]


def test_a_stall_of_the_loop_keeps_every_frame_where_it_was_captured() -> None:
    # 50 frames in real time, then the loop stalls 700 ms: 35 frames queue up and come in a
    # burst 1 ms apart, then real time again
    arrivals = [100.0 + (i + 1) * F for i in range(50)]
    stall_end = arrivals[-1] + 0.7
    arrivals += [stall_end + k * 0.001 for k in range(35)]
    arrivals += [arrivals[49] + (i - 49) * F for i in range(85, 120)]
    run = _Run(clocked_by_arrival=True)
    placed = feed(run, arrivals)
    assert [i for _, i in placed] == list(range(120)), "every frame, once, in order"
    for at, i in placed:
        assert at == pytest.approx(100.0 + i * F, abs=1e-9), i
    assert (run.resyncs, run.stalls) == (0, 1)


def test_a_gap_in_the_stream_restarts_the_run_where_the_audio_resumed() -> None:
    # 50 frames, then nothing for 2 s, then frames in real time again
    arrivals = [100.0 + (i + 1) * F for i in range(50)]
    resumed = arrivals[-1] + 2.0
    arrivals += [resumed + k * F for k in range(40)]
    run = _Run(clocked_by_arrival=True)
    placed = feed(run, arrivals)
    assert [i for _, i in placed] == list(range(90))
    for at, i in placed:
        want = 100.0 + i * F if i < 50 else resumed - F + (i - 50) * F
        assert at == pytest.approx(want, abs=1e-9), i
    assert (run.resyncs, run.stalls) == (1, 0)


def test_a_gap_is_told_from_a_stall_within_the_hold() -> None:
    run = _Run(clocked_by_arrival=True)
    for i in range(50):
        assert run.place(100.0 + i * F, pcm(i), FRAME, RATE)
    resumed = 100.0 + 50 * F + 2.0
    k = 0
    while not run.place(resumed + k * F, pcm(50 + k), FRAME, RATE):
        k += 1
    # the frames after the gap were held no longer than STALL_HOLD of arrival
    assert STALL_HOLD - F <= k * F <= STALL_HOLD + F + 1e-9, k


def test_frames_still_held_when_the_stream_ends_are_placed_where_they_arrived() -> None:
    arrivals = [100.0 + (i + 1) * F for i in range(10)] + [103.0, 103.02]
    run = _Run(clocked_by_arrival=True)
    placed = feed(run, arrivals)
    assert [i for _, i in placed] == list(range(12))
    assert placed[10][0] == pytest.approx(103.0 - F)
    assert placed[11][0] == pytest.approx(103.0)


def test_a_playback_run_follows_the_times_it_is_given() -> None:
    # the agent track's run is clocked by the sink's reports, not arrival: no holding
    run = _Run()
    assert run.place(10.0, pcm(0), FRAME, RATE) == [(10.0, pcm(0))]
    assert run.place(12.0, pcm(1), FRAME, RATE) == [(12.0, pcm(1))]
    assert run.resyncs == 1
