"""Reviewer accounts: argon2id password hashes, add / disable / list, and password checks.

Accounts are added and disabled from the CLI (``run_bot.py users``) and the admin page; both go
through :class:`Accounts`, so both check the same rules and write the same audit rows (the change
and its ``user_add`` / ``user_disable`` row commit in one transaction). Accounts are never deleted.

:meth:`Accounts.authenticate` takes about as long for an unknown or disabled account as for a
wrong password (it verifies against a dummy hash), so timing does not tell which names exist.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Table, delete, insert, select, update

from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.archive.writer import GroupCommitWriter
from monitor.review.models import ReviewerRecord, ReviewSessionRecord, Role

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "Account",
    "AccountError",
    "Accounts",
    "LoginCheck",
]

MIN_PASSWORD_LENGTH = 10
_MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only bounds the work per attempt
_USERNAME = re.compile(r"[\w.@-]{1,64}")
_REVIEWER: Table = ReviewerRecord.__table__
_SESSION: Table = ReviewSessionRecord.__table__


class AccountError(ValueError):
    """A refused account change; ``kind`` says why (the CLI prints the message, the web maps the
    kind to a fixed Chinese text): ``name``, ``role``, ``short``, ``exists``, ``unknown``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Account:
    """One account as listed (never the hash)."""

    username: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class LoginCheck:
    """A successful password check: the account, and its new hash when the stored one was made
    with other argon2 parameters (stored by :func:`mark_login`)."""

    account: Account
    new_hash: str | None = None


def _account(row: object) -> Account:
    return Account(
        username=row.username,  # type: ignore[attr-defined]
        role=row.role,  # type: ignore[attr-defined]
        disabled=bool(row.disabled),  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        last_login_at=row.last_login_at,  # type: ignore[attr-defined]
    )


def check_new_account(username: str, password: str, role: str) -> None:
    """Raise :class:`AccountError` when the name, password or role is not acceptable."""
    if not _USERNAME.fullmatch(username):
        raise AccountError("name", "username must be 1-64 letters, digits or . _ @ - (no spaces)")
    if role not in Role.ALL:
        raise AccountError("role", f"role must be one of: {', '.join(Role.ALL)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            "short", f"password too short: at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise AccountError("long", f"password too long: at most {_MAX_PASSWORD_LENGTH} characters")


def _is_disabled(conn: Connection, username: str) -> bool | None:
    """Whether the account is disabled; None if there is no such account."""
    found = conn.execute(select(_REVIEWER.c.disabled).where(_REVIEWER.c.username == username))
    row = found.first()
    return None if row is None else bool(row.disabled)


def _change_event(
    at: datetime, username: str, *, actor: str, source: str, address: str
) -> Callable[..., AuditEvent]:
    """Makes the audit row of a change to ``username``'s account: ``(action, detail={})``."""

    def event(action: str, detail: Mapping[str, object] | None = None) -> AuditEvent:
        return AuditEvent(
            at=at,
            actor=actor,
            source=source,
            action=action,
            target=username,
            detail=dict(detail or {}),
            address=address,
        )

    return event


def mark_login(conn: Connection, username: str, at: datetime, new_hash: str | None) -> None:
    """Record a login's time (and a rehashed password) on the caller's transaction."""
    values: dict[str, object] = {"last_login_at": at}
    if new_hash is not None:
        values["password_hash"] = new_hash
    conn.execute(update(_REVIEWER).where(_REVIEWER.c.username == username).values(**values))


class Accounts:
    """The account operations over the group-commit writer (writes) and its engine (reads)."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        *,
        clock: Callable[[], datetime],
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._writer = writer
        self._clock = clock
        self.hasher = hasher or PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        # Made on first use (hashing takes tens of milliseconds), with the current parameters.
        return self.hasher.hash("no account has this password")

    async def add(
        self, username: str, password: str, role: str, *, actor: str, source: str, address: str = ""
    ) -> None:
        """Create an account; :class:`AccountError` if it is invalid or the name is taken."""
        check_new_account(username, password, role)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        now = self._clock()
        change = _change_event(now, username, actor=actor, source=source, address=address)

        def work(conn: Connection) -> None:
            if _is_disabled(conn, username) is not None:
                raise AccountError("exists", f"user {username!r} already exists")
            conn.execute(
                insert(_REVIEWER).values(
                    username=username,
                    role=role,
                    password_hash=password_hash,
                    disabled=False,
                    created_at=now,
                    last_login_at=None,
                )
            )
            record_audit_event(conn, change("user_add", {"role": role}))

        await self._writer.run(work)

    async def disable(self, username: str, *, actor: str, source: str, address: str = "") -> bool:
        """Disable an account and end its database sessions (Redis sessions end on their next
        request, which checks the account); False if it was already disabled.

        Raises:
            AccountError: ``unknown``: there is no such account.
        """
        now = self._clock()
        change = _change_event(now, username, actor=actor, source=source, address=address)

        def work(conn: Connection) -> bool:
            disabled = _is_disabled(conn, username)
            if disabled is None:
                raise AccountError("unknown", f"no such user: {username!r}")
            if disabled:
                return False
            conn.execute(
                update(_REVIEWER).where(_REVIEWER.c.username == username).values(disabled=True)
            )
            conn.execute(delete(_SESSION).where(_SESSION.c.username == username))
            record_audit_event(conn, change("user_disable"))
            return True

        return await self._writer.run(work)

    def _list(self) -> list[Account]:
        with self._writer.engine.connect() as conn:
            rows = conn.execute(select(_REVIEWER).order_by(_REVIEWER.c.username)).all()
        return [_account(r) for r in rows]

    async def list(self) -> list[Account]:
        """Every account, by name."""
        return await asyncio.to_thread(self._list)

    def _row(self, username: str) -> tuple[Account, str] | None:
        with self._writer.engine.connect() as conn:
            row = conn.execute(select(_REVIEWER).where(_REVIEWER.c.username == username)).first()
        return None if row is None else (_account(row), row.password_hash)

    async def get(self, username: str) -> Account | None:
        """The account named ``username``, or None."""
        found = await asyncio.to_thread(self._row, username)
        return None if found is None else found[0]

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def authenticate(self, username: str, password: str) -> LoginCheck | None:
        """The account if ``password`` is its password and it is enabled, else None."""
        found = (
            await asyncio.to_thread(self._row, username)
            if _USERNAME.fullmatch(username) and len(password) <= _MAX_PASSWORD_LENGTH
            else None
        )
        if found is None or found[0].disabled:
            # Same work as a real check, so the answer's timing does not reveal the account.
            await asyncio.to_thread(self._verify, self._dummy_hash, password[:_MAX_PASSWORD_LENGTH])
            return None
        account, password_hash = found
        if not await asyncio.to_thread(self._verify, password_hash, password):
            return None
        new_hash = None
        if self.hasher.check_needs_rehash(password_hash):
            new_hash = await asyncio.to_thread(self.hasher.hash, password)
        return LoginCheck(account, new_hash)
