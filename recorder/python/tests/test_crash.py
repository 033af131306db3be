"""A Python process killed with SIGKILL mid-call leaves a spool file that the next Recorder
recovers and uploads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import calltape
from conftest import MS

CHILD = textwrap.dedent(
    """
    import asyncio, sys, numpy as np, calltape
    dest, spool = sys.argv[1], sys.argv[2]
    async def main():
        r = calltape.Recorder(f"file://{dest}", spool_dir=spool, flush_interval=0.05,
                              upload_on_start=False, retry_interval=None)
        s = r.start_session("crash-1", tracks=[("user", 16000, 1)], started_at=1795255200)
        s.turn_start(1, at=0)
        for i in range(50):
            s.audio(1, np.full(320, i, dtype=np.int16), at=i * 20_000_000)
        s.transcript("user", "said before the kill", turn=1, at=1_000_000_000)
        await s.drained()
        part = f"{spool}/crash-1.calltape.part"
        for _ in range(600):  # until the flushed chunks on disk hold the transcript
            try:
                left = calltape.open(part)
                audio = left.totals["audio_frames"].get(1, 0)
                if audio == 50 * 320 and any(r.kind == "transcript" for r in left.records(lane=0)):
                    break
            except calltape.ArchiveError:
                pass  # the header is not on disk yet
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        await asyncio.sleep(120)             # mid-call: never finished
    asyncio.run(main())
    """
)


def test_sigkill_mid_call_is_recovered_and_uploaded(dirs):
    dest, spool = dirs
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(dest), str(spool)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == "ready", f"child failed: {line!r} {child.stderr.read()}"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    parts = list(spool.glob("crash-1*.part"))
    assert parts, f"the killed process left no spool file: {list(spool.iterdir())}"
    assert not dest.exists() or not list(dest.rglob("*.calltape"))
    # the spool file as the kill left it reads by a forward scan, like `calltape inspect` does
    left = calltape.open(str(parts[0]))
    assert left.scanned and "no usable footer" in left.scanned
    assert [r.data["text"] for r in left.records(lane=0) if r.kind == "transcript"] == [
        "said before the kill"
    ]

    async def recover():
        recorder = calltape.Recorder(f"file://{dest}", spool_dir=str(spool))
        await recorder.upload_pending()
        for _ in range(200):  # the start-up upload may still be verifying
            if list(dest.rglob("crash-1.calltape")):
                break
            await asyncio.sleep(0.05)
        await recorder.shutdown(10)

    asyncio.run(recover())
    uploaded = list(dest.rglob("crash-1.calltape"))
    assert uploaded, f"not uploaded; spool has {list(spool.iterdir())}"
    assert not list(spool.glob("crash-1*")), "the spool copy is deleted after the upload"
    call = calltape.open(str(uploaded[0]))
    assert call.recovered
    assert call.turns[0]["user_text"] == "said before the kill"
    assert call.totals["audio_frames"] == {1: 50 * 320}
    assert call.audio(1, 980 * MS, 1_000 * MS) == (49).to_bytes(2, "little") * 320
