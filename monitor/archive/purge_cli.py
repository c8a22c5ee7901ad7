"""The logic behind ``run_bot.py archive purge`` and ``archive holds`` (run_bot.py only parses
arguments).

``archive purge [--dry-run]`` applies ``[archive].retention_days`` (:mod:`monitor.archive.retention`):
a progress bar on stderr while it is a terminal, then a summary in Chinese on stdout, e.g.::

    已清理 2026-06-01 08:00（北京时间）之前收到的消息（保留期限 180 天）
    删除消息 120 条、命中 30 条、消息标记 2 条、告警关联 5 条、媒体记录 3 条、媒体文件 2 个
    因法律保留或未结案件保留消息 14 条
    删除已结案件 4 个（备注 6 条）；哈希链检查点 1 个

``--dry-run`` counts only (``预演``) and writes nothing. With ``retention_days = 0`` nothing is
purged. ``archive holds`` lists the legal holds, one line each.

Exit codes: 0 done; 1 the database could not be read or written (one line on stderr naming
``[storage].database_url``, never the URL).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type hints

from monitor.archive.database import open_existing, safe_reason
from monitor.archive.holds import Hold, list_holds
from monitor.archive.media_store import MediaStore
from monitor.archive.retention import (
    DEFAULT_BATCH,
    PurgeCounts,
    PurgeOptions,
    count_expired,
    cutoff_for,
    purge,
)
from monitor.errors import StorageError

__all__ = ["EXIT_FAILED", "EXIT_OK", "holds_command", "purge_command", "summary_lines"]

EXIT_OK = 0
EXIT_FAILED = 1
_SHOWN_TZ = ZoneInfo("Asia/Shanghai")

T = TypeVar("T")


class _Failed(Exception):
    """The database failed; the message is safe to print."""


def summary_lines(counts: PurgeCounts, cutoff: datetime, days: int, *, dry_run: bool) -> list[str]:
    """The Chinese summary of a purge (or of a dry run)."""
    when = cutoff.astimezone(_SHOWN_TZ).strftime("%Y-%m-%d %H:%M")
    c = counts
    verb = "将删除" if dry_run else "删除"
    return [
        ("预演（未删除任何数据）：" if dry_run else "已清理 ")
        + f"{when}（北京时间）之前收到的消息（保留期限 {days} 天）",
        f"{verb}消息 {c.messages} 条、命中 {c.hits} 条、消息标记 {c.flags} 条、"
        f"告警关联 {c.alert_links} 条、媒体记录 {c.media_rows} 条、媒体文件 {c.media_files} 个",
        f"因法律保留或未结案件保留消息 {c.kept_by_hold} 条",
        f"{verb}已结案件 {c.alerts} 个（备注 {c.notes} 条）"
        + ("" if dry_run else f"；哈希链检查点 {c.checkpoints} 个"),
    ]


def purge_command(
    *,
    database_url: str,
    retention_days: int,
    media_dir: str,
    dry_run: bool,
    stdout: TextIO,
    stderr: TextIO,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """``archive purge``: returns the exit code (see the module docstring)."""
    cutoff = cutoff_for(now or datetime.now(UTC), retention_days)
    if cutoff is None:
        print(
            "未设置保留期限（[archive].retention_days = 0）：所有消息永久保留，未删除任何数据。",
            file=stdout,
        )
        return EXIT_OK
    options = PurgeOptions(
        cutoff=cutoff,
        retention_days=retention_days,
        batch_size=batch_size,
        dry_run=dry_run,
        media_store=MediaStore(Path(media_dir)) if media_dir else None,
        actor=_actor(),
    )

    def run(engine: Engine) -> PurgeCounts:
        with tqdm(
            total=count_expired(engine, cutoff),
            desc="预演" if dry_run else "清理",
            unit=" 条",
            file=stderr,
            disable=not stderr.isatty(),
            leave=False,
        ) as bar:
            return purge(engine, options, bar.update)

    try:
        counts = _with_engine(database_url, run)
    except _Failed as exc:
        print(f"archive purge: [storage].database_url: {exc}", file=stderr)
        return EXIT_FAILED
    for line in summary_lines(counts, cutoff, retention_days, dry_run=dry_run):
        print(line, file=stdout)
    return EXIT_OK


def _hold_line(hold: Hold) -> str:
    created = hold.created_at.astimezone(_SHOWN_TZ).strftime("%Y-%m-%d %H:%M")
    line = f"#{hold.id} {hold.scope_label} {hold.value} 由 {hold.created_by} 于 {created} 设置：{hold.reason}"
    if hold.released_at is not None:
        released = hold.released_at.astimezone(_SHOWN_TZ).strftime("%Y-%m-%d %H:%M")
        line += f"（已由 {hold.released_by} 于 {released} 解除：{hold.release_reason}）"
    return line


def holds_command(database_url: str, *, stdout: TextIO, stderr: TextIO) -> int:
    """``archive holds``: every legal hold, active ones first; returns the exit code."""
    try:
        holds = _with_engine(database_url, _all_holds)
    except _Failed as exc:
        print(f"archive holds: [storage].database_url: {exc}", file=stderr)
        return EXIT_FAILED
    if not holds:
        print("没有法律保留。", file=stdout)
    for hold in holds:
        print(_hold_line(hold), file=stdout)
    return EXIT_OK


def _all_holds(engine: Engine) -> list[Hold]:
    with engine.connect() as conn:
        return list_holds(conn)


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's anonymous uid)
        return "cli"


def _with_engine(database_url: str, work: Callable[[Engine], T]) -> T:
    try:
        engine = open_existing(database_url)
    except StorageError as exc:
        raise _Failed(str(exc)) from None
    try:
        return work(engine)
    except SQLAlchemyError as exc:
        raise _Failed(f"database error ({safe_reason(exc, database_url)})") from None
    finally:
        engine.dispose()
