"""Smoke test of the search benchmark as a user runs it (``python -m bench search --quick``):
3,000 generated messages on SQLite and PostgreSQL, the whole query mix timed; the invariants of
its ``--json`` report, not the timing. Never imports ``bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg

from tests.support.paths import REPO


def test_search_bench_quick_loads_caches_and_times_every_query_class(
    tmp_path: Path, pg_url: str
) -> None:
    out = tmp_path / "search.json"
    seed = str(uuid.uuid4().int % 1_000_000 + 1_000)  # a corpus database of this test's own
    argv = ["search", "--quick", "--repeat", "1", "--seed", seed, "--cache-dir", str(tmp_path)]
    argv += ["--database-url", pg_url, "--json", str(out)]

    def bench() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bench", *argv],
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    try:
        done = bench()
        assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: a target missed
        reports: list[dict[str, Any]] = json.loads(out.read_text())
        assert [r["backend"] for r in reports] == ["sqlite", "postgresql"]
        for report in reports:
            assert report["corpus"]["messages"] == 3000 and report["corpus"]["hits"] > 0
            assert not report["cached"]
            assert {"1 char, common", "4+ chars", "+ staff", "+ case state", "filters only"} <= set(
                report["classes"]
            )
            assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"]
        assert "target p95 < 100 ms" in done.stdout
        again = bench()  # the second run reuses both corpora
        assert all(r["cached"] for r in json.loads(out.read_text())), again.stdout + again.stderr
    finally:
        with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "bench_search_3000_{seed}" WITH (FORCE)')
