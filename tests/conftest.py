"""Shared fixtures: the real PostgreSQL and Redis services, and per-test isolation on them.

Storage tests take the ``database_url`` fixture, parametrised over the embedded SQLite file and the real
PostgreSQL (each test gets its own database there); shared-state tests take ``redis_url`` plus a unique
``redis_prefix``. A service that is down fails the test run with a message naming what to start.

A test's database starts at the schema's head, copied from a template migrated once per test
process (a SQLite file; a PostgreSQL database, ``CREATE DATABASE ... TEMPLATE``): running the
migrations for every test cost more than most tests. Tests of the migrations themselves take
``empty_sqlite_url`` / ``empty_pg_schema_url``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from monitor.archive import create_schema, make_engine
from tests.support.services import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, START_HINTS

# Storage fixtures (writer, commits, statements) shared by test_db and test_archive; the archive
# SDK's C test double (compiled once per session).
pytest_plugins = ["tests.support.storage", "tests.support.vendor_double"]

PG_URL = os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
REDIS_URL = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _libpq_url(url: str) -> str:
    """psycopg wants a plain libpq URL, without SQLAlchemy's ``+driver`` suffix."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the real PostgreSQL test database; fails (never skips) when it does not answer."""
    try:
        with psycopg.connect(_libpq_url(PG_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {PG_URL} is not reachable ({exc}); start it with: {START_HINTS['PostgreSQL']}"
        )
    return PG_URL


@pytest.fixture
def empty_pg_schema_url(pg_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_url else "?"
    yield f"{pg_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(_libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _database_url(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _pg_template(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated to head, this test process's template."""
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_database_url(pg_url, name))
    try:
        create_schema(engine)
    finally:
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it without connections
    yield name
    with psycopg.connect(_libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_schema_url(pg_url: str, _pg_template: str) -> Iterator[str]:
    """A PostgreSQL URL of a database of this test's own, at the schema's head; dropped after."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template}"')
    yield _database_url(pg_url, name)
    with psycopg.connect(_libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'sentinel.db'}"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "sentinel.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        create_schema(engine)
    finally:
        engine.dispose()  # the last connection closing folds the WAL into the file
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """URL of a SQLite file of this test's own (the embedded default), at the schema's head."""
    path = tmp_path / "sentinel.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on both backends: the embedded SQLite file and the real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest) -> str:
    """``database_url`` before any schema: for tests of what is done to an empty or old one."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("empty_sqlite_url"))
    return str(request.getfixturevalue("empty_pg_schema_url"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis; fails (never skips) when it does not answer."""
    import redis as syncredis

    try:
        syncredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except syncredis.ConnectionError as exc:
        pytest.fail(
            f"Redis at {REDIS_URL} is not reachable ({exc}); start it with: {START_HINTS['Redis']}"
        )
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test, so tests never see each other's keys."""
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A real Redis client; keys under ``redis_prefix`` are deleted after the test."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{redis_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
