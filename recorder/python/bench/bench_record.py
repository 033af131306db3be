#!/usr/bin/env python3
"""Benchmark of the calltape Python binding (a measurement, not a test).

1. Per-call cost seen from Python, each call timed on its own (time.perf_counter_ns) over
   100 000 calls, its arguments built inside the timed region (keyword attributes, the
   transcript's text): `session.event(...)` with one and with three attributes, a
   transcript, and a 20 ms 16 kHz audio frame (numpy int16 and bytes) with an explicit
   capture time, while the writer is busy: after every measured call an unmeasured second
   session records a frame of white noise (incompressible), so zstd and file writes run
   beside the measured calls (as in recorder/benches/hot_path.rs). Every 2000 calls both
   sessions are drained (not timed). Around each timed call (outside the timed region)
   getrusage(RUSAGE_THREAD) counts the thread's voluntary context switches: a call that
   slept in the kernel (a contended lock, the allocator's included) counts as one.
2. CPU per recorded call-minute: N calls of two continuous 16 kHz tracks in 20 ms frames and
   30 `vad` events a second, replayed interleaved faster than real time (manual clock,
   explicit times), finished and "uploaded" to a local directory. The same workload goes
   through the Python API and through the Rust API (`_calltape._bench_record_rust`, the same
   loop in Rust) in the same process, alternately; process CPU time (all threads) divided by
   the call-minutes recorded. Median of the runs.

Run with a release build of the package (pip install ./recorder/python, or maturin develop
--release): python recorder/python/bench/bench_record.py [--quick] [--hot-path-only]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import statistics
import tempfile
import time

import numpy as np

import calltape
from calltape import _calltape

FRAME_NS = 20_000_000
RATE = 16_000
FRAME = 320
EVENTS_PER_S = 30
STARTED_AT = 1_795_255_200


def percentiles(ns: list[int]) -> dict[str, int]:
    ns = sorted(ns)
    at = lambda q: ns[min(len(ns) - 1, int(len(ns) * q))]  # noqa: E731
    return {"p50": at(0.5), "p99": at(0.99), "p99.9": at(0.999), "max": ns[-1]}


async def hot_path(n: int) -> dict[str, dict[str, int]]:
    with tempfile.TemporaryDirectory() as dest, tempfile.TemporaryDirectory() as spool:
        rec = calltape.Recorder(f"file://{dest}", spool_dir=spool, memory_budget=1 << 30,
                                queue_capacity=1 << 16, retry_interval=None)
        tracks = [("user", RATE, 1), ("agent", RATE, 1)]
        s = rec.start_session("measured", tracks=tracks)
        load = rec.start_session("load", tracks=tracks, manual_clock=True)
        rng = np.random.default_rng(7)
        noise = rng.integers(-32768, 32767, size=(64, FRAME), dtype=np.int16)
        frame = np.full(FRAME, 1000, dtype=np.int16)
        frame_bytes = frame.tobytes()
        clock = time.perf_counter_ns
        out: dict[str, dict[str, int]] = {}
        load_t = 0

        usage = resource.getrusage
        thread = resource.RUSAGE_THREAD

        async def run(name, call):
            nonlocal load_t
            ns = [0] * n
            slept = slept_slow = 0
            for i in range(n):
                v0 = usage(thread).ru_nvcsw
                t0 = clock()
                call(i)
                took = clock() - t0
                if usage(thread).ru_nvcsw > v0:
                    slept += 1
                    slept_slow += took > 100_000
                ns[i] = took
                load.audio(2, noise[i % 64], at=load_t)  # keeps the writer busy
                load_t += FRAME_NS
                if i % 2000 == 1999:
                    await s.drained()
                    await load.drained()
            out[name] = percentiles(ns) | {"slept": slept, "slept >100 µs": slept_slow}

        await run("timer only (perf_counter_ns pair)", lambda i: None)
        null = NullSession()
        await run("a Python method doing nothing, event's arguments",
                  lambda i: null.event("agent_state_changed", old_state="listening",
                                       new_state="thinking", n=i))
        # where an event's time goes: the call into the extension with event's signature
        # (arguments parsed, **attrs collected into a dict), then the conversion to a Rust
        # record (name and attributes copied into Rust strings and JSON values)
        args = getattr(_calltape, "_bench_event_args", None)
        convert = getattr(_calltape, "_bench_event_convert", None)
        if args is None or convert is None:
            print("(this build of the extension lacks _bench_event_args/_bench_event_convert: "
                  "the binding's floor is not measured)")
        else:
            await run("extension call with event's signature, doing nothing",
                      lambda i: args("agent_state_changed", old_state="listening",
                                     new_state="thinking", n=i))
            await run("... and converting name + 3 attributes to a record",
                      lambda i: convert("agent_state_changed", old_state="listening",
                                        new_state="thinking", n=i))
        await run("event(name, i=i)", lambda i: s.event("agent_state_changed", i=i))
        await run("event(name, 3 attributes)",
                  lambda i: s.event("agent_state_changed", old_state="listening",
                                    new_state="thinking", n=i))
        await run("transcript(user, text, is_final=False)",
                  lambda i: s.transcript("user", "book a table for two", is_final=False))
        await run("audio 20 ms 16 kHz (numpy int16, at=)",
                  lambda i: s.audio(1, frame, at=i * FRAME_NS))
        await run("audio 20 ms 16 kHz (bytes, at=)",
                  lambda i: s.audio(1, frame_bytes, at=i * FRAME_NS))
        st = s.status()
        out["_dropped"] = {"samples": st.dropped_samples, "records": st.dropped_records}
        await s.finish()
        await load.finish()
        await rec.shutdown(10)
    return out


def workload(seconds: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A 10 s loop per track: a voice-like tone over a line's noise floor, and the floor."""
    rng = np.random.default_rng(11)
    n = seconds * RATE
    t = np.arange(n) / RATE
    floor = lambda: rng.integers(-3, 4, size=n)  # noqa: E731
    voice = (np.sin(2 * np.pi * 180 * t) * 3000 * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(int)
    user = (voice + floor()).astype(np.int16)
    agent = floor().astype(np.int16)
    return user, agent


class NullSession:
    """The loop's own cost: the same calls into Python methods that do nothing."""

    def audio(self, track, pcm, at=None):
        pass

    def event(self, name, at=None, **attrs):
        pass

    def end(self, reason, outcome=None, at=None):
        pass

    async def drained(self):
        pass

    async def finish(self):
        class Report:
            dropped_samples = dropped_records = 0
        return Report()


async def record_python(rec, calls, seconds, user, agent, tag, null=False) -> int:
    sessions = [
        NullSession() if null else
        rec.start_session(f"bench-py-{tag}-{k}", tracks=[("user", RATE, 1), ("agent", RATE, 1)],
                          started_at=STARTED_AT, manual_clock=True)
        for k in range(calls)
    ]
    ticks = seconds * 1_000_000_000 // FRAME_NS
    every = 1_000_000_000 // EVENTS_PER_S
    loop_len = min(len(user), len(agent)) // FRAME
    # the agent receives its audio as one frame object per 20 ms
    user_frames = [user[f * FRAME:(f + 1) * FRAME] for f in range(loop_len)]
    agent_frames = [agent[f * FRAME:(f + 1) * FRAME] for f in range(loop_len)]
    next_event = n = 0
    for tick in range(ticks):
        t = tick * FRAME_NS
        u, a = user_frames[tick % loop_len], agent_frames[tick % loop_len]
        for s in sessions:
            s.audio(1, u, at=t)
            s.audio(2, a, at=t)
        while next_event < t + FRAME_NS:
            track, prob = 1 + n % 2, (n % 100) / 100
            for s in sessions:
                s.event("vad", at=next_event, track=track, speech_probability=prob)
            n += 1
            next_event += every
        if tick % 50 == 49:
            for s in sessions:
                await s.drained()
    dropped = 0
    for s in sessions:
        s.end("user_hangup", "resolved", at=ticks * FRAME_NS)
        r = await s.finish()
        dropped += r.dropped_samples + r.dropped_records
    return dropped


async def capacity(calls: int, seconds: int, reps: int) -> dict[str, list[float]]:
    user, agent = workload()
    per_minute: dict[str, list[float]] = {"python": [], "rust": [], "loop": []}
    dropped = 0
    with tempfile.TemporaryDirectory() as dest, tempfile.TemporaryDirectory() as spool:
        rec = calltape.Recorder(f"file://{dest}", spool_dir=spool, retry_interval=None)
        # warm-up of both paths (allocator, zstd contexts, page cache)
        await record_python(rec, 2, 5, user, agent, "warm")
        await _calltape._bench_record_rust(rec, 2, 5, user.tobytes(), agent.tobytes(), EVENTS_PER_S, "warm")
        for rep in range(reps):
            for side in ("python", "rust", "loop"):
                c0 = time.process_time()
                if side == "python":
                    dropped += await record_python(rec, calls, seconds, user, agent, str(rep))
                elif side == "loop":
                    await record_python(rec, calls, seconds, user, agent, str(rep), null=True)
                else:
                    dropped += await _calltape._bench_record_rust(
                        rec, calls, seconds, user.tobytes(), agent.tobytes(), EVENTS_PER_S, str(rep))
                cpu = time.process_time() - c0
                per_minute[side].append(cpu / (calls * seconds / 60))
        await rec.shutdown(10)
    per_minute["_dropped"] = [float(dropped)]
    return per_minute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and repetitions")
    ap.add_argument("--hot-path-only", action="store_true", help="only the per-call part")
    args = ap.parse_args()
    n, calls, seconds, reps = (20_000, 4, 30, 1) if args.quick else (100_000, 8, 60, 3)

    print(f"# calltape Python binding benchmark ({platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()})\n")
    hp = asyncio.run(hot_path(n))
    print(f"Per-call cost seen from Python, writer busy ({n} calls each, ns):\n")
    print("| call | p50 | p99 | p99.9 | max | calls that slept (>100 µs) |")
    print("|---|---|---|---|---|---|")
    for name, p in hp.items():
        if not name.startswith("_"):
            print(f"| {name} | {p['p50']} | {p['p99']} | {p['p99.9']} | {p['max']} "
                  f"| {p['slept']} ({p['slept >100 µs']}) |")
    print(f"\ndropped during the measurement: {hp['_dropped']}\n")
    if args.hot_path_only:
        return

    cap = asyncio.run(capacity(calls, seconds, reps))
    py, rs = statistics.median(cap["python"]), statistics.median(cap["rust"])
    print(f"CPU per recorded call-minute ({calls} calls × {seconds} s at once, 2 × 16 kHz + "
          f"{EVENTS_PER_S} events/s each; median of {reps}):\n")
    print("| API | CPU per call-minute | runs |")
    print("|---|---|---|")
    print(f"| Python binding | {py * 1e3:.1f} ms | {', '.join(f'{x * 1e3:.1f}' for x in cap['python'])} |")
    print(f"| Rust API (same loop, same process) | {rs * 1e3:.1f} ms | {', '.join(f'{x * 1e3:.1f}' for x in cap['rust'])} |")
    lp = statistics.median(cap["loop"])
    print(f"| the Python loop alone (no-op methods) | {lp * 1e3:.1f} ms | {', '.join(f'{x * 1e3:.1f}' for x in cap['loop'])} |")
    print(f"\nratio Python / Rust: {py / rs:.2f}x (goal ≤ 1.3x); without the loop's own cost: "
          f"{(py - lp) / rs:.2f}x; dropped: {int(cap['_dropped'][0])}")


if __name__ == "__main__":
    main()
