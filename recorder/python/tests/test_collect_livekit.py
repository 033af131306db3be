"""`calltape collect` driven by livekit-agents' own exporter and upload code.

A collector runs on loopback; `livekit_session_upload.py` (a separate process, since LiveKit's
telemetry sets process-wide OpenTelemetry providers) points LIVEKIT_OBSERVABILITY_URL at it,
emits a session's spans and logs through the framework's OTLP exporters and uploads a real
SessionReport with its Ogg Opus recording through `_upload_session_report`. The archive the
collector writes must match, turn by turn, the one `calltape import livekit` makes from the
same report and recording; the spans and logs must be joined to that session.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import REPO, inspect_json, s3_env

pytest.importorskip("livekit.agents", reason="livekit-agents is not installed (tests/requirements/livekit.txt)")

import calltape_reader  # noqa: E402  (conftest puts format-spec/python on the path)

HERE = Path(__file__).resolve().parent
API_KEY = "collect-test-key"
API_SECRET = "collect-test-secret-0123456789abcdef"
WAIT_S = 120  # bound on waiting for the collector (debug builds decode Opus slowly)


class Collector:
    """`calltape collect` as a subprocess, its --json status lines read on a thread."""

    def __init__(self, calltape_bin: str, destination: str, spool: Path, env: dict[str, str],
                 extra: tuple[str, ...] = ()):
        self.proc = subprocess.Popen(
            [calltape_bin, "collect", "--listen", "127.0.0.1:0", "--destination", destination,
             "--spool", str(spool), "--json", "--linger", "2", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **env, "LIVEKIT_API_KEY": API_KEY, "LIVEKIT_API_SECRET": API_SECRET},
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()
        listening = self.next_event("listening")
        self.url = f"http://{listening['addr']}"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next_event(self, kind: str) -> dict:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                e = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if e["event"] == kind:
                return e
        pytest.fail(f"the collector never reported `{kind}`; stderr:\n{''.join(self.stderr)}")

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=10) as r:
            return json.load(r)

    def stop(self) -> dict:
        self.proc.terminate()
        stopped = self.next_event("stopped")
        assert self.proc.wait(timeout=WAIT_S) == 0, "".join(self.stderr)
        return stopped


def run_agent(out: Path, url: str, job_id: str, secret: str = API_SECRET) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(HERE / "livekit_session_upload.py"), str(out), url, job_id],
        capture_output=True, text=True, timeout=WAIT_S,
        env={**os.environ, "LIVEKIT_API_KEY": API_KEY, "LIVEKIT_API_SECRET": secret,
             "LIVEKIT_OBSERVABILITY_URL": url},
    )


def check_against_import(calltape_bin: str, collected: str, out: Path, env: dict[str, str]) -> None:
    imported = out / "imported.calltape"
    subprocess.run(
        [calltape_bin, "import", "livekit", str(out / "session_report.json"), "--audio",
         str(out / "audio.ogg"), "-o", str(imported)],
        check=True, capture_output=True, text=True,
    )
    mine = inspect_json(calltape_bin, collected, env)
    theirs = inspect_json(calltape_bin, str(imported))
    assert mine["header"]["session_id"] == theirs["header"]["session_id"]
    assert mine["header"]["started_at_unix_ns"] == theirs["header"]["started_at_unix_ns"]
    assert mine["header"]["tracks"] == theirs["header"]["tracks"]
    assert mine["totals"]["audio_frames"] == theirs["totals"]["audio_frames"]
    assert mine["totals"]["end_reason"] == theirs["totals"]["end_reason"]
    assert len(mine["turns"]) == len(theirs["turns"]) == 3
    for a, b in zip(mine["turns"], theirs["turns"]):
        # identical turn by turn (speaker, text, stages, latency breakdown, tools, flags),
        # except the errors the spans add: the failed `tts_request` span lies in turn 3
        extra_errors = 1 if b["turn"] == 3 else 0
        assert a["errors"] == b["errors"] + extra_errors, (a, b)
        assert {k: v for k, v in a.items() if k != "errors"} == {
            k: v for k, v in b.items() if k != "errors"
        }


def check_telemetry_joined(archive: calltape_reader.Archive) -> None:
    records = list(archive.iter_records())
    spans = {r.data["attributes"]["name"]: r for r in records
             if r.kind_name == "event" and r.data["name"] == "otel_span"}
    assert {"agent_session", "user_turn", "agent_turn", "llm_node", "function_tool", "tts_node",
            "tts_request"} <= set(spans)
    # each span sits on the session clock (0 = the recording's start) in the turn it
    # happened in: turn 2 runs from the user's speech at 2.0 s to the agent's reply at 5.2 s
    assert abs(spans["user_turn"].time_ns - 2_000_000_000) < 1_000
    assert spans["agent_turn"].data["turn"] == 2
    assert spans["function_tool"].data["turn"] == 2
    assert spans["agent_session"].data["turn"] is None
    assert spans["function_tool"].data["attributes"]["attributes"]["lk.function_tool.name"] == "get_weather"
    assert spans["tts_request"].data["attributes"]["error"] == "tts provider timed out"
    errors = [r for r in records if r.kind_name == "event" and r.data["name"] == "error"]
    assert [e.data["attributes"]["message"] for e in errors] == ["tts provider timed out"]
    assert errors[0].data["turn"] == 3
    logs = [r for r in records if r.kind_name == "log"]
    messages = [l.data["message"] for l in logs]
    assert "tts provider timed out, retrying" in messages
    # the session-report logs `_upload_session_report` emits (one per chat item)
    assert messages.count("chat item") == 7 and "session report" in messages
    assert all(l.data.get("fields", {}).get("job_id") for l in logs)


def test_livekit_session_to_local_destination(calltape_bin: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    c = Collector(calltape_bin, f"file://{dest}", tmp_path / "spool", {})
    try:
        job = f"AJ_{uuid.uuid4().hex[:10]}"
        agent = run_agent(tmp_path / "agent", c.url, job)
        assert agent.returncode == 0, agent.stderr
        written = c.next_event("session_written")
        assert written["session_id"] == job and written["uploaded"] and written["reason"] == "recording"
        assert written["turns"] == 3 and written["spans"] == 7 and written["logs"] >= 7
        collected = dest / written["key"]
        check_against_import(calltape_bin, str(collected), tmp_path / "agent", {})
        with calltape_reader.open_archive(str(collected)) as archive:
            check_telemetry_joined(archive)
    finally:
        stopped = c.stop()
    assert stopped["sessions_written"] == 1 and stopped["left_in_spool"] == 0


def test_livekit_session_to_s3(calltape_bin: str, tmp_path: Path, s3_bucket: str, moto_endpoint: str) -> None:
    env = s3_env(moto_endpoint)
    c = Collector(calltape_bin, f"s3://{s3_bucket}/calls", tmp_path / "spool", env)
    try:
        job = f"AJ_{uuid.uuid4().hex[:10]}"
        agent = run_agent(tmp_path / "agent", c.url, job)
        assert agent.returncode == 0, agent.stderr
        written = c.next_event("session_written")
        assert written["session_id"] == job and written["uploaded"]
        assert written["key"].startswith("calls/") and written["key"].endswith(f"{job}.calltape")
        url = f"s3://{s3_bucket}/{written['key']}"
        check_against_import(calltape_bin, url, tmp_path / "agent", env)
        import boto3

        body = boto3.client(
            "s3", endpoint_url=moto_endpoint, region_name=env.get("AWS_REGION", "us-east-1"),
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).get_object(Bucket=s3_bucket, Key=written["key"])["Body"].read()
        with calltape_reader.open_archive(body) as archive:
            check_telemetry_joined(archive)
    finally:
        c.stop()


def test_wrong_secret_is_refused_and_nothing_is_written(calltape_bin: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    spool = tmp_path / "spool"
    c = Collector(calltape_bin, f"file://{dest}", spool, {})
    try:
        agent = run_agent(tmp_path / "agent", c.url, "AJ_intruder", secret="not-the-secret-0123456789abcdef")
        # livekit-agents raises on the 401 of its recording upload
        assert agent.returncode != 0
        assert "401" in agent.stderr
        health = c.health()
        assert health["open_sessions"] == 0
        assert health["counters"]["refused"] >= 1
        assert health["counters"]["recordings"] == 0 and health["counters"]["spans"] == 0
    finally:
        stopped = c.stop()
    assert stopped["sessions_written"] == 0
    assert not any(dest.rglob("*")), "nothing may be stored for a refused agent"
    assert not any((spool / "collect-inbox").iterdir())


def test_a_full_collector_answers_with_the_retry_hint_livekit_reads(calltape_bin: str, tmp_path: Path) -> None:
    from livekit import api
    from livekit.agents.telemetry.traces import _parse_retry_delay

    c = Collector(calltape_bin, f"file://{tmp_path / 'dest'}", tmp_path / "spool", {},
                  extra=("--max-sessions", "0"))
    try:
        token = (api.AccessToken(API_KEY, API_SECRET)
                 .with_observability_grants(api.ObservabilityGrants(write=True)).to_jwt())
        from livekit.protocol import metrics as proto_metrics

        header = proto_metrics.MetricsRecordingHeader(job_id="AJ_busy", room_id="RM_busy")
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"header\"; "
                f"filename=\"header.binpb\"\r\nContent-Type: application/protobuf\r\n\r\n").encode()
        body += header.SerializeToString() + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(
            f"{c.url}/observability/recordings/v0", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert refused.value.code == 503
        assert refused.value.headers["Retry-After"] == "10"
        # livekit-agents' own parser finds the delay, so its uploader retries
        assert _parse_retry_delay(refused.value.read()) == 10.0
        assert c.health()["open_sessions"] == 0
    finally:
        c.stop()
