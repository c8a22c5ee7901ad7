"""Smoke test of the kf benchmark as a user runs it (``python -m bench kf --quick``): 300 queued
messages, one callback, the real app and the fake WeCom over loopback HTTP; the invariants, not
the timing, read from its ``--json`` report. Never imports ``bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO


@pytest.mark.parametrize("backend", ["sqlite", "postgresql+redis"])
def test_kf_bench_quick_archives_everything_once_and_keeps_the_budget(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    out = tmp_path / "kf.json"
    argv = ["kf", "--quick", "--json", str(out)]
    if backend != "sqlite":
        argv += ["--database-url", str(request.getfixturevalue("pg_url"))]
        argv += ["--redis-url", str(request.getfixturevalue("redis_url"))]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    settings = report["settings"]
    assert settings["messages"] == 300 and settings["redis"] == (backend != "sqlite")
    assert settings["database"] == backend.partition("+")[0]

    assert report["ok"], report["failures"]
    kinds, calls, sent = report["kinds"], report["calls"], report["sent"]
    assert sum(kinds.values()) == 300 and report["archived_s"] is not None
    assert [p["items"] for p in report["pages"]] == [300] == [calls["kf/sync_msg"] * 300]
    # Every customer message decided once; the mix makes every path of the decision happen.
    decisions = report["decisions"]
    questions = 300 - kinds["staff"]
    assert sum(decisions.values()) == questions
    assert {"replied", "unanswered", "with_human", "handoff:rule", "handoff:risk"} <= set(decisions)
    assert decisions["budget"] > 0  # the customer writing 10 ran out of slots...
    assert (
        report["most_to_one_customer"] == 5
    )  # ...and got exactly WeCom's five, the last a hand-off
    assert sent["reply"] > 0 and sent["handoff"] > 0
    assert calls["kf/service_state/trans"] == sent["handoff"]
    assert report["alerts"] > 0
    assert not report["refused"] and report["resent_msgids"] == 0
    assert set(report["actions"]) == {"sent"}
    first, last = report["first_reply_s"], report["last_reply_s"]
    assert first is not None and last is not None
    assert 0 < first <= last
    assert report["msgs_per_s"] > 0

    checks = [line for line in done.stdout.splitlines() if line.startswith("checks (")]
    assert len(checks) == 1 and checks[0].endswith("OK")
