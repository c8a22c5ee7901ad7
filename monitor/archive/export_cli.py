"""The logic behind ``run_bot.py archive export`` (run_bot.py only parses arguments).

``--since``/``--until`` take ``YYYY-MM-DD`` or an ISO 8601 date-time. A date, or a date-time
without an offset, is read in ``--tz`` (default Asia/Shanghai: operators think in Beijing time).
``--since`` is inclusive and ``--until`` exclusive, but a bare date as ``--until`` means the END of
that day: ``--since 2026-11-01 --until 2026-11-30`` is all of November in Beijing time. Exported
times are written in the same zone.

The file appears under OUT's name only once complete: rows go to a hidden temporary file beside it,
renamed over OUT at the end, so a failed or interrupted export leaves any previous OUT untouched.
It is created readable by its owner only (it holds chat text). ``-`` writes to stdout instead.

Exit codes: 0 exported; 1 the archive could not be read or OUT not written (the message names
``[storage].database_url`` and never prints the URL, which may carry a password); 2 a bad
``--since``/``--until``/``--tz``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type hints

from monitor.archive.database import open_existing, read_snapshot, safe_reason
from monitor.archive.export import (
    DEFAULT_CHUNK,
    ExportRow,
    count_messages,
    export_rows,
    write_csv,
    write_jsonl,
)
from monitor.errors import StorageError

__all__ = ["DEFAULT_TZ", "UsageError", "atomic_output", "export_command", "parse_bound"]

DEFAULT_TZ = "Asia/Shanghai"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_Writer = Callable[[Iterable[ExportRow], BinaryIO, tzinfo], int]
_WRITERS: dict[str, _Writer] = {
    "csv": lambda rows, out, tz: write_csv(rows, out, tz=tz),
    "jsonl": lambda rows, out, tz: write_jsonl(rows, out, tz=tz),
}


class UsageError(ValueError):
    """A command-line value is wrong; the message says which and why (exit 2)."""


class _ArchiveUnreadable(Exception):
    """The archive could not be opened or read; the message is safe to print."""


def parse_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Asia/Shanghai``, ``UTC``, ...)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz: unknown time zone {name!r} (e.g. Asia/Shanghai, UTC)") from None


def parse_bound(value: str, tz: tzinfo, *, end: bool = False) -> datetime:
    """An aware datetime for a ``--since`` (``end=False``) or ``--until`` (``end=True``) value.

    A date is the start of that day in ``tz``, or with ``end`` the start of the next day (so the
    exclusive bound takes in the whole day). A date-time is that instant, read in ``tz`` when it
    carries no offset.
    """
    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        try:
            day += timedelta(days=1) if end else timedelta(0)
        except OverflowError:
            raise UsageError(f"{value!r} is out of range") from None
        return datetime(day.year, day.month, day.day, tzinfo=tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time "
            "(YYYY-MM-DDTHH:MM[:SS][+08:00])"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _bound(option: str, value: str | None, tz: tzinfo, *, end: bool) -> datetime | None:
    try:
        return None if value is None else parse_bound(value, tz, end=end)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` only when the block completes without an exception.

    It is written as a hidden temporary file in the same directory (so the rename is atomic),
    fsynced, then renamed; on any exception, KeyboardInterrupt included, it is removed.
    """
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _destination(out: str, stdout: BinaryIO) -> Iterator[BinaryIO]:
    if out != "-":
        with atomic_output(Path(out)) as file:
            yield file
        return
    yield stdout
    stdout.flush()


def _export(
    *,
    engine: Engine,
    write: _Writer,
    out: str,
    stdout: BinaryIO,
    progress: TextIO | None,
    since: datetime | None,
    until: datetime | None,
    tz: tzinfo,
    chunk_size: int,
) -> int:
    with _destination(out, stdout) as sink, engine.connect() as conn, read_snapshot(conn).begin():
        total = count_messages(conn, since=since, until=until) if progress else 0
        with contextlib.closing(
            export_rows(conn, since=since, until=until, chunk_size=chunk_size)
        ) as rows:
            return write(_progress(rows, total, progress), sink, tz)


def _progress(rows: Iterable[ExportRow], total: int, stderr: TextIO | None) -> Iterable[ExportRow]:
    if stderr is None:
        return rows
    bar: Iterable[ExportRow] = tqdm(rows, total=total, file=stderr, unit="msg", dynamic_ncols=True)
    return bar


def export_command(
    *,
    database_url: str,
    fmt: str,
    out: str,
    since: str | None,
    until: str | None,
    tz: str,
    stdout: BinaryIO,
    stderr: TextIO,
    chunk_size: int = DEFAULT_CHUNK,
) -> int:
    """``archive export``: stream the archive to ``out`` (a path, or ``-`` for ``stdout``).

    A progress bar (total from a COUNT) goes to ``stderr`` when it is a terminal; a one-line
    summary ``exported N messages to OUT`` always does. Returns the exit code (see the module).
    """
    write = _WRITERS.get(fmt)
    try:
        if write is None:
            raise UsageError(f"--format must be csv or jsonl, not {fmt!r}")
        zone = parse_zone(tz)
        low = _bound("--since", since, zone, end=False)
        high = _bound("--until", until, zone, end=True)
    except UsageError as exc:
        print(f"archive export: {exc}", file=stderr)
        return EXIT_USAGE
    if low is not None and high is not None and low >= high:
        print("archive export: --since must be before --until", file=stderr)
        return EXIT_USAGE
    show_progress = bool(getattr(stderr, "isatty", lambda: False)())
    try:
        try:
            engine = open_existing(database_url)
        except StorageError as exc:
            raise _ArchiveUnreadable(f"[storage].database_url: {exc}") from None
        try:
            count = _export(
                engine=engine,
                write=write,
                out=out,
                stdout=stdout,
                progress=stderr if show_progress else None,
                since=low,
                until=high,
                tz=zone,
                chunk_size=chunk_size,
            )
        except SQLAlchemyError as exc:
            raise _ArchiveUnreadable(
                "[storage].database_url: cannot read the archive "
                f"({safe_reason(exc, database_url)})"
            ) from None
        finally:
            engine.dispose()
    except _ArchiveUnreadable as exc:
        print(f"archive export: {exc}", file=stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        _silence(stdout)  # the reader went away (``| head``): stop quietly
        return EXIT_FAILED
    except OSError as exc:
        print(f"archive export: cannot write {out}: {exc.strerror or exc}", file=stderr)
        return EXIT_FAILED
    where = "stdout" if out == "-" else out
    print(f"exported {count} messages to {where}", file=stderr)
    return EXIT_OK


def _silence(stdout: BinaryIO) -> None:
    # Python flushes stdout again at exit and would print a BrokenPipeError traceback there.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        os.close(devnull)
