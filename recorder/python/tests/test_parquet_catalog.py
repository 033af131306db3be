"""The Parquet catalog (`calltape index --parquet`) read by two engines, DuckDB and pyarrow:
over the sample archives, its per-stage percentiles and counts equal `calltape stats --json`
over the SQLite catalog of the same archives, on a local directory and on S3 (moto)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from conftest import REPO, s3_env

SAMPLES = REPO / "samples" / "archives"
STAGES = ["e2e", "eou", "stt", "llm", "tool", "tts", "rest"]
TABLES = ["sessions", "turns", "tool_calls", "errors", "usage", "damaged"]


def run(calltape_bin: str, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [calltape_bin, *args], capture_output=True, text=True,
        env={**os.environ, **(env or {}), "NO_COLOR": "1"},
    )
    assert out.returncode == 0, f"calltape {args} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def nearest_rank(values: list[float], p: float) -> float | None:
    """SPEC §6's percentile: the ceil(p/100 × n)-th smallest value."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v), max(1, math.ceil(p / 100.0 * len(v)))) - 1]


@pytest.fixture(scope="module")
def stats(calltape_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """`calltape stats --json` over a SQLite catalog of the samples: overall, by day, by version."""
    catalog = tmp_path_factory.mktemp("sqlite") / "catalog.sqlite"
    run(calltape_bin, "index", "--deep", "--catalog", str(catalog), str(SAMPLES))
    out = {}
    for by in (None, "day", "version"):
        args = ["stats", "--json", "--catalog", str(catalog)] + (["--by", by] if by else [])
        out[by or "all"] = json.loads(run(calltape_bin, *args))
    return out


def views(con: duckdb.DuckDBPyConnection, tables: dict[str, object]) -> None:
    for name, t in tables.items():
        con.register(f"{name}_arrow", t)
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_arrow")


def check_against_stats(con: duckdb.DuckDBPyConnection, stats: dict[str, dict]) -> None:
    """The numbers of `calltape stats`, found again with SQL over the Parquet tables."""
    keys = {
        "all": "'all'",
        "day": "CAST(day AS VARCHAR)",
        "version": "agent_name || '@' || agent_version",
    }
    for by, key in keys.items():
        groups = {g["key"]: g for g in stats[by]["groups"]}
        sessions = dict(con.execute(f"SELECT {key}, count(*) FROM sessions GROUP BY 1").fetchall())
        turns = dict(con.execute(f"SELECT {key}, count(*) FROM turns GROUP BY 1").fetchall())
        assert set(sessions) == set(groups), (by, sessions, list(groups))
        for k, g in groups.items():
            assert (sessions[k], turns[k]) == (g["sessions"], g["turns"]), (by, k)
            tool_calls, tool_errors = con.execute(
                f"SELECT sum(tool_calls), sum(tool_errors) FROM sessions WHERE {key} = ?", [k]
            ).fetchone()
            assert (tool_calls, tool_errors) == (g["tool_calls"], g["tool_errors"]), (by, k)
            for stage in STAGES:
                want = g["latency_ms"][stage]
                # DuckDB's discrete quantile is the nearest rank
                count, p50, p95, p99, mx = con.execute(
                    f"""SELECT count({stage}_ms), quantile_disc({stage}_ms, 0.5),
                               quantile_disc({stage}_ms, 0.95), quantile_disc({stage}_ms, 0.99),
                               max({stage}_ms)
                        FROM turns WHERE {stage}_valid AND {key} = ?""", [k]
                ).fetchone()
                got = {"count": count, "p50": p50, "p95": p95, "p99": p99, "max": mx}
                assert got == {m: want[m] for m in got}, (by, k, stage, got, want)
                # and from the rows themselves, the percentile computed here
                values = [r[0] for r in con.execute(
                    f"SELECT {stage}_ms FROM turns WHERE {stage}_valid AND {key} = ?", [k]
                ).fetchall()]
                for p in (50, 95, 99):
                    assert nearest_rank(values, p) == want[f"p{p}"], (by, k, stage, p)
    by_tool = con.execute(
        "SELECT name, count(*), count(*) FILTER (WHERE is_error) FROM tool_calls GROUP BY 1 ORDER BY 1"
    ).fetchall()
    want_tools = [(t["tool"], t["calls"], t["errors"]) for t in stats["all"]["tool_failures_by_tool"]]
    assert by_tool == want_tools
    assert want_tools, "the samples have tool calls: the per-tool check compared nothing"


def check_layout(files: list[str]) -> None:
    parts = [f for f in files if f.endswith(".parquet")]
    assert parts, files
    for f in parts:
        table, day, name = f.split("/")[-3:]
        assert table in TABLES and day.startswith("day=") and name.startswith("part-"), f
    assert not [f for f in parts if "/_staging/" in f], "staged parts left behind"


def check_damaged(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute("SELECT location, reason FROM damaged").fetchall()
    assert len(rows) == 1 and rows[0][0].endswith("crash_truncated.calltape"), rows
    assert "footer" in rows[0][1]


def check_types(dataset: ds.Dataset, turns: ds.Dataset) -> None:
    import pyarrow as pa

    schema = turns.schema
    assert schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("llm_ns").type == pa.int64()
    assert schema.field("llm_ms").type == pa.float64()
    assert schema.field("flags").type.value_type == pa.string()
    fragment = next(iter(turns.get_fragments()))
    meta = fragment.metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    del dataset


def test_local_parquet_matches_stats(calltape_bin: str, stats: dict, tmp_path: Path) -> None:
    dest = tmp_path / "catalog"
    report = json.loads(run(calltape_bin, "index", "--deep", "--json", "--parquet", str(dest), str(SAMPLES)))
    assert (report["indexed"], report["damaged"]) == (4, 1), report
    check_layout([str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()])
    con = duckdb.connect()
    # DuckDB reads the directory itself, partitions from the paths
    for t in TABLES:
        con.execute(
            f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{dest}/{t}/*/*.parquet', hive_partitioning=true)"
        )
    check_against_stats(con, stats)
    check_damaged(con)
    # pyarrow reads the same files as a Hive-partitioned dataset: same numbers
    tables = {t: ds.dataset(dest / t, format="parquet", partitioning="hive") for t in TABLES}
    check_types(tables["sessions"], tables["turns"])
    con2 = duckdb.connect()
    views(con2, {t: d.to_table() for t, d in tables.items()})
    check_against_stats(con2, stats)
    # a second run writes nothing
    again = json.loads(run(calltape_bin, "index", "--deep", "--json", "--parquet", str(dest), str(SAMPLES)))
    assert (again["indexed"], again["unchanged"], again["parts"]) == (0, 5, []), again


def test_s3_parquet_matches_stats(
    calltape_bin: str, stats: dict, moto_endpoint: str, s3_bucket: str
) -> None:
    env = s3_env(moto_endpoint)
    report = json.loads(run(
        calltape_bin, "index", "--deep", "--json", "--parquet", f"s3://{s3_bucket}/catalog",
        str(SAMPLES), env=env,
    ))
    assert (report["indexed"], report["damaged"]) == (4, 1), report
    fs = pafs.S3FileSystem(
        endpoint_override=moto_endpoint, scheme="http", region=env["AWS_REGION"],
        access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    listed = fs.get_file_info(pafs.FileSelector(f"{s3_bucket}/catalog", recursive=True))
    check_layout([i.path for i in listed if i.type == pafs.FileType.File])
    tables = {
        t: ds.dataset(f"{s3_bucket}/catalog/{t}", filesystem=fs, format="parquet", partitioning="hive")
        for t in TABLES
    }
    check_types(tables["sessions"], tables["turns"])
    con = duckdb.connect()
    views(con, {t: d.to_table() for t, d in tables.items()})
    check_against_stats(con, stats)
    check_damaged(con)
