"""The logic behind ``run_bot.py review sample [--week YYYY-Www]`` (run_bot.py only parses).

Draws one ISO week's sample (抽检, ``monitor.review.sampling``) at ``[review] sample_rate`` and
makes the cases not made yet, exactly as the server's hourly job does; the default week is the
last complete one. Prints one line saying what it did, in Chinese.

Exit codes: 0 done (also when every case existed already); 1 refused or failed (a bad week, the
rate is 0, the database is unusable), with one line on stderr saying why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.archive.database import make_engine
from monitor.archive.schema import create_schema
from monitor.archive.writer import GroupCommitWriter
from monitor.errors import SchemaMismatch, StorageError
from monitor.review.sampling import IsoWeek, SampleReport, run_sampling

__all__ = ["EXIT_FAILED", "EXIT_OK", "sample_command"]

EXIT_OK = 0
EXIT_FAILED = 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


def sample_command(
    *,
    database_url: str,
    rate: float,
    week: str | None,
    stdout: TextIO,
    stderr: TextIO,
    clock: Callable[[], datetime] = _utcnow,
) -> int:
    """Run ``review sample``; returns the exit code."""
    now = clock()
    try:
        wanted = IsoWeek.parse(week) if week else IsoWeek.of(now).previous()
    except ValueError:
        print(f"错误：--week 应为 ISO 周，例如 2026-W48（收到 {week!r}）", file=stderr)
        return EXIT_FAILED
    if rate <= 0:
        print("错误：[review] sample_rate 为 0（抽检已关闭），未抽取任何会话", file=stderr)
        return EXIT_FAILED
    if wanted.start > now:
        print(f"错误：{wanted} 尚未开始", file=stderr)
        return EXIT_FAILED
    try:
        engine = make_engine(database_url)
    except (SQLAlchemyError, OSError, ValueError) as exc:
        print(f"错误：[storage].database_url 不可用（{exc.__class__.__name__}）", file=stderr)
        return EXIT_FAILED
    try:
        create_schema(engine)
        report = asyncio.run(_run(engine, wanted, rate, now))
    except (SchemaMismatch, StorageError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        print(f"错误：无法使用数据库（{reason}）", file=stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()
    unfinished = "（本周尚未结束，之后的会话不在其中）" if wanted.end > now else ""
    print(_summary(report) + unfinished, file=stdout)
    return EXIT_OK


async def _run(engine: Engine, week: IsoWeek, rate: float, now: datetime) -> SampleReport:
    async with GroupCommitWriter(engine) as writer:
        return await run_sampling(writer, week, rate, now)


def _summary(report: SampleReport) -> str:
    existing = report.picked - len(report.created)
    return (
        f"{report.week}：{report.staff} 名员工共 {report.candidates} 个无命中会话，"
        f"抽检 {report.picked} 个，新建案件 {len(report.created)} 个"
        + (f"（{existing} 个已存在）" if existing else "")
    )
