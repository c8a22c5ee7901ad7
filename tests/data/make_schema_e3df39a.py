"""Make the dumps of a database created by wecom-sentinel at commit e3df39a (before migrations).

The last layout without schema migrations made its tables with ``SQLModel.metadata.create_all``
(``monitor.db.create_schema``). This script runs THAT code, from a checkout of e3df39a, on an
empty SQLite file and on an empty PostgreSQL schema, writes a few rows into every table with the
old tables' own Core statements, and dumps both databases as SQL text:

    schema_e3df39a.sqlite.sql        sqlite3's iterdump(), as ``sqlite3 FILE .dump`` writes it
    schema_e3df39a.postgresql.sql    pg_dump --inserts of the schema, with the schema name and
                                     pg_dump's session settings taken out, so that it loads into
                                     whatever schema the loading session's search_path names

tests/unit/monitor/test_migrations.py loads them and upgrades them. To make them again (from the
repository root, with the project's venv and the test PostgreSQL running):

    git archive e3df39a | (mkdir -p /tmp/oldmain && tar -x -C /tmp/oldmain)
    .venv/bin/python tests/data/make_schema_e3df39a.py /tmp/oldmain tests/data \\
        postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

OLD_COMMIT = "e3df39a"
T0 = datetime(2026, 3, 2, 8, 30, 15, 250000, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def rows() -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows for every table, parents first; ids spelled out so both dumps hold the same rows."""
    return [
        (
            "message",
            [
                {
                    "id": 1,
                    "dedupe_key": "msg:1001",
                    "channel": "app",
                    "msg_type": "text",
                    "event": None,
                    "from_user": "zhangsan",
                    "to_user": "wx5823bf96d3bd56c7",
                    "agent_id": "1000002",
                    "create_time": 1772440215,
                    "content": "我要维权，投诉到12315",
                    "raw": "<xml><Content><![CDATA[我要维权，投诉到12315]]></Content></xml>",
                    "received_at": at(0),
                    "rules_version": "r1",
                    "conversation_id": "app:zhangsan",
                    "direction": "member",
                },
                {
                    "id": 2,
                    "dedupe_key": "kf:msg-abc",
                    "channel": "kf",
                    "msg_type": "text",
                    "event": None,
                    "from_user": "wmCUSTOMER",
                    "to_user": "wkKF1",
                    "agent_id": None,
                    "create_time": 1772440275,
                    "content": "人工",
                    "raw": '{"msgid": "msg-abc", "text": {"content": "人工"}}',
                    "received_at": at(1),
                    "rules_version": "r1",
                    "conversation_id": "kf:wkKF1:wmCUSTOMER",
                    "direction": "customer",
                },
                {
                    "id": 3,
                    "dedupe_key": "0" * 64,
                    "channel": "app",
                    "msg_type": "event",
                    "event": "enter_agent",
                    "from_user": "lisi",
                    "to_user": "wx5823bf96d3bd56c7",
                    "agent_id": "1000002",
                    "create_time": 1772440335,
                    "content": None,
                    "raw": "<xml><Event><![CDATA[enter_agent]]></Event></xml>",
                    "received_at": at(2),
                    "rules_version": None,
                    "conversation_id": None,
                    "direction": None,
                },
            ],
        ),
        (
            "hit",
            [
                {
                    "id": 1,
                    "message_id": 1,
                    "word": "维权",
                    "rule_group": "customer_risk",
                    "severity": 3,
                    "span_start": 2,
                    "span_end": 4,
                    "rules_version": "r1",
                },
                {
                    "id": 2,
                    "message_id": 1,
                    "word": "12315",
                    "rule_group": "customer_risk",
                    "severity": 3,
                    "span_start": 10,
                    "span_end": 15,
                    "rules_version": "r1",
                },
            ],
        ),
        (
            "alert",
            [
                {
                    "alert_id": "al-0001",
                    "conversation_id": "app:zhangsan",
                    "kind": "customer_risk",
                    "severity": 3,
                    "words": '["维权", "12315"]',
                    "count": 2,
                    "first_at": at(0),
                    "last_at": at(1),
                    "latest_text": "我要维权，投诉到12315",
                    "latest_message_id": 1,
                    "recipients": '["manager1", "manager2"]',
                    "customer_id": "zhangsan",
                    "customer_name": "张三",
                    "staff_userid": "",
                    "status": "claimed",
                    "claimed_by": "manager1",
                    "closed_by": "",
                    "closed_at": None,
                    "escalated": True,
                    "notified_severity": 3,
                    "cards_sent": 1,
                    "rules_version": "r1",
                },
                {
                    "alert_id": "al-0002",
                    "conversation_id": "kf:wkKF1:wmCUSTOMER",
                    "kind": "staff_conduct",
                    "severity": 2,
                    "words": '["红包"]',
                    "count": 1,
                    "first_at": at(1),
                    "last_at": at(1),
                    "latest_text": "加个红包",
                    "latest_message_id": None,
                    "recipients": "[]",
                    "customer_id": "wmCUSTOMER",
                    "customer_name": "",
                    "staff_userid": "servicer1",
                    "status": "resolved",
                    "claimed_by": "",
                    "closed_by": "manager2",
                    "closed_at": at(5),
                    "escalated": False,
                    "notified_severity": 2,
                    "cards_sent": 0,
                    "rules_version": "",
                },
            ],
        ),
        (
            "alert_message",
            [
                {"alert_id": "al-0001", "message_id": 1},
                {"alert_id": "al-0002", "message_id": 2},
            ],
        ),
        (
            "outbox",
            [
                {
                    "id": 1,
                    "alert_id": "al-0001",
                    "kind": "card",
                    "recipients": '["manager1", "manager2"]',
                    "payload": '{"card_type": "button_interaction", "task_id": "al-0001-1"}',
                    "task_id": "al-0001-1",
                    "status": "sent",
                    "attempts": 1,
                    "created_at": at(0),
                    "next_at": at(0),
                    "lease_until": None,
                    "lease_owner": None,
                    "sent_at": at(1),
                    "last_error": None,
                    "delivered_to": '["manager1"]',
                    "response_code": "RESPONSE-CODE-1",
                    "response_code_used": True,
                },
                {
                    "id": 2,
                    "alert_id": None,
                    "kind": "digest",
                    "recipients": '["manager2"]',
                    "payload": '{"markdown": "1 条告警"}',
                    "task_id": None,
                    "status": "pending",
                    "attempts": 2,
                    "created_at": at(2),
                    "next_at": at(7),
                    "lease_until": at(3),
                    "lease_owner": "worker-1",
                    "sent_at": None,
                    "last_error": "errcode 45009: api freq out of limit",
                    "delivered_to": None,
                    "response_code": None,
                    "response_code_used": False,
                },
            ],
        ),
        (
            "recipient_send",
            [{"id": 1, "recipient": "manager1", "sent_at": at(1), "outbox_id": 1}],
        ),
        (
            "held_alert",
            [
                {
                    "id": 1,
                    "recipient": "manager2",
                    "alert_id": "al-0001",
                    "held_at": at(1),
                    "digest_id": 2,
                }
            ],
        ),
        (
            "alert_audit",
            [
                {
                    "id": 1,
                    "alert_id": "al-0001",
                    "user": "manager1",
                    "action": "claim",
                    "source": "card",
                    "at": at(2),
                    "before": "open",
                    "after": "claimed",
                }
            ],
        ),
        (
            "kf_cursor",
            [{"open_kfid": "wkKF1", "cursor": "CURSOR-7", "fence": 3, "updated_at": at(1)}],
        ),
        (
            "kf_customer",
            [
                {
                    "open_kfid": "wkKF1",
                    "external_userid": "wmCUSTOMER",
                    "last_customer_at": 1772440275,
                    "unanswered": 0,
                    "updated_at": at(1),
                }
            ],
        ),
        (
            "kf_reply",
            [
                {
                    "id": 1,
                    "msgid": "r-3f2a9c",
                    "open_kfid": "wkKF1",
                    "external_userid": "wmCUSTOMER",
                    "in_reply_to": "msg-abc",
                    "kind": "handoff",
                    "rule": "human",
                    "msgtype": "text",
                    "body": '{"content": "正在为您转接人工客服"}',
                    "window_start": 1772440275,
                    "status": "sent",
                    "error": "",
                    "fail_type": None,
                    "attempts": 1,
                    "created_at": at(1),
                    "sent_at": at(2),
                },
                {
                    "id": 2,
                    "msgid": "t-3f2a9c",
                    "open_kfid": "wkKF1",
                    "external_userid": "wmCUSTOMER",
                    "in_reply_to": "msg-abc",
                    "kind": "transfer",
                    "rule": "",
                    "msgtype": "",
                    "body": '{"service_state": 2, "servicer_userid": ""}',
                    "window_start": 1772440275,
                    "status": "send_failed_event",
                    "error": "",
                    "fail_type": 4,
                    "attempts": 0,
                    "created_at": at(1),
                    "sent_at": None,
                },
            ],
        ),
        (
            "kf_decision",
            [
                {
                    "dedupe_key": "kf:msg-abc",
                    "open_kfid": "wkKF1",
                    "external_userid": "wmCUSTOMER",
                    "outcome": "handoff",
                    "decided_at": at(1),
                }
            ],
        ),
        (
            "message_flag",
            [
                {
                    "id": 1,
                    "dedupe_key": "kf:msg-abc",
                    "flag": "recalled",
                    "detail": "",
                    "source_key": "kf:evt-recall",
                    "created_at": at(3),
                }
            ],
        ),
        (
            "sandbox_call",
            [
                {
                    "id": 1,
                    "at": at(1),
                    "path": "message/send",
                    "body": '{"touser": "manager1", "msgtype": "template_card"}',
                    "answer": '{"errcode": 0, "errmsg": "ok", "response_code": "RESPONSE-CODE-1"}',
                }
            ],
        ),
    ]


def fill(url: str) -> None:
    """Create the schema with the old code and write :func:`rows` into every table."""
    from sqlmodel import SQLModel

    from monitor import db  # the old tree's, put first on sys.path by main()

    engine = db.make_engine(url)
    try:
        db.create_schema(engine)
        tables = SQLModel.metadata.tables
        filled = [name for name, _ in rows()]
        assert sorted(filled) == sorted(tables), (sorted(filled), sorted(tables))
        with engine.begin() as conn:
            for name, values in rows():
                conn.execute(tables[name].insert(), values)
            if conn.dialect.name == "postgresql":
                # Explicit ids leave the sequences behind; the old code's own writes never give
                # ids, so move each sequence past its rows as those writes would have.
                for name in filled:
                    if "id" in tables[name].c and tables[name].c.id.autoincrement is not False:
                        conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT max(id) FROM {name}))"
                        )
    finally:
        engine.dispose()


def dump_sqlite(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old.db"
        fill(f"sqlite:///{path}")
        conn = sqlite3.connect(path)
        try:
            out.write_text("\n".join(conn.iterdump()) + "\n", encoding="utf-8")
        finally:
            conn.close()


def dump_postgresql(pg_url: str, out: Path) -> None:
    schema = f"old_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        fill(f"{pg_url}?options=-csearch_path%3D{schema}")
        dumped = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--inserts", "-n", schema, pg_url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    kept = []
    for line in dumped.splitlines():
        if line.startswith(("--", "SET ", "SELECT pg_catalog.set_config(", "CREATE SCHEMA ", "\\")):
            continue  # comments, session settings, the schema, psql meta-commands (\restrict)
        kept.append(re.sub(rf"\b{schema}\.", "", line))
    header = f"-- pg_dump of a database made by wecom-sentinel {OLD_COMMIT} (make_schema_{OLD_COMMIT}.py)\n"
    text = header + re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() + "\n"
    assert schema not in text
    out.write_text(text, encoding="utf-8")


def main() -> None:
    old_tree, out_dir, pg_url = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), sys.argv[3]
    sys.path.insert(0, str(old_tree))
    import monitor.db

    assert Path(monitor.db.__file__).is_relative_to(old_tree), monitor.db.__file__
    dump_sqlite(out_dir / f"schema_{OLD_COMMIT}.sqlite.sql")
    dump_postgresql(pg_url, out_dir / f"schema_{OLD_COMMIT}.postgresql.sql")


if __name__ == "__main__":
    main()
