"""Smoke test of the archive benchmark as a user runs it (``python -m bench msgaudit --quick``):
500 records through the real stack on the fake source; the invariants of its ``--json`` report, not
the timing. Never imports ``bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.paths import REPO


def test_msgaudit_bench_quick_archives_every_record_once(tmp_path: Path) -> None:
    out = tmp_path / "msgaudit.json"
    argv = ["msgaudit", "--quick", "--key-bits", "1024", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["records"] == 500 and report["failures"] == []
    assert report["archived"] == report["distinct"] == 500 and report["quarantined"] == 0
    assert report["alerts"] > 0 and report["rate"] > 0
    assert set(report["steps_us"]) >= {"RSA PKCS#1 v1.5 (random key)", "parse the record JSON"}
    assert "records/s" in done.stdout and "lag recovery" in done.stdout
