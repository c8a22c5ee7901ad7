"""What a 2xx promises, checked through the aiohttp app on SQLite and on PostgreSQL + Redis.

An acknowledged message is stored together with its hits, its alert and its outbox rows in ONE
transaction. The tests make the database itself refuse one of those rows (a trigger) and observe
the whole message roll back with a 503, so WeCom retries: an alert or outbox row written in a
transaction of its own (before or after the message's) would let the message through with a 200.
A trigger that fails at COMMIT time (PostgreSQL's deferred constraint triggers) shows that the
answer waits for the commit itself, not for the statements before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, text

from bot.config import Config
from bot.web.app import create_app
from bot.web.keys import ARCHIVE
from monitor.archive import make_engine
from tests.support.app import AES_KEY, CORP_ID, TOKEN, make_config, sealed_post, text_xml
from wecom_sdk.crypto import MsgCrypto

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
PATH = "/wecom/callback"
ALERTS = '[alerts]\nmanagers = ["mgr1"]\n'
RISKY = "再不退款我就去12315维权"


@pytest.fixture(params=["embedded", "shared"])
def app_config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """SQLite + in-process dedupe, and PostgreSQL + real Redis; managers to alert."""
    if request.param == "embedded":
        return make_config(tmp_path, request.getfixturevalue("sqlite_url"), extra=ALERTS)
    return make_config(
        tmp_path,
        request.getfixturevalue("pg_schema_url"),
        redis_url=request.getfixturevalue("redis_url"),
        redis_prefix=request.getfixturevalue("redis_prefix"),
        extra=ALERTS,
    )


@pytest.fixture
async def client(aiohttp_client: ClientFactory, app_config: Config) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(app_config))


@pytest.fixture
def db(app_config: Config) -> Iterator[Engine]:
    """A second engine on the app's database, for triggers and read-backs."""
    engine = make_engine(app_config.storage.database_url)
    yield engine
    engine.dispose()


async def post(client: TestClient[Any, Any], content: str, msg_id: int) -> int:
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID)
    body, query = sealed_post(crypto, text_xml(content, msg_id))
    resp = await client.post(PATH, params=query, data=body)
    await resp.read()
    return resp.status


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("message", "hit", "alert", "alert_message", "outbox")
        }


def refuse_inserts(engine: Engine, table: str) -> None:
    """Make every INSERT into ``table`` fail inside the statement (a BEFORE INSERT trigger)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_row()"
            )


def allow_inserts(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER refuse_{table}")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER refuse_{table} ON {table}")
            conn.exec_driver_sql("DROP FUNCTION refuse_row()")


@pytest.mark.parametrize("table", ["alert", "outbox"])
async def test_alert_rows_commit_with_the_message_or_not_at_all(
    client: TestClient[Any, Any], db: Engine, table: str
) -> None:
    refuse_inserts(db, table)
    assert await post(client, RISKY, 7100) == 503
    # Nothing of the message was kept: no row committed without its alert, none acknowledged.
    assert counts(db) == {"message": 0, "hit": 0, "alert": 0, "alert_message": 0, "outbox": 0}
    allow_inserts(db, table)
    assert await post(client, RISKY, 7100) == 200  # WeCom's retry, once storage accepts it
    after = counts(db)
    assert after["message"] == 1 and after["alert"] == 1 and after["alert_message"] == 1
    assert after["hit"] == 3 and after["outbox"] == 1


async def test_a_message_refused_by_the_database_leaves_no_alert(
    client: TestClient[Any, Any], db: Engine
) -> None:
    refuse_inserts(db, "message")
    assert await post(client, RISKY, 7200) == 503
    assert counts(db) == {"message": 0, "hit": 0, "alert": 0, "alert_message": 0, "outbox": 0}
    allow_inserts(db, "message")
    assert await post(client, RISKY, 7200) == 200
    assert counts(db)["alert"] == 1


async def test_answered_only_after_the_commit_succeeded(
    aiohttp_client: ClientFactory, tmp_path: Path, pg_schema_url: str
) -> None:
    """A COMMIT that fails (a deferred trigger runs at COMMIT) is a 503 and nothing is stored."""
    config = make_config(tmp_path, pg_schema_url, extra=ALERTS)
    client = await aiohttp_client(create_app(config))
    engine = make_engine(pg_schema_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF position('拒收' in NEW.content) > 0 THEN "
                "RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$"
            )
            conn.exec_driver_sql(
                "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON message "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()"
            )
        assert await post(client, "拒收这条", 7300) == 503
        assert await client.app[ARCHIVE].get("msg:7300") is None
        # The writer goes on: the next message commits and is acknowledged.
        assert await post(client, "你好", 7301) == 200
        assert await client.app[ARCHIVE].get("msg:7301") is not None
    finally:
        engine.dispose()


async def test_concurrent_messages_each_commit_with_their_alerts(
    client: TestClient[Any, Any], db: Engine
) -> None:
    """Many risky messages in one group commit: every acknowledged one has its alert rows."""
    statuses = await asyncio.gather(
        *(post(client, f"{RISKY}（第{n}次）", 7400 + n) for n in range(20))
    )
    assert statuses == [200] * 20
    after = counts(db)
    assert after["message"] == 20 and after["alert_message"] == 20
