"""The logic behind ``run_bot.py archive verify`` and ``archive head`` (run_bot.py only parses
arguments).

``archive verify`` walks both hash chains (:mod:`monitor.archive.verify`) and prints one line per
chain::

    archive chain intact: 12 blocks, 345 rows (340 message, 5 message_flag), head 12 3f2a...
    audit chain broken at block 4: audit_event 17 was modified

``archive head`` prints each chain's latest block, the line to compare with a posted anchor::

    archive 12 3f2a...
    audit 4 9bc1...

Exit codes: 0 every chain intact (``head``: printed); 1 a chain is broken, or the database could
not be read or lacks the chain tables (one line on stderr naming ``[storage].database_url``, never
the URL, which may carry a password). A progress bar goes to stderr while it is a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO, TypeVar

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type hints

from monitor.archive.chain import Chain
from monitor.archive.chain_store import BLOCKS, LOCKS, read_heads
from monitor.archive.database import open_existing, safe_reason
from monitor.archive.verify import ChainReport, Tick, verify_database
from monitor.errors import StorageError

__all__ = ["EXIT_BROKEN", "EXIT_OK", "describe", "head_command", "verify_command"]

EXIT_OK = 0
EXIT_BROKEN = 1

T = TypeVar("T")


class _Unreadable(Exception):
    """The database cannot be read; the message is safe to print."""


def describe(report: ChainReport) -> str:
    """One line: the chain intact with what was checked, or its first problem."""
    if report.problem is not None:
        return report.problem.describe()
    counts = ", ".join(f"{n} {table}" for table, n in report.rows.items())
    purged = sum(report.purged.values())
    retired = f", {_count(purged, 'row')} purged by retention" if purged else ""
    return (
        f"{report.chain} chain intact: {_count(report.blocks, 'block')}, "
        f"{_count(sum(report.rows.values()), 'row')} ({counts}){retired}, "
        f"head {report.head.seq} {report.head.block_hash}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def verify_command(database_url: str, *, stdout: TextIO, stderr: TextIO) -> int:
    """Check both chains; returns the exit code."""
    bars: list[tqdm] = []

    def progress(chain: Chain, blocks: int) -> Tick:
        bar = tqdm(
            total=blocks,
            desc=f"{chain} chain",
            unit=" blocks",
            file=stderr,
            disable=not stderr.isatty(),
            leave=False,
        )
        bars.append(bar)
        return bar.update  # type: ignore[no-any-return]

    try:
        reports = _with_engine(database_url, lambda engine: verify_database(engine, progress))
    except _Unreadable as exc:
        print(f"error: [storage].database_url: {exc}", file=stderr)
        return EXIT_BROKEN
    finally:
        for bar in bars:
            bar.close()
    for report in reports:
        print(describe(report), file=stdout)
    return EXIT_OK if all(report.ok for report in reports) else EXIT_BROKEN


def head_command(database_url: str, *, stdout: TextIO, stderr: TextIO) -> int:
    """Print each chain's head (``<chain> <seq> <hash>``); returns the exit code."""

    def heads(engine: Engine) -> list[str]:
        with engine.connect() as conn:
            return [
                f"{chain} {head.seq} {head.block_hash}" for chain, head in read_heads(conn).items()
            ]

    try:
        lines = _with_engine(database_url, heads)
    except _Unreadable as exc:
        print(f"error: [storage].database_url: {exc}", file=stderr)
        return EXIT_BROKEN
    for line in lines:
        print(line, file=stdout)
    return EXIT_OK


def _with_engine(database_url: str, work: Callable[[Engine], T]) -> T:
    try:
        engine = open_existing(database_url)
    except StorageError as exc:
        raise _Unreadable(str(exc)) from None
    try:
        if not {BLOCKS.name, LOCKS.name} <= set(inspect(engine).get_table_names()):
            raise _Unreadable(
                "the database has no hash chain tables (an older schema): "
                "run `python run_bot.py db upgrade` first"
            )
        return work(engine)
    except SQLAlchemyError as exc:
        raise _Unreadable(f"cannot read the database ({safe_reason(exc, database_url)})") from None
    finally:
        engine.dispose()
