"""Record a call through every method to file:// and to S3, read it back with calltape.open,
and compare it with `calltape inspect --json` and with the spec's stdlib reader."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import numpy as np

import calltape
import calltape_reader
from conftest import MS, inspect_json, record_call, s3_env, start, tone


def norm(v):
    """As JSON would carry it (int dict keys become strings)."""
    return json.loads(json.dumps(v))


def record_key(kind: str, data: dict, samples: bytes | None) -> tuple:
    return (kind, json.dumps(norm(data), sort_keys=True), samples or b"")


def check_call(call: calltape.Call, inspected: dict, reference: calltape_reader.Archive) -> None:
    # header, totals, duration and turns (latency breakdowns and flags): what inspect prints
    assert norm(call.header) == inspected["header"]
    assert norm(call.totals) == inspected["totals"]
    assert call.duration_ns == inspected["duration_ns"]
    assert call.file_bytes == inspected["file"]["bytes"]
    assert call.chunk_count == inspected["file"]["chunks"]
    # inspect adds what it reads besides the summary: `slow` (its threshold) and `tools`
    turns = [{k: v for k, v in t.items() if k not in ("slow", "tools")} for t in inspected["turns"]]
    assert norm(call.turns) == turns
    assert call.tracks == call.header["tracks"]
    assert norm(call.summary)["turns"] == turns

    # every record, against the stdlib reader
    mine = list(call.records())
    times = [r.time_ns for r in mine]
    assert times == sorted(times), "records() must be in time order"
    theirs = list(reference.iter_records())
    assert len(mine) == len(theirs) == call.totals["records"]
    def ref_key(r):
        if r.kind == calltape_reader.KIND_AUDIO:
            d = dict(r.data)
            samples = d.pop("samples")
            d["frames"] = len(samples) // d["channels"]
            return (r.time_ns, *record_key("audio", d, samples.tobytes()))
        return (r.time_ns, *record_key(r.kind_name, r.data, None))
    assert sorted((r.time_ns, *record_key(r.kind, r.data, r.samples)) for r in mine) == sorted(
        ref_key(r) for r in theirs
    )
    for r in mine:
        assert r.lane == (r.data["track"] if r.kind == "audio" else 0)

    # filters: one lane, a time range
    control = list(call.records(lane=0))
    assert [(r.time_ns, r.kind) for r in control] == [
        (r.time_ns, r.kind) for r in mine if r.lane == 0
    ]
    window = list(call.records(from_ns=1_000 * MS, to_ns=2_000 * MS))
    assert window and all(1_000 * MS <= r.time_ns <= 2_000 * MS for r in window)
    assert len(window) == sum(1_000 * MS <= t <= 2_000 * MS for t in times)


def check_content(call: calltape.Call) -> None:
    # redaction applied before anything was written
    t1 = call.turns[0]
    assert t1["user_text"] == "My card is [CARD], mail me at [EMAIL]"
    assert t1["tool_calls"] == 1 and t1["latency"]["llm_ttft_ns"] == 300 * MS
    assert call.turns[1]["interrupted"] is True and call.turns[1]["errors"] == 1
    assert call.totals["end_reason"] == "user_hangup"
    logs = [r for r in call.records(lane=0) if r.kind == "log"]
    assert logs[0].data["message"] == "booking confirmed for [EMAIL]"
    assert logs[0].turn == 1 and logs[0].data["fields"] == {"booking": "B-17"}
    # audio: the user's first second sample for sample, as numpy and as bytes
    user = call.audio(1, 0, 1_000 * MS, numpy=True)
    assert user.dtype == np.int16 and user.shape == (16_000,)
    assert np.array_equal(user, np.concatenate([tone(320, 40 + i) for i in range(50)]))
    assert call.audio(1, 0, 1_000 * MS) == user.tobytes()
    agent = call.audio(2, 1_820 * MS, 1_840 * MS, numpy=True)
    assert np.array_equal(agent, tone(480, 20))
    # nothing recorded between the turns: silence, never collapsed
    assert not call.audio(1, 1_000 * MS, 3_000 * MS, numpy=True).any()
    assert len(call.audio(2, 0, 1_000 * MS)) == 2 * 24_000


def test_file_destination(dirs, calltape_bin):
    dest, spool = dirs

    async def run():
        recorder = calltape.Recorder(f"file://{dest}", spool_dir=str(spool), redact_pii=True)
        session = start(recorder, "py-file-1")
        record_call(session)
        report = await session.finish()
        await recorder.shutdown(5)
        return report

    report = asyncio.run(run())
    assert report.upload.uploaded, report
    assert report.upload.key == "2026/11/21/py-file-1.calltape"
    assert (report.dropped_samples, report.dropped_records, report.error) == (0, 0, None)
    path = dest / report.upload.key
    assert report.upload.bytes == path.stat().st_size
    assert not list(spool.glob("*.calltape*")), "the spool copy is deleted after upload"

    for location in (str(path), f"file://{path}"):
        call = calltape.open(location)
        with calltape_reader.open_archive(str(path)) as reference:
            check_call(call, inspect_json(calltape_bin, str(path)), reference)
        check_content(call)


def test_s3_destination(dirs, calltape_bin, s3_bucket, moto_endpoint):
    _, spool = dirs
    env = s3_env(moto_endpoint)

    async def run():
        recorder = calltape.Recorder(
            f"s3://{s3_bucket}/calls", spool_dir=str(spool), redact_pii=True,
            store_options={"aws_endpoint": moto_endpoint, "aws_allow_http": "true",
                           "aws_region": env["AWS_REGION"],
                           "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                           "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]},
        )
        session = start(recorder, "py-s3-1")
        record_call(session)
        report = await session.finish()
        await recorder.shutdown(5)
        return report

    report = asyncio.run(run())
    assert report.upload.uploaded, report
    assert report.upload.key == "calls/2026/11/21/py-s3-1.calltape"
    url = f"s3://{s3_bucket}/{report.upload.key}"

    import boto3

    body = boto3.client("s3", endpoint_url=moto_endpoint, region_name=env["AWS_REGION"]).get_object(
        Bucket=s3_bucket, Key=report.upload.key
    )["Body"].read()
    assert len(body) == report.upload.bytes

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # calltape.open takes the AWS settings from the environment
    try:
        call = calltape.open(url)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # the same with explicit store options instead of the environment
    same = calltape.open(url, store_options={"aws_endpoint": moto_endpoint,
                                                 "aws_allow_http": "true"})
    assert same.turns == call.turns
    with calltape_reader.open_archive(body) as reference:
        check_call(call, inspect_json(calltape_bin, url, env), reference)
    check_content(call)


def test_open_errors(tmp_path: Path):
    missing = tmp_path / "nope.calltape"
    try:
        calltape.open(str(missing))
    except calltape.ArchiveError as e:
        assert str(missing) in str(e)
    else:
        raise AssertionError("opening a missing file must raise")
    junk = tmp_path / "junk.calltape"
    junk.write_bytes(b"not an archive at all" * 10)
    try:
        calltape.open(str(junk))
    except calltape.ArchiveError as e:
        assert "junk.calltape" in str(e)
    else:
        raise AssertionError("opening junk must raise")
