"""Review-web test helpers: accounts, logging a test client in, reading CSRF tokens from pages.

For page tests of the review web (``/review/...``)::

    client = await aiohttp_client(create_app(config))          # or review_test_app(...) below
    await add_reviewer(client.app[WRITER], "alice", "password-alice")
    csrf = await login(client, "alice", "password-alice")      # the session's CSRF token
    resp = await client.post("/review/...", data={"csrf_token": csrf, ...})

- :func:`add_reviewer` stores an account directly (no audit row, so audit tests count only
  their own), through a started ``GroupCommitWriter`` or on an ``Engine``.
- :func:`login` follows the login form like a browser (pre-login CSRF cookie and hidden field)
  and returns the CSRF token every later POST of that client needs; the client's cookie jar
  keeps the session. It asserts that the login worked.
- :func:`csrf_of` reads the ``csrf_token`` hidden field from a page.
- :func:`review_test_app` mounts the review sub-app alone on a bare parent app over a writer
  (no rule engine, outbox or pipeline: starts in milliseconds); ``FAST_HASHER`` makes its
  password checks cheap.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine, insert

from monitor.alerts.intake import CardStyle
from monitor.archive.writer import GroupCommitWriter
from monitor.review.app import create_review_app
from monitor.review.keys import REVIEW_SERVICES
from monitor.review.models import ReviewerRecord
from monitor.review.services import ReviewServices, build_review_services
from monitor.review.settings import ReviewSettings

__all__ = [
    "FAST_HASHER",
    "add_reviewer",
    "csrf_of",
    "login",
    "review_services",
    "review_test_app",
]

#: argon2id with the smallest sensible cost: for tests that log in often.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The first ``csrf_token`` hidden field's value on a page (AssertionError if none)."""
    found = _CSRF.search(html)
    assert found is not None, f"no csrf_token field on the page:\n{html[:2000]}"
    return found.group(1)


async def add_reviewer(
    store: GroupCommitWriter | Engine,
    username: str,
    password: str,
    role: str = "reviewer",
    *,
    disabled: bool = False,
    hasher: PasswordHasher | None = None,
) -> None:
    """Store an account (``role``: ``reviewer`` or ``admin``) with an argon2 hash of ``password``."""
    password_hash = (hasher or PasswordHasher()).hash(password)
    row = {
        "username": username,
        "role": role,
        "password_hash": password_hash,
        "disabled": disabled,
        "created_at": datetime.now(UTC),
        "last_login_at": None,
    }

    def work(conn: Connection) -> None:
        conn.execute(insert(ReviewerRecord.__table__), row)

    if isinstance(store, GroupCommitWriter):
        await store.run(work)
    else:

        def on_engine() -> None:
            with store.begin() as conn:
                work(conn)

        await asyncio.to_thread(on_engine)


async def login(
    client: TestClient,
    username: str,
    password: str,
    *,
    path: str = "/review",
    next_path: str | None = None,
) -> str:
    """Log ``client`` in through the login form; returns the session's CSRF token."""
    params = {"next": next_path} if next_path else {}
    page = await client.get(f"{path}/login", params=params)
    assert page.status == 200, await page.text()
    form = {
        "csrf_token": csrf_of(await page.text()),
        "username": username,
        "password": password,
        "next": next_path or f"{path}/",
    }
    resp = await client.post(f"{path}/login", data=form, allow_redirects=False)
    assert resp.status == 302, f"login of {username!r} failed: {resp.status} {await resp.text()}"
    home = await client.get(f"{path}/", allow_redirects=False)
    assert home.status == 200, f"not logged in after login: {home.status}"
    return csrf_of(await home.text())


def review_services(
    writer: GroupCommitWriter,
    settings: ReviewSettings | None = None,
    *,
    redis: object | None = None,
    redis_prefix: str = "sentinel:",
    clock: Callable[[], datetime] | None = None,
) -> ReviewServices:
    """Review services over ``writer`` (and Redis when given) with :data:`FAST_HASHER`; cards
    and the outbox are stand-ins (nothing delivers them)."""
    extra = {"clock": clock} if clock is not None else {}
    return build_review_services(
        settings or ReviewSettings(),
        writer=writer,
        card_style=CardStyle(review_base="http://127.0.0.1:8080/review"),
        wake_outbox=lambda: None,
        redis=redis,  # type: ignore[arg-type]
        redis_prefix=redis_prefix,
        password_hasher=FAST_HASHER,
        **extra,  # type: ignore[arg-type]
    )


def review_test_app(services: ReviewServices) -> web.Application:
    """A bare parent app with the review sub-app mounted at ``services.settings.path``."""
    parent = web.Application()
    parent[REVIEW_SERVICES] = services
    parent.add_subapp(services.settings.path, create_review_app(services.settings))
    return parent
