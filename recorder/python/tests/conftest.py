"""Shared fixtures: the `calltape` CLI, the stdlib reader of format-spec/python, a moto S3
bucket, and a recorded call that uses every recording method."""

from __future__ import annotations

import array
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import calltape

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "format-spec" / "python"))

import calltape_reader  # noqa: E402  (the spec's independent stdlib reader)

MS = 1_000_000
STARTED_AT = 1_795_255_200  # 2026-11-21T00:00:00Z


@pytest.fixture(scope="session")
def calltape_bin() -> str:
    """The replayer CLI: $CALLTAPE_BIN, else target/debug/calltape (`cargo build -p calltape`)."""
    path = os.environ.get("CALLTAPE_BIN") or str(REPO / "target" / "debug" / "calltape")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no calltape CLI at {path}: run `cargo build -p calltape` or set CALLTAPE_BIN")
    return path


def inspect_json(calltape_bin: str, location: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [calltape_bin, "inspect", "--json", location],
        check=True, capture_output=True, text=True, env={**os.environ, **(env or {})},
    )
    return json.loads(out.stdout)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    dest, spool = tmp_path / "dest", tmp_path / "spool"
    return dest, spool


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    endpoint = os.environ.get("CALLTAPE_MOTO_ENDPOINT")
    if not endpoint:
        pytest.skip(
            "S3 tests SKIPPED: CALLTAPE_MOTO_ENDPOINT is not set (.ci/run starts moto; locally: "
            "python3 -m moto.server -H 127.0.0.1 -p 5055 & export "
            "CALLTAPE_MOTO_ENDPOINT=http://127.0.0.1:5055)"
        )
    return endpoint


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    import boto3

    name = f"calltape-py-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    ).create_bucket(Bucket=name)
    return name


def s3_env(endpoint: str) -> dict[str, str]:
    """The AWS environment a reader (calltape.open, the CLI) needs for moto."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }


def tone(n: int, level: int) -> np.ndarray:
    """n samples of a recognisable int16 pattern."""
    return ((np.arange(n) % 50 - 25) * level).astype(np.int16)


def record_call(session: calltape.Session) -> None:
    """Two turns through every recording method, explicit times (manual clock), the audio
    handed in as numpy, array('h'), bytes, bytearray and memoryview."""
    s = session
    s.turn_start(1, "user", at=0)
    for i in range(50):  # 1 s of user speech, 20 ms frames, numpy int16
        s.audio(1, tone(320, 40 + i), at=i * 20 * MS)
    s.transcript("user", "My card is 4111 1111 1111 1111, mail me at ann@example.com",
                 turn=1, confidence=0.93, language="en", start_ns=0, end_ns=1_000 * MS,
                 at=1_010 * MS)
    s.stage_timing("eou", 1_000 * MS, 1_120 * MS, turn=1)
    with s.stage(1, "llm", at=1_150 * MS) as llm:
        llm.first_token(at=1_450 * MS)
        llm.tokens(812, 40)
        llm.model("gpt-x", "openai")
        llm.end(at=1_700 * MS)
    s.tool_call("book_table", 1_460 * MS, 1_600 * MS, arguments={"party": 2, "time": "19:00"},
                output={"ok": True, "id": "B-17"}, turn=1, call_id="c1")
    tts = s.at(1_700 * MS).stage(1, "tts")
    tts.first_byte(at=1_800 * MS)
    tts.characters(24)
    tts.end(at=2_300 * MS)
    s.stage_timing("playback", 1_820 * MS, 2_900 * MS, turn=1)
    agent = array.array("h", tone(480, 20).tolist())
    for i in range(45):  # agent audio from 1.82 s, array('h') and bytes alternating
        frame = agent if i % 2 else bytes(agent)
        s.audio(2, frame, at=1_820 * MS + i * 20 * MS)
    s.transcript("agent", "Booked for two at seven.", turn=1, start_ns=1_820 * MS,
                 end_ns=2_720 * MS, at=1_700 * MS)
    s.usage(prompt_tokens=812, completion_tokens=40, tts_characters=24, model="gpt-x", at=2_300 * MS)
    s.state("booking", {"id": "B-17", "party": 2}, turn=1, at=2_310 * MS)
    s.log("info", "booking confirmed for ann@example.com", target="agent.tools", turn=1,
          fields={"booking": "B-17"}, at=2_320 * MS)
    s.turn_end(1, reported_e2e_ns=800 * MS, at=2_900 * MS)

    at = s.at(3_000 * MS)
    at.turn_start(2)
    for i in range(25):
        s.audio("user", memoryview(bytearray(tone(320, 7).tobytes())).cast("h"),
                at=3_000 * MS + i * 20 * MS)
    s.transcript("user", "Actually make it three", turn=2, end_ns=3_500 * MS, at=3_520 * MS)
    s.event("interruption", turn=2, at=3_400 * MS, by="user", overlap_ms=120)
    s.event("error", turn=2, at=3_600 * MS, message="tts provider timeout")
    s.transcript("agent", "Sure, three peo", turn=2, interrupted=True, heard_text="Sure, thr",
                 start_ns=3_900 * MS, end_ns=4_100 * MS, at=3_900 * MS)
    for i in range(10):
        s.audio(2, bytearray(tone(480, 9).tobytes()), at=3_900 * MS + i * 20 * MS)
    s.turn_end(2, interrupted=True, at=4_200 * MS)
    s.end("user_hangup", "resolved", at=4_300 * MS)


def start(recorder: calltape.Recorder, session_id: str) -> calltape.Session:
    return recorder.start_session(
        session_id, agent=("front-desk", "1.4.2"), environment="test",
        tags={"tenant": "acme", "shard": 3},
        tracks=[("user", 16000, 1), ("agent", 24000, 1)],
        started_at=STARTED_AT, manual_clock=True,
    )
