"""Schema migrations (alembic), on the SQLite file and the real PostgreSQL.

The head revision is exactly what the models declare; a database made before migrations (by
commit e3df39a, the last layout without them) is adopted as revision 0001 with every row kept;
a database newer than the code is refused; N workers upgrading at once do not race; and
``run_bot.py db upgrade`` says so.

Revision 0003 starts the hash chains: every row an upgrade finds goes into genesis blocks, so
``archive verify`` passes right after it, and no row changes.

The old databases come from SQL dumps in tests/data, ``schema_e3df39a.sqlite.sql`` and
``schema_e3df39a.postgresql.sql``, made by running e3df39a's own ``create_schema`` and writing
rows into every table; ``tests/data/make_schema_e3df39a.py`` made them (its docstring says how).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, func, inspect, select, text

from monitor.archive import (
    Archive,
    ArchivedHit,
    GroupCommitWriter,
    InboundRecord,
    SchemaMismatch,
    create_schema,
    make_engine,
    upgrade_schema,
)
from monitor.archive.chain import Chain
from monitor.archive.schema import METADATA, alembic_config, head_revision
from monitor.archive.search_index import SEARCH_TABLES
from monitor.archive.verify import verify_database
from tests.support.app import write_config
from tests.support.paths import DATA, REPO

OLD_DUMPS = {
    "sqlite": DATA / "schema_e3df39a.sqlite.sql",
    "postgresql": DATA / "schema_e3df39a.postgresql.sql",
}
OLD_ROWS = {
    "message": 3,
    "hit": 2,
    "alert": 2,
    "alert_message": 2,
    "outbox": 2,
    "recipient_send": 1,
    "held_alert": 1,
    "alert_audit": 1,  # moved to audit_event by revision 0002
    "kf_cursor": 1,
    "kf_customer": 1,
    "kf_reply": 2,
    "kf_decision": 1,
    "message_flag": 1,
    "sandbox_call": 1,
}
"""Rows per table in the dumps: every table of the schema has some."""
T1 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
CHAIN_TABLES = frozenset({"chain_block", "chain_lock", "chain_anchor"})
"""Made by revision 0003; their rows (hashes, block times) are checked through the verifier."""


def _libpq(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _schema_of(url: str) -> str:
    return url.rsplit("search_path%3D", 1)[1]


@contextmanager
def extra_pg_schema(pg_url: str) -> Iterator[str]:
    """A second fresh schema (``pg_schema_url`` gives one per test), dropped after."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def load_old_dump(url: str) -> None:
    """Load the e3df39a database (tables and rows) into the empty database at ``url``."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            conn.executescript(OLD_DUMPS["sqlite"].read_text(encoding="utf-8"))
        finally:
            conn.close()
        return
    with psycopg.connect(_libpq(url), autocommit=True) as pg:
        # The dump's names are unqualified: it lands in the schema search_path names.
        pg.execute(f'SET search_path TO "{_schema_of(url)}"')
        pg.execute(OLD_DUMPS["postgresql"].read_text(encoding="utf-8"))  # type: ignore[arg-type]


@pytest.fixture
def sqlite_url(empty_sqlite_url: str) -> str:
    """Migrations start from nothing: no template here."""
    return empty_sqlite_url


@pytest.fixture
def pg_schema_url(empty_pg_schema_url: str) -> str:
    """Migrations start from nothing: no template here."""
    return empty_pg_schema_url


@pytest.fixture
def old_url(database_url: str) -> str:
    """A database made by e3df39a, before migrations, with rows in every table."""
    load_old_dump(database_url)
    return database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def snapshot(engine: Engine, *, skip: str = "") -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the database has (but ``skip``), in primary-key order."""
    tables = MetaData()
    with engine.connect() as conn:
        tables.reflect(conn)
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in tables.sorted_tables
            if table.name not in {skip, "alembic_version", *SEARCH_TABLES}
        }


def without_chains(tables: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: rows for name, rows in tables.items() if name not in CHAIN_TABLES}


def assert_chained(engine: Engine, *, blocks: dict[Chain, int]) -> None:
    """Every row of the chained tables is in a genesis block, and both chains verify."""
    with engine.connect() as conn:
        counts = {
            name: conn.execute(select(func.count()).select_from(METADATA.tables[name])).scalar_one()
            for name in ("message", "message_flag", "audit_event")
        }
    reports = {report.chain: report for report in verify_database(engine)}
    assert [r.problem for r in reports.values()] == [None, None]
    assert {chain: r.blocks for chain, r in reports.items()} == blocks
    assert dict(reports[Chain.ARCHIVE].rows) == {
        "message": counts["message"],
        "message_flag": counts["message_flag"],
        "msgaudit_quarantine": counts.get("msgaudit_quarantine", 0),
    }
    assert dict(reports[Chain.AUDIT].rows) == {"audit_event": counts["audit_event"]}


def adopted(
    before: dict[str, list[tuple[Any, ...]]], *, skip: str = ""
) -> dict[str, list[tuple[Any, ...]]]:
    """What an old database's rows look like at head: the same, but ``alert_audit``'s rows moved
    to ``audit_event`` (0002), hits with an empty ``via`` and ``parts`` (0004), alerts with an empty ``staff_name`` (0005), and the tables the
    old database lacked there, empty (the chain tables left out: :func:`assert_chained` checks
    those)."""
    after = {name: rows for name, rows in before.items() if name != "alert_audit"}
    after["audit_event"] = [
        (index, at, user, source, action, alert_id, _detail(old_before, old_after), "")
        for index, (_id, alert_id, user, action, source, at, old_before, old_after) in enumerate(
            before.get("alert_audit", []), start=1
        )
    ]
    # 0004: hits gained ``via`` and ``parts``, empty on the rows stored before.
    after["hit"] = [(*row, None, None) for row in before.get("hit", [])]
    # 0005: alerts gained ``staff_name``, "" on the rows stored before.
    after["alert"] = [(*row, "") for row in before.get("alert", [])]
    for name in METADATA.tables:
        if name not in CHAIN_TABLES:
            after.setdefault(name, [])
    after.pop(skip, None)
    return after


def _detail(before: str, after: str) -> str:
    return json.dumps({"after": after, "before": before})


def schema_diff(conn: Any) -> list[Any]:
    """What alembic finds between the database and the models, leaving out the search index
    (made by migration 0006, not from the models: an FTS5 table is no SQLAlchemy table)."""
    diff = compare_metadata(MigrationContext.configure(conn), METADATA)
    return [
        d for d in diff if not (d[0] in ("remove_table", "remove_index") and _search_object(d[1]))
    ]


def _search_object(obj: Any) -> bool:
    table = getattr(obj, "table", obj)
    return bool(table.name in SEARCH_TABLES)


def revision_of(engine: Engine) -> str | None:
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    assert len(heads) <= 1
    return heads[0] if heads else None


def reflected(engine: Engine) -> dict[str, Any]:
    """Everything the database says about its archive tables (not about alembic_version)."""
    inspector = inspect(engine)
    schema: dict[str, Any] = {}
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version", *SEARCH_TABLES}):
        schema[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(name)
            ],
            "pk": inspector.get_pk_constraint(name)["constrained_columns"],
            "fks": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), ix["unique"])
                for ix in inspector.get_indexes(name)
            ),
            "uniques": sorted(
                (uq["name"], tuple(uq["column_names"]))
                for uq in inspector.get_unique_constraints(name)
            ),
        }
    return schema


def sqlite_ddl(engine: Engine) -> set[tuple[str, str, str]]:
    """The CREATE statements SQLite keeps, whitespace normalised."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name != 'alembic_version'"
        ).all()
    return {
        (kind, name, " ".join(sql.split()))
        for kind, name, sql in rows
        if name not in SEARCH_TABLES and not name.startswith("ix_message_search")
    }


# -- the head is what the models declare ---------------------------------------------------------


def test_upgrading_an_empty_database_gives_the_models_schema(
    engine: Engine, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    create_schema(engine)
    assert revision_of(engine) == head_revision()
    with engine.connect() as conn:
        assert schema_diff(conn) == []
    # The same tables, columns, keys and indexes as create_all makes from the models.
    models_url = (
        f"sqlite:///{tmp_path / 'models.db'}"
        if engine.dialect.name == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    with _models_database(models_url) as made_by_models:
        assert reflected(engine) == reflected(made_by_models)
        if engine.dialect.name == "sqlite":
            assert sqlite_ddl(engine) == sqlite_ddl(made_by_models)
    assert set(reflected(engine)) == set(METADATA.tables)


@contextmanager
def _models_database(url: str) -> Iterator[Engine]:
    """A database whose tables ``create_all`` made from the models (PostgreSQL: a new schema)."""

    @contextmanager
    def made(url: str) -> Iterator[Engine]:
        eng = make_engine(url)
        try:
            METADATA.create_all(eng)
            yield eng
        finally:
            eng.dispose()

    if url.startswith("sqlite"):
        with made(url) as eng:
            yield eng
        return
    with extra_pg_schema(url) as schema_url, made(schema_url) as eng:
        yield eng


def test_sqlite_keeps_wal_and_full_sync_after_upgrading(sqlite_url: str) -> None:
    eng = make_engine(sqlite_url)
    try:
        create_schema(eng)
        with eng.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        eng.dispose()


def test_downgrade_to_base_and_upgrade_again(engine: Engine, database_url: str) -> None:
    create_schema(engine)
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert revision_of(engine) is None
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert schema_diff(conn) == []


def test_second_upgrade_reports_the_head_and_changes_nothing(engine: Engine) -> None:
    first = upgrade_schema(engine)
    head = head_revision()
    assert (first.before, first.made_before_migrations, first.after) == (None, False, head)
    second = upgrade_schema(engine)
    assert (second.before, second.made_before_migrations, second.after) == (head, False, head)


def test_a_table_dropped_at_head_is_created_again(engine: Engine) -> None:
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE sandbox_call"))
    create_schema(engine)
    assert "sandbox_call" in inspect(engine).get_table_names()
    assert revision_of(engine) == head_revision()


# -- a database made before migrations ------------------------------------------------------------


def test_old_database_is_adopted_with_every_row(old_url: str) -> None:
    eng = make_engine(old_url)
    try:
        assert revision_of(eng) is None
        before = snapshot(eng)
        assert {name: len(rows) for name, rows in before.items()} == OLD_ROWS
        upgrade = upgrade_schema(eng)
        head = head_revision()
        assert (upgrade.before, upgrade.made_before_migrations, upgrade.after) == (
            None,
            True,
            head,
        )
        assert revision_of(eng) == head
        after = snapshot(eng)
        assert without_chains(after) == adopted(before)  # nothing recreated, nothing lost
        assert len(after["audit_event"]) == OLD_ROWS["alert_audit"]
        assert_chained(eng, blocks={Chain.ARCHIVE: 1, Chain.AUDIT: 1})
        with eng.connect() as conn:
            assert schema_diff(conn) == []
        again = upgrade_schema(eng)
        assert (again.before, again.made_before_migrations) == (head, False)
        assert snapshot(eng) == after
    finally:
        eng.dispose()


def empty_counts() -> dict[str, int]:
    """Rows per table of an empty database at head: only the two chains' lock rows."""
    return {**dict.fromkeys(METADATA.tables, 0), "chain_lock": 2}


def adopted_counts() -> dict[str, int]:
    """Rows per table once an old database is at head (:func:`adopted`), with one genesis block
    per chain."""
    counts = empty_counts()
    counts.update({name: n for name, n in OLD_ROWS.items() if name != "alert_audit"})
    counts["audit_event"] = OLD_ROWS["alert_audit"]
    counts["chain_block"] = 2
    return counts


NEW_ROWS: list[tuple[str, dict[str, Any]]] = [
    (
        "message",
        {
            "dedupe_key": "msg:2001",
            "channel": "app",
            "msg_type": "text",
            "from_user": "wangwu",
            "to_user": "wx5823bf96d3bd56c7",
            "create_time": 1775034000,
            "content": "新消息",
            "raw": "<xml/>",
            "received_at": T1,
        },
    ),
    (
        "hit",
        {
            "message_id": 2,
            "word": "投诉",
            "rule_group": "customer_risk",
            "severity": 3,
            "span_start": 0,
            "span_end": 2,
            "rules_version": "r2",
        },
    ),
    (
        "alert",
        {
            "alert_id": "al-0003",
            "conversation_id": "app:wangwu",
            "kind": "customer_risk",
            "severity": 3,
            "words": "[]",
            "count": 1,
            "first_at": T1,
            "last_at": T1,
            "latest_text": "新消息",
            "recipients": "[]",
            "status": "open",
            "notified_severity": 3,
        },
    ),
    ("alert_message", {"alert_id": "al-0003", "message_id": 3}),
    (
        "outbox",
        {
            "kind": "card",
            "recipients": "[]",
            "payload": "{}",
            "created_at": T1,
            "next_at": T1,
        },
    ),
    ("recipient_send", {"recipient": "manager1", "sent_at": T1, "outbox_id": 1}),
    ("held_alert", {"recipient": "m", "alert_id": "al-0003", "held_at": T1, "digest_id": 2}),
    (
        "audit_event",
        {"at": T1, "actor": "m", "source": "web", "action": "claim", "target": "al-0003"},
    ),
    (
        "reviewer",
        {"username": "li.na", "role": "reviewer", "password_hash": "$argon2id$x", "created_at": T1},
    ),
    (
        "review_session",
        {
            "token_hash": "ab" * 32,
            "username": "li.na",
            "csrf_token": "c",
            "created_at": T1,
            "last_seen_at": T1,
        },
    ),
    ("login_failure", {"key": "user:li.na", "at": T1}),
    ("case_note", {"alert_id": "al-0003", "author": "li.na", "at": T1, "body": "已联系客户"}),
    (
        "allow_proposal",
        {
            "rule_group": "客户维权风险",
            "phrase": "投诉建议箱",
            "rule_file": "rules/customer_risk.toml",
            "file_sha256": "0" * 64,
            "status": "pending",
            "proposed_by": "li.na",
            "proposed_at": T1,
        },
    ),
    ("kf_cursor", {"open_kfid": "wkKF2", "updated_at": T1}),
    ("kf_customer", {"open_kfid": "wkKF2", "external_userid": "wmX", "updated_at": T1}),
    (
        "kf_reply",
        {
            "msgid": "r-new",
            "open_kfid": "wkKF2",
            "external_userid": "wmX",
            "in_reply_to": "m1",
            "kind": "reply",
            "body": "{}",
            "status": "pending",
            "created_at": T1,
        },
    ),
    (
        "kf_decision",
        {
            "dedupe_key": "kf:m1",
            "open_kfid": "wkKF2",
            "external_userid": "wmX",
            "outcome": "replied",
            "decided_at": T1,
        },
    ),
    ("message_flag", {"dedupe_key": "kf:m1", "flag": "recalled", "created_at": T1}),
    ("sandbox_call", {"at": T1, "path": "kf/send_msg", "body": "{}", "answer": "{}"}),
    (
        "chain_block",
        {
            "chain": "spare",
            "seq": 1,
            "prev_hash": "0" * 64,
            "block_hash": "1" * 64,
            "created_at": T1,
            "entries": "",
        },
    ),
    ("chain_lock", {"chain": "spare"}),
    ("chain_anchor", {"day": "2026-04-01", "lease_until": T1}),
    ("msgaudit_cursor", {"source": "default", "updated_at": T1}),
    (
        "msgaudit_quarantine",
        {
            "seq": 7,
            "msgid": "m7",
            "encrypt_random_key": "k",
            "encrypt_chat_msg": "c",
            "reason": "no private key for publickey_ver 9",
            "created_at": T1,
            "last_tried_at": T1,
        },
    ),
    (
        "media_file",
        {
            "dedupe_key": "ma:m1",
            "fileid_hash": "f" * 64,
            "sdkfileid": "CtYBMzA2OTAy",
            "kind": "image",
            "created_at": T1,
        },
    ),
    (
        "legal_hold",
        {
            "scope": "conversation",
            "value": "kf:wk1:wm1",
            "reason": "诉讼",
            "created_by": "admin",
            "created_at": T1,
        },
    ),
    ("review_secret", {"name": "sample_key", "value": "a2V5", "created_at": T1}),
]


async def test_old_database_takes_new_writes_after_the_upgrade(old_url: str) -> None:
    eng = make_engine(old_url)
    try:
        create_schema(eng)
        assert sorted(name for name, _ in NEW_ROWS) == sorted(METADATA.tables)
        with eng.begin() as conn:
            for name, values in NEW_ROWS:
                table = METADATA.tables[name]
                conn.execute(table.insert().values(values))  # the models' defaults fill the rest
        counts = {name: n + 1 for name, n in adopted_counts().items()}
        with eng.connect() as conn:
            for name, count in counts.items():
                table = METADATA.tables[name]
                assert (
                    conn.execute(select(func.count()).select_from(table)).scalar_one() == count
                ), name
                if "id" in table.c:  # new ids follow the old rows' (PostgreSQL: the sequences)
                    assert conn.execute(select(func.max(table.c.id))).scalar_one() == count
        # The archive itself: a new message with its hit, and WeCom retrying an old one.
        async with GroupCommitWriter(eng) as writer:
            archive = Archive(writer, clock=lambda: T1)
            stored = await archive.store_inbound(_record("msg:3001", hits=(_HIT,)))
            retried = await archive.store_inbound(_record("msg:1001"))
            assert stored.inserted and stored.message_id == 5
            assert (retried.inserted, retried.message_id) == (False, 1)
            assert [h.word for h in await archive.hits_of(stored.message_id)] == ["投诉"]
            assert [h.word for h in await archive.hits_of(1)] == ["维权", "12315"]
    finally:
        eng.dispose()


_HIT = ArchivedHit(word="投诉", group="customer_risk", severity=3, start=0, end=2)


def _record(key: str, hits: tuple[ArchivedHit, ...] = ()) -> InboundRecord:
    return InboundRecord(
        dedupe_key=key,
        channel="app",
        msg_type="text",
        from_user="zhangsan",
        to_user="wx5823bf96d3bd56c7",
        create_time=1775034000,
        raw="<xml/>",
        content="投诉",
        rules_version="r2",
        hits=hits,
    )


def test_old_database_lacking_a_table_gets_it(old_url: str) -> None:
    eng = make_engine(old_url)
    try:
        with eng.begin() as conn:  # a version older still, before the send sandbox
            conn.execute(text("DROP TABLE sandbox_call"))
        before = snapshot(eng, skip="sandbox_call")
        create_schema(eng)
        assert revision_of(eng) == head_revision()
        after = without_chains(snapshot(eng, skip="sandbox_call"))
        assert after == adopted(before, skip="sandbox_call")
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sandbox_call")).scalar_one() == 0
            assert schema_diff(conn) == []
    finally:
        eng.dispose()


def test_old_database_lacking_a_column_is_refused(old_url: str) -> None:
    eng = make_engine(old_url)
    try:
        with eng.begin() as conn:
            conn.execute(text("ALTER TABLE kf_reply DROP COLUMN fail_type"))
        with pytest.raises(SchemaMismatch, match=r"'kf_reply' lacks column\(s\) fail_type"):
            create_schema(eng)
        assert revision_of(eng) is None  # refused before writing anything
        assert "alembic_version" not in inspect(eng).get_table_names()
    finally:
        eng.dispose()


@pytest.mark.parametrize("made_by", ["empty", "e3df39a"])
def test_workers_upgrading_at_once_do_not_race(database_url: str, made_by: str) -> None:
    if made_by == "e3df39a":
        load_old_dump(database_url)
    engines = [make_engine(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def upgrade(eng: Engine) -> None:
        try:
            start.wait(5)
            create_schema(eng)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upgrade, args=(eng,)) for eng in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert errors == []
        with engines[0].connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert versions == [(head_revision(),)]
        counts = {name: len(rows) for name, rows in snapshot(engines[0]).items()}
        expected = adopted_counts()
        assert counts == (expected if made_by == "e3df39a" else empty_counts())
    finally:
        for eng in engines:
            eng.dispose()


def test_a_big_audit_log_gets_several_genesis_blocks(engine: Engine, database_url: str) -> None:
    config = alembic_config(database_url)
    genesis_rows = ScriptDirectory.from_config(config).get_revision("0003").module.GENESIS_ROWS
    command.upgrade(config, "0002")
    audit = METADATA.tables["audit_event"]
    row = {"at": T1, "source": "web", "action": "view", "target": "", "detail": "{}", "address": ""}
    rows = [{**row, "actor": f"u{i}"} for i in range(genesis_rows + 1)]
    with engine.begin() as conn:
        conn.execute(audit.insert(), rows)
    create_schema(engine)
    assert_chained(engine, blocks={Chain.ARCHIVE: 0, Chain.AUDIT: 2})
    with engine.connect() as conn:
        sizes = [
            len(entries.split())
            for (entries,) in conn.execute(text("SELECT entries FROM chain_block ORDER BY seq"))
        ]
    assert sizes == [genesis_rows, 1]


# -- a database newer than the code ---------------------------------------------------------------


def test_newer_database_is_refused(engine: Engine) -> None:
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(
        SchemaMismatch, match=rf"revision 9999, which this version .* newest is {head_revision()}"
    ):
        create_schema(engine)
    assert revision_of(engine) == "9999"


# -- run_bot.py db upgrade, through a real subprocess -------------------------------------------


def db_upgrade(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the config's URL counts
    return subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), "db", "upgrade", "--config", str(config)],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_upgrades_an_empty_database_then_finds_it_at_head(
    tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    first = db_upgrade(config)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines() == [
        "database was at revision none (empty database)",
        f"database at revision {head_revision()} (head)",
    ]
    second = db_upgrade(config)
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout.splitlines() == [
        f"database was at revision {head_revision()}",
        f"database at revision {head_revision()} (head)",
    ]


def test_upgrades_a_database_made_before_migrations_keeping_its_rows(
    tmp_path: Path, database_url: str
) -> None:
    load_old_dump(database_url)
    result = db_upgrade(write_config(tmp_path, database_url))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "database was at revision none (tables made before migrations, kept with their rows)",
        f"database at revision {head_revision()} (head)",
    ]
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM message")).scalar_one() == 3
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (head_revision(),)
            ]
    finally:
        engine.dispose()


def test_a_newer_database_is_refused_in_one_line(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    assert db_upgrade(config).returncode == 0
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    result = db_upgrade(config)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: [storage].database_url: the database is at schema ")
    assert "revision 9999" in result.stderr


def test_an_unreachable_database_is_one_line_and_no_password(tmp_path: Path) -> None:
    url = "postgresql://sentinel:s3cret-pw@127.0.0.1:1/test"  # nothing listens on port 1
    result = db_upgrade(write_config(tmp_path, url))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(
        "error: [storage].database_url: cannot connect to the database ("
    )
    assert "s3cret-pw" not in result.stderr
