"""The logic behind ``run_bot.py users add|disable|list`` (run_bot.py only parses arguments).

``users add NAME --role reviewer|admin`` reads the password twice: from the terminal without
echo, or as two lines on stdin (password, then confirmation) when stdin is not a terminal, so
scripts can pipe it. Passwords are never printed or logged. ``users disable NAME`` stops the
account at once: its sessions end on their next request. ``users list`` prints one line per
account. Adding and disabling write an audit row (source ``cli``, actor the OS user).

Exit codes: 0 done; 1 refused or failed, with one line on stderr saying why (the passwords
differ, the password is too short, the role is unknown, the name is taken or unknown, the
database is unusable).
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.archive.database import make_engine
from monitor.archive.schema import create_schema
from monitor.archive.writer import GroupCommitWriter
from monitor.errors import SchemaMismatch, StorageError
from monitor.review.accounts import Account, AccountError, Accounts, check_new_account

__all__ = ["EXIT_FAILED", "EXIT_OK", "format_accounts", "users_command"]

EXIT_OK = 0
EXIT_FAILED = 1


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return "cli"


def read_new_password(stdin: TextIO, prompt: Callable[[str], str] = getpass.getpass) -> str:
    """The password, entered twice (AccountError ``mismatch`` if the two differ)."""
    if stdin.isatty():
        first, second = prompt("Password: "), prompt("Repeat password: ")
    else:
        lines = [stdin.readline(), stdin.readline()]
        if not lines[1]:  # end of input before the confirmation
            raise AccountError(
                "input", "expected two lines on stdin: the password and its confirmation"
            )
        first, second = (line.rstrip("\r\n") for line in lines)
    if first != second:
        raise AccountError("mismatch", "the passwords do not match")
    return first


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def format_accounts(accounts: list[Account]) -> list[str]:
    """``users list`` lines: a header, then name, role, status, created, last login."""
    rows = [("USERNAME", "ROLE", "STATUS", "CREATED", "LAST LOGIN")]
    rows += [
        (
            a.username,
            a.role,
            "disabled" if a.disabled else "active",
            _when(a.created_at),
            _when(a.last_login_at),
        )
        for a in accounts
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[4]]) for r in rows]


async def _run(engine: Engine, action: str, name: str, role: str, password: str) -> list[str]:
    async with GroupCommitWriter(engine) as writer:
        accounts = Accounts(writer, clock=lambda: datetime.now(UTC))
        if action == "add":
            await accounts.add(name, password, role, actor=_actor(), source="cli")
            return [f"added {role} {name}"]
        if action == "disable":
            changed = await accounts.disable(name, actor=_actor(), source="cli")
            return [f"disabled {name}" if changed else f"{name} was already disabled"]
        return format_accounts(await accounts.list())


def users_command(
    action: str,
    *,
    database_url: str,
    name: str = "",
    role: str = "",
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    prompt: Callable[[str], str] = getpass.getpass,
) -> int:
    """Run ``users add|disable|list``; returns the exit code."""
    password = ""
    try:
        if action == "add":
            # Refuse a bad name or role before asking for a password.
            check_new_account(name, "x" * 64, role)
            password = read_new_password(stdin, prompt)
            check_new_account(name, password, role)
        engine = make_engine(database_url)
    except AccountError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILED
    except (SQLAlchemyError, OSError, ValueError) as exc:
        print(f"error: [storage].database_url: unusable ({exc.__class__.__name__})", file=stderr)
        return EXIT_FAILED
    try:
        create_schema(engine)
        lines = asyncio.run(_run(engine, action, name, role, password))
    except AccountError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILED
    except (SchemaMismatch, StorageError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        print(f"error: [storage].database_url: cannot use the database ({reason})", file=stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()
    for line in lines:
        print(line, file=stdout)
    return EXIT_OK
