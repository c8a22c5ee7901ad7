"""``run_bot.py review sample [--week YYYY-Www]`` in-process, on the embedded database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

import run_bot
from monitor.alerts import store
from monitor.archive import Archive, GroupCommitWriter, InboundRecord, make_engine
from monitor.archive.schema import create_schema
from tests.support.app import write_config

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # in 2026-W48


async def _seed(url: str) -> None:
    engine = make_engine(url)
    create_schema(engine)
    try:
        async with GroupCommitWriter(engine) as writer:
            archive = Archive(writer, clock=lambda: AT)
            for n in range(4):
                await archive.store_inbound(
                    InboundRecord(
                        dedupe_key=f"m{n}",
                        channel="kf",
                        msg_type="text",
                        from_user="zhangsan",
                        to_user="wk1",
                        create_time=int(AT.timestamp()),
                        raw="{}",
                        content="在的",
                        conversation_id=f"kf:wk1:wmC{n}",
                        direction="staff",
                    )
                )
    finally:
        engine.dispose()


def _cases(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(store.ALERTS)).scalar_one())
    finally:
        engine.dispose()


def test_review_sample_once_per_week(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_seed(sqlite_url))
    config = write_config(tmp_path, sqlite_url, extra="[review]\nsample_rate = 0.5\n")
    args = ["review", "sample", "--week", "2026-W48", "--config", str(config)]
    assert run_bot.main(args) == 0
    out = capsys.readouterr().out
    assert "2026-W48" in out and "抽检 2 个，新建案件 2 个" in out
    assert _cases(sqlite_url) == 2
    assert run_bot.main(args) == 0
    assert "新建案件 0 个（2 个已存在）" in capsys.readouterr().out
    assert _cases(sqlite_url) == 2


def test_review_sample_refuses_a_bad_week_or_a_zero_rate(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, sqlite_url, extra="[review]\nsample_rate = 0.5\n")
    assert run_bot.main(["review", "sample", "--week", "48", "--config", str(config)]) == 1
    assert "--week" in capsys.readouterr().err
    (tmp_path / "off").mkdir()
    off = write_config(tmp_path / "off", sqlite_url, extra="[review]\nsample_rate = 0\n")
    assert run_bot.main(["review", "sample", "--config", str(off)]) == 1
    assert "sample_rate" in capsys.readouterr().err
    assert _cases(sqlite_url) == 0
