"""``run_bot.py archive purge`` and ``archive holds`` through a real subprocess on a seeded SQLite
archive (the embedded default): the Chinese summary, the files removed, and ``archive verify``
exiting 0 afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.archive import make_engine
from monitor.archive.media_store import MediaStore
from tests.support.app import write_config
from tests.support.paths import REPO
from tests.support.retention import DAYS, KEPT, message_ids, seed


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the config's URL counts
    return subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), "archive", *args, "--config", str(config)],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    eng = make_engine(sqlite_url)
    yield eng  # type: ignore[misc]
    eng.dispose()


def config_with(tmp_path: Path, url: str, days: int) -> Path:
    media = tmp_path / "media"
    extra = f'[archive]\nretention_days = {days}\n[msgaudit]\nmedia_dir = "{media}"\n'
    return write_config(tmp_path, url, extra=extra)


async def test_purge_then_verify_through_the_cli(
    engine: Engine, sqlite_url: str, tmp_path: Path
) -> None:
    seeded = await seed(engine, tmp_path / "media")
    config = config_with(tmp_path, sqlite_url, DAYS)

    dry = run(config, "purge", "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert "预演（未删除任何数据）" in dry.stdout
    assert "将删除消息 3 条、命中 2 条、消息标记 1 条" in dry.stdout
    assert len(message_ids(engine)) == len(KEPT) + 3

    done = run(config, "purge")
    assert (done.returncode, done.stderr) == (0, "")
    assert (
        "删除消息 3 条、命中 2 条、消息标记 1 条、告警关联 1 条、媒体记录 1 条、媒体文件 1 个"
        in done.stdout
    )
    assert "因法律保留或未结案件保留消息 5 条" in done.stdout
    assert "删除已结案件 1 个（备注 1 条）" in done.stdout
    assert message_ids(engine) == {seeded.ids[name] for name in KEPT}
    assert not MediaStore(tmp_path / "media").exists(seeded.media_sha)

    verify = run(config, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "4 rows purged by retention" in verify.stdout  # 3 messages and 1 flag

    again = run(config, "purge")
    assert again.returncode == 0 and "删除消息 0 条" in again.stdout
    assert run(config, "verify").returncode == 0

    holds = run(config, "holds")
    assert holds.returncode == 0
    lines = holds.stdout.splitlines()
    assert len(lines) == 2
    assert any("员工 zhang 由 admin" in line and "调查" in line for line in lines)
    assert any("会话 kf:K:wmB" in line and "诉讼" in line for line in lines)


def test_retention_zero_purges_nothing(sqlite_url: str, tmp_path: Path) -> None:
    config = config_with(tmp_path, sqlite_url, 0)
    result = run(config, "purge")
    assert result.returncode == 0
    assert "永久保留" in result.stdout
