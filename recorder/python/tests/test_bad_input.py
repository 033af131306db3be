"""Bad input raises a clear exception and loses nothing that was recorded around it."""

from __future__ import annotations

import array
import asyncio

import numpy as np
import pytest

import calltape
from conftest import MS, tone


def test_session_ids():
    calltape.validate_session_id("call-42:eu.1_a")
    for bad, why in [("", "empty"), ("a/b", "'/'"), ("x" * 129, "128"), ("a..b", "..")]:
        with pytest.raises(calltape.InvalidSessionIdError) as e:
            calltape.validate_session_id(bad)
        assert "use 1 to 128 bytes" in str(e.value)
        assert isinstance(e.value, calltape.RecorderError) and isinstance(e.value, ValueError)


def test_bad_destinations(tmp_path):
    with pytest.raises(calltape.DestinationError, match="invalid destination URL"):
        calltape.Recorder("not a url", spool_dir=str(tmp_path))
    with pytest.raises(calltape.DestinationError, match="unknown store option"):
        calltape.Recorder("s3://bucket/x", spool_dir=str(tmp_path), store_options={"nonsense": "1"})
    with pytest.raises(calltape.InvalidRedactionRuleError):
        calltape.Recorder(f"file://{tmp_path}/d", spool_dir=str(tmp_path), redaction_rules=[("(", "x")])
    with pytest.raises(TypeError, match="flush_interval"):
        calltape.Recorder(f"file://{tmp_path}/d", spool_dir=str(tmp_path), flush_interval="1s")


def test_bad_calls_raise_and_lose_nothing(dirs):
    dest, spool = dirs

    async def run():
        recorder = calltape.Recorder(f"file://{dest}", spool_dir=str(spool))
        with pytest.raises(calltape.InvalidSessionIdError):
            recorder.start_session("bad id with spaces")
        with pytest.raises(calltape.InvalidSessionInfoError, match="sample rate"):
            recorder.start_session("rate-0", tracks=[("user", 0, 1)])
        with pytest.raises(TypeError, match="a track is"):
            recorder.start_session("track-shape", tracks=[("user", 16000)])
        with pytest.raises(ValueError, match="unknown speaker"):
            recorder.start_session("speaker", tracks=[("caller", 16000, 1)])
        s = recorder.start_session("bad-1", manual_clock=True,
                                   tracks=[("user", 16000, 1), ("agent", 16000, 1)])
        with pytest.raises(calltape.DuplicateSessionError):
            recorder.start_session("bad-1")
        good = 0
        for i in range(20):
            s.audio(1, tone(320, 3), at=i * 20 * MS)
            good += 1
            with pytest.raises(calltape.AudioFormatError, match="16-bit"):
                s.audio(1, np.zeros(320, dtype=np.float32), at=i * 20 * MS)
            with pytest.raises(calltape.AudioFormatError, match="int16"):
                s.audio(1, np.zeros(320, dtype=np.int32), at=i * 20 * MS)
            with pytest.raises(calltape.AudioFormatError, match="odd"):
                s.audio(1, b"\x00" * 641, at=i * 20 * MS)
            with pytest.raises(calltape.AudioFormatError):
                s.audio(1, array.array("f", [0.0] * 320), at=i * 20 * MS)
            with pytest.raises(calltape.AudioFormatError):
                s.audio(1, "not audio", at=i * 20 * MS)
            with pytest.raises(calltape.UnknownTrackError, match="no audio track 3"):
                s.audio(3, tone(320, 3), at=i * 20 * MS)
            with pytest.raises(calltape.UnknownTrackError, match="system"):
                s.audio("system", tone(320, 3), at=i * 20 * MS)
            with pytest.raises(TypeError, match="JSON-like"):
                s.event("x", at=i * 20 * MS, obj=object())
            with pytest.raises(ValueError, match="log level"):
                s.log("loud", "x", at=i * 20 * MS)
            s.event("ok", at=i * 20 * MS, i=i)
        s.end("user_hangup", at=400 * MS)
        report = await s.finish()
        with pytest.raises(calltape.SessionFinishedError, match="finish\\(\\) was called"):
            s.audio(1, tone(320, 3))
        with pytest.raises(calltape.SessionFinishedError):
            s.event("late")
        with pytest.raises(calltape.SessionFinishedError, match="already"):
            await s.finish()
        await recorder.shutdown(5)
        with pytest.raises(calltape.ShuttingDownError):
            recorder.start_session("too-late")
        return report, good

    report, good = asyncio.run(run())
    assert report.upload.uploaded and report.dropped_samples == 0 and report.dropped_records == 0
    call = calltape.open(str(dest / report.upload.key))
    assert call.totals["audio_frames"] == {1: good * 320}
    events = [r.data["attributes"]["i"] for r in call.records(lane=0) if r.kind == "event"]
    assert events == list(range(20))
    assert call.totals["end_reason"] == "user_hangup"
