"""Many calls at once, redaction, the logging handler, the explicit-time view, reports."""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np

import calltape
import calltape_reader
from conftest import MS, tone


def test_fifty_concurrent_asyncio_sessions(dirs):
    dest, spool = dirs
    frames = 25

    async def call(recorder: calltape.Recorder, k: int) -> calltape.FinishReport:
        s = recorder.start_session(f"conc-{k:02}", tracks=[("user", 16000, 1), ("agent", 16000, 1)])
        s.turn_start(1)
        for i in range(frames):
            # capture times of the frames: they arrive here faster than real time
            s.audio(1, tone(320, k + 1), at=i * 20 * MS)
            s.audio("agent", tone(320, k + 2).tobytes(), at=i * 20 * MS)
            if i % 5 == 0:
                s.event("tick", turn=1, call=k, i=i)
            await asyncio.sleep(0.002)  # the other 49 calls run meanwhile
        s.transcript("user", f"caller {k}", turn=1)
        s.turn_end(1)
        s.end("user_hangup")
        return await s.finish()

    async def run():
        recorder = calltape.Recorder(f"file://{dest}", spool_dir=str(spool))
        reports = await asyncio.gather(*(call(recorder, k) for k in range(50)))
        assert recorder.health().open_sessions == 0
        await recorder.shutdown(5)
        return reports

    reports = asyncio.run(run())
    assert len(reports) == 50
    for k, r in enumerate(reports):
        assert r.upload.uploaded and r.dropped_samples == 0 and r.dropped_records == 0, r
        call = calltape.open(str(dest / r.upload.key))
        assert call.header["session_id"] == f"conc-{k:02}"
        assert call.totals["audio_frames"] == {1: frames * 320, 2: frames * 320}
        assert call.turns[0]["user_text"] == f"caller {k}"
        ticks = [rec for rec in call.records(lane=0) if rec.kind == "event"]
        assert [t.data["attributes"] for t in ticks] == [
            {"call": k, "i": i} for i in range(0, frames, 5)
        ]


def test_redaction_builtin_and_custom_rules(dirs):
    dest, spool = dirs

    async def run():
        recorder = calltape.Recorder(
            f"file://{dest}", spool_dir=str(spool), redact_pii=True,
            redaction_rules=[(r"ACCT-\d{6}", "[ACCOUNT]")],
        )
        s = recorder.start_session("redact-1", manual_clock=True)
        s.turn_start(1, at=0)
        s.transcript("user", "call me on +1 415 555 0100 about ACCT-123456", turn=1, at=MS)
        s.event("note", at=2 * MS, email="bob@example.org", card="4111-1111-1111-1111")
        s.log("warn", "refund to 5500 0000 0000 0004 for ACCT-654321", at=3 * MS)
        s.tool_call("lookup", 4 * MS, 5 * MS, arguments={"email": "bob@example.org"},
                    output={"account": "ACCT-000042"})
        s.turn_end(1, at=6 * MS)
        r = await s.finish()
        await recorder.shutdown(5)
        return r

    r = asyncio.run(run())
    call = calltape.open(str(dest / r.upload.key))
    recs = {rec.kind: rec.data for rec in call.records(lane=0)}
    assert recs["transcript"]["text"] == "call me on [PHONE] about [ACCOUNT]"
    assert recs["event"]["attributes"] == {"email": "[EMAIL]", "card": "[CARD]"}
    assert recs["log"]["message"] == "refund to [CARD] for [ACCOUNT]"
    assert recs["tool_call"]["arguments"] == {"email": "[EMAIL]"}
    assert recs["tool_call"]["output"] == {"account": "[ACCOUNT]"}
    # nowhere in the archive: every frame decoded by the spec's stdlib reader
    dumped = json.dumps(calltape_reader.dump((dest / r.upload.key).read_bytes()))
    assert "[EMAIL]" in dumped
    for secret in ("415 555", "bob@example.org", "4111", "5500 0000", "ACCT-"):
        assert secret not in dumped


def test_logging_handler_records_into_the_current_session(dirs):
    dest, spool = dirs
    log = logging.getLogger("agent.test")
    log.setLevel(logging.DEBUG)
    handler = calltape.LoggingHandler()
    log.addHandler(handler)

    async def one_call(recorder, sid):
        s = recorder.start_session(sid)
        with s.activate():
            assert calltape.current_session() is s
            log.info("hello from %s", sid, extra={"turn": 2, "caller": "ann"})
            await asyncio.sleep(0.01)
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("tool failed")
        assert calltape.current_session() is None
        log.warning("after the with block: not recorded")
        return await s.finish()

    async def run():
        recorder = calltape.Recorder(f"file://{dest}", spool_dir=str(spool))
        reports = await asyncio.gather(one_call(recorder, "log-a"), one_call(recorder, "log-b"))
        await recorder.shutdown(5)
        return reports

    try:
        reports = asyncio.run(run())
    finally:
        log.removeHandler(handler)
    for sid, r in zip(("log-a", "log-b"), reports):
        logs = [rec for rec in calltape.open(str(dest / r.upload.key)).records(lane=0)
                if rec.kind == "log"]
        assert [l.data["message"].splitlines()[0] for l in logs] == [f"hello from {sid}", "tool failed"]
        assert logs[0].turn == 2 and logs[0].data["level"] == "info"
        assert logs[0].data["target"] == "agent.test"
        assert logs[0].data["fields"] == {"caller": "ann"}
        assert logs[1].data["level"] == "error" and "ValueError: boom" in logs[1].data["message"]


def test_at_view_stage_guard_and_status(dirs):
    dest, spool = dirs

    async def run():
        recorder = calltape.Recorder(f"file://{dest}", spool_dir=str(spool))
        s = recorder.start_session("at-1", manual_clock=True, tracks=[("agent", 16000, 2)])
        at = s.at(5 * MS)
        assert at.time_ns == 5 * MS and s.now_ns() == 5 * MS
        at.turn_start(1, "agent")
        stereo = np.stack([tone(160, 1), tone(160, 2)], axis=1)  # (frames, channels)
        at.audio(1, stereo)
        try:
            with s.stage(1, "tts", at=6 * MS) as tts:
                tts.first_byte(at=7 * MS)
                raise TimeoutError("provider")
        except TimeoutError:
            pass
        s.at(20 * MS).turn_end(1)
        status = s.status()
        assert status.state == "recording" and status.session_id == "at-1"
        r = await s.finish()
        await recorder.shutdown(5)
        return r

    r = asyncio.run(run())
    call = calltape.open(str(dest / r.upload.key))
    stage = next(rec for rec in call.records(lane=0) if rec.kind == "stage_timing")
    assert stage.data["ttfb_ns"] == MS and stage.data["attributes"] == {"error": "TimeoutError"}
    pcm = call.audio(1, 5 * MS, 15 * MS, numpy=True)
    assert pcm.shape == (160, 2) and np.array_equal(pcm, np.stack([tone(160, 1), tone(160, 2)], 1))


def test_on_error_and_health_report_an_unusable_spool(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    issues: list[calltape.Issue] = []

    async def run():
        recorder = calltape.Recorder(f"file://{tmp_path}/dest", spool_dir=str(blocker / "spool"),
                                     on_error=issues.append)
        for _ in range(100):  # the callback runs on a thread of its own
            if issues:
                break
            await asyncio.sleep(0.05)
        s = recorder.start_session("degraded-1")
        s.event("still accepted")  # recording never raises for a broken disk: it degrades
        report = await s.finish()
        health = recorder.health()
        await recorder.shutdown(2)
        return report, health

    report, health = asyncio.run(run())
    assert issues and "spool directory" in issues[0].message, issues
    # the recorder's problem, then the session's (reported once, also in its report)
    assert health.errors >= 2 and "degraded-1" in (health.last_error or "")
    assert any(i.session_id == "degraded-1" for i in issues)
    assert not report.upload.uploaded and report.upload.reason and report.error
