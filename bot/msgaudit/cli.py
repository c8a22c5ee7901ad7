"""``run_bot.py msgaudit ...``: status, one pull, key reload, the quarantine.

``status`` and ``quarantine list`` only read the database. ``pull --once``, ``quarantine retry``
and ``keys reload`` run the bot's whole stack without serving (the same pipeline, rules, alerts and
archive as the server, no periodic passes), so a record archived from the command is inspected and
alerted exactly as a pulled one; ``pull --once`` delivers the alerts it queued before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import TextIO, TypeVar

from aiohttp import web
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Config, ConfigError
from bot.msgaudit.lag import lag_status
from bot.msgaudit.puller import MsgauditPuller, PullReport
from bot.msgaudit.resource import load_keys
from bot.msgaudit.store import bump_keys_generation, cursor_state, quarantine_count, quarantined
from bot.web.app import create_app
from bot.web.keys import MSGAUDIT_PULLER, OUTBOX, PERIODIC
from monitor.archive import create_schema, make_engine
from monitor.errors import StorageError
from wecom_sdk.errors import WeComError

__all__ = ["EXIT_FAILED", "EXIT_OK", "msgaudit_command", "with_stack"]

EXIT_OK = 0
EXIT_FAILED = 1

_T = TypeVar("_T")


def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if at is not None else "never"


def _hours(seconds: float | None) -> str:
    return f"{seconds / 3600:.1f} h" if seconds is not None else "unknown"


@contextlib.contextmanager
def _database(config: Config) -> Iterator[Engine]:
    """The archive database at the schema's head, for a command's reads and writes."""
    engine = make_engine(config.storage.database_url)
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _status(config: Config, stdout: TextIO) -> int:
    settings = config.msgaudit
    with _database(config) as engine, engine.connect() as conn:
        state = cursor_state(conn)
        waiting = quarantine_count(conn)
    status = lag_status(state, time.time())
    source = (
        f"vendor library {settings.sdk_path}"
        if settings.sdk_path
        else f"fake source {settings.fake_source or '(none)'}"
    )
    lines = [
        f"enabled: {'yes' if settings.enabled else 'no'} ({source})",
        f"cursor seq: {state.seq if state else 0} (updated {_when(state.updated_at if state else None)})",
        f"newest record: {_when(status.newest_at)} (lag {_hours(status.lag_s)})",
        f"last caught up: {_when(status.caught_up_at)} (behind {_hours(status.behind_s)}; "
        f"alert past {settings.lag_alert_hours:g} h)",
        f"quarantined: {waiting}",
    ]
    try:
        keys = load_keys(config)
        versions = ", ".join(str(v) for v in keys.versions) or "none"
        lines.append(f"private keys: publickey_ver {versions}")
    except (WeComError, ConfigError) as exc:
        lines.append(f"private keys: NOT USABLE: {exc}")
    for line in lines:
        print(line, file=stdout)
    return EXIT_OK


def _quarantine_list(config: Config, stdout: TextIO) -> int:
    with _database(config) as engine:
        after = 0
        while True:
            with engine.connect() as conn:
                rows = quarantined(conn, after_seq=after)
            if not rows:
                break
            for row in rows:
                line = {
                    "msgid": row.entry.msgid,
                    "publickey_ver": row.entry.publickey_ver,
                    "reason": row.reason,
                    "seq": row.entry.seq,
                    "errcode": row.errcode,
                    "attempts": row.attempts,
                    "since": row.created_at.isoformat(),
                }
                print(json.dumps(line, ensure_ascii=False), file=stdout)
            after = rows[-1].entry.seq
    return EXIT_OK


async def with_stack(config: Config, work: Callable[[web.Application], Awaitable[_T]]) -> _T:
    """Run ``work`` with the bot's resources up (no server, no periodic passes)."""
    app = create_app(config)
    app[PERIODIC] = False
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        return await work(app)
    finally:
        await runner.cleanup()


def _describe(report: PullReport) -> str:
    return (
        f"pulled {report.entries} record(s) in {report.pages} page(s), seq {report.seq_from} -> "
        f"{report.seq_to}: {report.archived} archived, {report.repeats} already archived, "
        f"{report.quarantined} quarantined"
        + (f", {report.released} released from quarantine" if report.released else "")
    )


def _released(report: PullReport) -> str:
    return f"released {report.released} record(s); {report.quarantined} still quarantined"


def _with_puller(
    config: Config,
    work: Callable[[MsgauditPuller], Awaitable[PullReport]],
    describe: Callable[[PullReport], str],
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Run ``work`` on the stack's puller (it takes the pull lock), deliver the alerts it
    queued, print what it did."""

    async def run(app: web.Application) -> int:
        report = await work(app[MSGAUDIT_PULLER])
        if report.busy:
            print("error: another puller held the lock for 30 s; try again", file=stderr)
            return EXIT_FAILED
        await app[OUTBOX].drain()
        print(describe(report), file=stdout)
        return EXIT_OK

    return asyncio.run(with_stack(config, run))


def _pull(config: Config, stdout: TextIO, stderr: TextIO) -> int:
    return _with_puller(config, lambda p: p.pull_once(), _describe, stdout, stderr)


def _retry(config: Config, stdout: TextIO, stderr: TextIO) -> int:
    return _with_puller(config, lambda p: p.retry_quarantine(), _released, stdout, stderr)


def _keys_reload(config: Config, stdout: TextIO, stderr: TextIO) -> int:
    keys = load_keys(config)  # a bad key file fails here, before any worker is told
    with _database(config) as engine, engine.begin() as conn:
        generation = bump_keys_generation(conn, time.time())
    versions = ", ".join(str(v) for v in keys.versions) or "none"
    print(f"private keys: publickey_ver {versions} (generation {generation})", file=stdout)
    return _retry(config, stdout, stderr)


def msgaudit_command(config: Config, action: str, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run one ``msgaudit`` action: status, pull, keys-reload, quarantine-list, quarantine-retry."""
    needs_enabled = action in ("pull", "quarantine-retry", "keys-reload")
    if needs_enabled and not config.msgaudit.enabled:
        print("error: [msgaudit].enabled is false in the config", file=stderr)
        return EXIT_FAILED
    actions: dict[str, Callable[[], int]] = {
        "status": lambda: _status(config, stdout),
        "quarantine-list": lambda: _quarantine_list(config, stdout),
        "pull": lambda: _pull(config, stdout, stderr),
        "quarantine-retry": lambda: _retry(config, stdout, stderr),
        "keys-reload": lambda: _keys_reload(config, stdout, stderr),
    }
    if action not in actions:
        raise ValueError(f"unknown msgaudit action {action!r}")
    try:
        return actions[action]()
    except WeComError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILED
    except (StorageError, SQLAlchemyError) as exc:
        print(f"error: [storage].database_url: {exc.__class__.__name__}: {exc}", file=stderr)
        return EXIT_FAILED
