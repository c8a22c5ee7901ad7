"""The review web's accounts and sessions through the whole bot app and the real CLI.

- ``run_bot.py users add|list|disable`` in a subprocess (passwords on stdin), its errors and
  exit codes, its audit rows; the accounts it makes log in to the web, a disabled one cannot;
- a session made on one worker works on another: two app instances sharing Redis (sessions
  there) and two sharing only the database (sessions in ``review_session``); disabling the
  account ends the session on every worker;
- the sub-app is mounted at ``[review].path``, with its headers and login gate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.config import Config
from bot.web.app import create_app
from bot.web.keys import WRITER
from monitor.archive import make_engine
from monitor.archive.audit import AuditEventRecord
from monitor.review.headers import CONTENT_SECURITY_POLICY
from monitor.review.keys import REVIEW_SERVICES
from tests.support.app import make_config, write_config
from tests.support.paths import REPO
from tests.support.review import add_reviewer, csrf_of, login

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PASSWORD = "correct horse battery"


def users(config_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), "users", *args, "--config", str(config_path)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def audit(database_url: str, *actions: str) -> list[dict[str, Any]]:
    engine = make_engine(database_url)
    table = AuditEventRecord.__table__
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(table).where(table.c.action.in_(actions)).order_by(table.c.id)
            )
            return [dict(r) for r in rows.mappings()]
    finally:
        engine.dispose()


@pytest.mark.slow
async def test_users_cli_and_web_login(
    tmp_path: Path, database_url: str, aiohttp_client: ClientFactory
) -> None:
    config_path = write_config(tmp_path, database_url)
    added = users(
        config_path, "add", "alice", "--role", "reviewer", stdin=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert (added.returncode, added.stdout, added.stderr) == (0, "added reviewer alice\n", "")
    assert PASSWORD not in added.stdout + added.stderr
    admin = users(
        config_path, "add", "root", "--role", "admin", stdin=f"{PASSWORD}!\n{PASSWORD}!\n"
    )
    assert admin.returncode == 0, admin.stderr

    mismatch = users(
        config_path, "add", "bob", "--role", "reviewer", stdin=f"{PASSWORD}\nother password\n"
    )
    assert (mismatch.returncode, mismatch.stdout) == (1, "")
    assert mismatch.stderr == "error: the passwords do not match\n"

    listed = users(config_path, "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "STATUS", "CREATED", "LAST", "LOGIN"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["alice", "reviewer", "active"],
        ["root", "admin", "active"],
    ]
    assert lines[1].endswith("never")

    # The CLI's accounts log in to the web; the wrong password does not.
    config = make_config(tmp_path, database_url)
    client = await aiohttp_client(create_app(config))
    await login(client, "alice", PASSWORD)
    listed = users(config_path, "list")
    assert "never" not in listed.stdout.splitlines()[1]

    disabled = users(config_path, "disable", "alice")
    assert (disabled.returncode, disabled.stdout) == (0, "disabled alice\n")
    again = users(config_path, "disable", "alice")
    assert (again.returncode, again.stdout) == (0, "alice was already disabled\n")
    assert "disabled" in users(config_path, "list").stdout.splitlines()[1]
    # Her session ended at once; she cannot log in again.
    assert (await client.get("/review/", allow_redirects=False)).status == 302
    page = await client.get("/review/login")
    form = {"csrf_token": csrf_of(await page.text()), "username": "alice", "password": PASSWORD}
    resp = await client.post("/review/login", data=form, allow_redirects=False)
    assert resp.status == 401

    rows = audit(database_url, "user_add", "user_disable")
    assert [(r["action"], r["target"], r["source"]) for r in rows] == [
        ("user_add", "alice", "cli"),
        ("user_add", "root", "cli"),
        ("user_disable", "alice", "cli"),
    ]
    assert json.loads(rows[0]["detail"]) == {"role": "reviewer"}
    assert all(r["actor"] for r in rows)


@pytest.mark.parametrize(
    "case",
    [
        (
            ["add", "bob", "--role", "reviewer"],
            "short\nshort\n",
            "password too short: at least 10 characters",
        ),
        (
            ["add", "bob", "--role", "reviewer"],
            f"{PASSWORD}\n",
            "expected two lines on stdin: the password and its confirmation",
        ),
        (
            ["add", "bob", "--role", "owner"],
            f"{PASSWORD}\n{PASSWORD}\n",
            "role must be one of: reviewer, admin",
        ),
        (
            ["add", "b o b", "--role", "admin"],
            f"{PASSWORD}\n{PASSWORD}\n",
            "username must be 1-64 letters, digits or . _ @ - (no spaces)",
        ),
        (
            ["add", "alice", "--role", "admin"],
            f"{PASSWORD}\n{PASSWORD}\n",
            "user 'alice' already exists",
        ),
        (["disable", "ghost"], "", "no such user: 'ghost'"),
    ],
)
def test_users_cli_errors(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], str, str],
) -> None:
    """Each refusal is one line on stderr and exit code 1 (run_bot.main in-process: fast)."""
    args, stdin, error = case
    import io

    import run_bot

    config_path = write_config(tmp_path, sqlite_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n{PASSWORD}\n"))
    assert (
        run_bot.main(["users", "add", "alice", "--role", "reviewer", "--config", str(config_path)])
        == 0
    )
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert run_bot.main(["users", *args, "--config", str(config_path)]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"error: {error}\n")
    assert [r["target"] for r in audit(sqlite_url, "user_add", "user_disable")] == ["alice"]


async def two_workers(
    aiohttp_client: ClientFactory, config: Config
) -> tuple[TestClient[Any, Any], TestClient[Any, Any]]:
    return await aiohttp_client(create_app(config)), await aiohttp_client(create_app(config))


async def carry_session(source: TestClient[Any, Any], target: TestClient[Any, Any]) -> None:
    """Give ``target`` the session cookie ``source`` got (one browser, two workers)."""
    token = source.session.cookie_jar.filter_cookies(source.make_url("/review/"))["sentinel_review"]
    target.session.cookie_jar.update_cookies({"sentinel_review": token.value})


@pytest.fixture(params=["redis", "database"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Config, Any, str]:
    """(config, Redis client or None, Redis prefix): PostgreSQL + Redis (the multi-worker
    deployment, sessions in Redis), or one SQLite file (sessions in the database)."""
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        config = make_config(
            tmp_path,
            request.getfixturevalue("pg_schema_url"),
            redis_url=request.getfixturevalue("redis_url"),
            redis_prefix=prefix,
        )
        return config, request.getfixturevalue("redis_client"), prefix
    return make_config(tmp_path, request.getfixturevalue("sqlite_url")), None, ""


async def test_session_valid_across_workers(
    shared: tuple[Config, Any, str], aiohttp_client: ClientFactory
) -> None:
    config, redis_client, prefix = shared
    one, two = await two_workers(aiohttp_client, config)
    assert (one.app[REVIEW_SERVICES].redis is None) is (redis_client is None)
    await add_reviewer(one.app[WRITER], "alice", PASSWORD)
    await add_reviewer(one.app[WRITER], "root", PASSWORD, "admin")
    csrf = await login(one, "alice", PASSWORD)
    await carry_session(one, two)
    home = await two.get("/review/", allow_redirects=False)
    assert home.status == 200
    assert csrf_of(await home.text()) == csrf
    if redis_client is not None:
        keys = [k async for k in redis_client.scan_iter(match=f"{prefix}review:session:*")]
        assert len(keys) == 1
    # Disabled on worker one (by an admin there), the session ends on worker two at once.
    await one.app[REVIEW_SERVICES].accounts.disable("alice", actor="root", source="web")
    assert (await two.get("/review/", allow_redirects=False)).status == 302
    # Logging out on one worker ends the session on the other.
    await add_reviewer(one.app[WRITER], "bob", PASSWORD)
    one.session.cookie_jar.clear()
    csrf = await login(one, "bob", PASSWORD)
    await carry_session(one, two)
    assert (await two.get("/review/", allow_redirects=False)).status == 200
    out = await one.post("/review/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 302
    assert (await two.get("/review/", allow_redirects=False)).status == 302


async def test_mounted_at_configured_path(
    tmp_path: Path, sqlite_url: str, aiohttp_client: ClientFactory
) -> None:
    config = make_config(
        tmp_path, sqlite_url, extra='[review]\npath = "/compliance"\nidle_timeout_min = 5\n'
    )
    client = await aiohttp_client(create_app(config))
    services = client.app[REVIEW_SERVICES]
    assert services.settings.path == "/compliance"
    assert services.settings.idle_timeout_s == 300
    resp = await client.get("/compliance/conversations/c-1", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith(
        "/compliance/login?next=/compliance/conversations/c-1"
    )
    assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert (await client.post("/compliance/logout")).status == 403
    await add_reviewer(client.app[WRITER], "alice", PASSWORD)
    page = await client.get("/compliance/login")
    form = {
        "csrf_token": csrf_of(await page.text()),
        "username": "alice",
        "password": PASSWORD,
        "next": "/compliance/conversations/c-1",
    }
    resp = await client.post("/compliance/login", data=form, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/compliance/conversations/c-1"
    assert "Path=/compliance" in resp.headers["Set-Cookie"]
    home = await client.get("/compliance/")
    assert home.status == 200
    assert 'href="/compliance/static/review.css"' in await home.text()
    # The bot's own routes are not behind the review login.
    assert (await client.get("/healthz")).status == 200
