"""``archive export``: streamed CSV / JSON-lines export of the archive, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, insert
from sqlalchemy.exc import OperationalError

from monitor.archive import create_schema, make_engine
from monitor.archive.export import COLUMNS, ExportHit, csv_hits, export_rows, neutralize_formula
from monitor.archive.export_cli import atomic_output, export_command, parse_bound
from monitor.archive.models import HitRecord, MessageRecord
from tests.support.app import free_port, write_config
from tests.support.paths import REPO

MESSAGE = MessageRecord.__table__
HIT = HitRecord.__table__
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    """An empty folder for exports (the SQLite archive lives in tmp_path itself)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def message(msg_id: int, text: str | None = "你好", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": msg_id,
        "dedupe_key": f"msg:{msg_id}",
        "channel": "kf",
        "msg_type": "text",
        "event": None,
        "from_user": f"wm_user{msg_id % 10}",
        "to_user": "wk_kf",
        "agent_id": None,
        "create_time": int(T0.timestamp()) + msg_id,
        "content": text,
        "raw": "<xml/>",
        "received_at": T0 + timedelta(seconds=msg_id),
        "rules_version": "v1",
        "conversation_id": f"kf:wk_kf:wm_user{msg_id % 10}",
        "direction": "customer",
    }
    row.update(values)
    return row


def hit(
    msg_id: int, word: str, start: int, end: int, *, group: str = "客户维权风险", severity: int = 3
) -> dict[str, Any]:
    return {
        "message_id": msg_id,
        "word": word,
        "rule_group": group,
        "severity": severity,
        "span_start": start,
        "span_end": end,
        "rules_version": "v1",
    }


def add(
    engine: Engine, messages: list[dict[str, Any]], hits: list[dict[str, Any]] | None = None
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(MESSAGE), messages)
        if hits:
            conn.execute(insert(HIT), hits)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_export(database_url: str, out: str, **kwargs: Any) -> tuple[int, str, bytes]:
    """export_command with defaults; returns (exit code, stderr text, stdout bytes)."""
    stdout, stderr = io.BytesIO(), kwargs.pop("stderr", io.StringIO())
    args: dict[str, Any] = {"fmt": "csv", "since": None, "until": None, "tz": "Asia/Shanghai"}
    args.update(kwargs)
    code = export_command(database_url=database_url, out=out, stdout=stdout, stderr=stderr, **args)
    return code, stderr.getvalue(), stdout.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


TRICKY = [
    message(1, "我要维权，不行就投诉", direction="customer"),
    message(2, '他说"退款"，\n然后\r\n挂了', direction="staff"),
    message(3, '=HYPERLINK("http://x","点我")', direction="bot"),
    message(4, "+8613800000000", direction=None),
    message(5, "-1", direction="member"),
    message(6, "@所有人", from_user="=cmd|' /C calc'!A0"),
    message(
        7, None, msg_type="event", event="enter_session", direction="system", rules_version=None
    ),
]
TRICKY_HITS = [
    hit(1, "投诉", 8, 10, severity=3),
    hit(1, "维权", 2, 4, severity=3),
    hit(2, "退款", 4, 6, group="售后", severity=1),
]


def test_csv_opens_in_excel_and_round_trips(
    engine: Engine, database_url: str, outdir: Path
) -> None:
    add(engine, TRICKY, TRICKY_HITS)
    out = outdir / "archive.csv"
    code, err, _ = run_export(database_url, str(out))
    assert code == 0, err
    assert err == f"exported 7 messages to {out}\n"
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf" + ",".join(COLUMNS).encode() + b"\r\n")
    assert "我要维权".encode() in data  # raw UTF-8, not escaped
    rows = read_csv(out)
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 8)]
    first, second, third, fourth, fifth, sixth, event_row = rows
    assert first["text"] == "我要维权，不行就投诉"
    assert first["hits"] == "维权(客户维权风险,高)[2:4]; 投诉(客户维权风险,高)[8:10]"  # span order
    assert first["time"] == "2026-11-23T10:00:01.000+08:00"
    assert first["create_time"] == "2026-11-23T10:00:01+08:00"
    assert first["conversation"] == "kf:wk_kf:wm_user1"
    assert first["sender"] == "wm_user1"
    assert first["direction"] == "customer"
    assert first["rules_version"] == "v1"
    assert second["text"] == '他说"退款"，\n然后\r\n挂了'  # quotes and line breaks round-trip
    assert second["hits"] == "退款(售后,低)[4:6]"
    assert second["direction"] == "staff"
    # Formula injection: the cell a spreadsheet would run gets a leading apostrophe.
    assert third["text"] == '\'=HYPERLINK("http://x","点我")'
    assert fourth["text"] == "'+8613800000000"
    assert fourth["direction"] == ""  # NULL
    assert fifth["text"] == "'-1"
    assert sixth["text"] == "'@所有人"
    assert sixth["sender"] == "'=cmd|' /C calc'!A0"
    assert event_row["text"] == ""
    assert event_row["event"] == "enter_session"
    assert event_row["hits"] == ""
    assert event_row["rules_version"] == ""
    assert list(outdir.iterdir()) == [out]  # no temporary file left


def test_jsonl_round_trips(engine: Engine, database_url: str) -> None:
    add(engine, TRICKY, TRICKY_HITS)
    code, err, raw = run_export(database_url, "-", fmt="jsonl")
    assert code == 0, err
    assert err == "exported 7 messages to stdout\n"
    assert "维权".encode() in raw  # ensure_ascii=False
    lines = raw.decode("utf-8").split("\n")
    assert lines[-1] == ""
    objects = [json.loads(line) for line in lines[:-1]]
    assert [o["id"] for o in objects] == list(range(1, 8))
    assert list(objects[0]) == list(COLUMNS)
    assert objects[0]["hits"] == [
        {"word": "维权", "group": "客户维权风险", "severity": "high", "start": 2, "end": 4},
        {"word": "投诉", "group": "客户维权风险", "severity": "high", "start": 8, "end": 10},
    ]
    text = objects[0]["text"]
    assert text[2:4] == "维权"
    assert objects[1]["text"] == '他说"退款"，\n然后\r\n挂了'
    assert objects[2]["text"].startswith("=HYPERLINK")  # no CSV escaping in JSON
    assert objects[3]["direction"] is None
    assert objects[6]["text"] is None
    assert objects[6]["rules_version"] is None
    assert objects[6]["hits"] == []


def test_twenty_thousand_rows_stream_in_bounded_memory(engine: Engine, database_url: str) -> None:
    total = 20_000
    body = "客户反馈内容" * 100  # 600 characters: ~24 MB of text if the archive were loaded at once
    messages = [message(i, f"{i}:{body}") for i in range(1, total + 1)]
    hits = [hit(i, "反馈", 4, 6) for i in range(1, total + 1, 7)]
    for start in range(0, total, 5000):
        add(
            engine,
            messages[start : start + 5000],
            [h for h in hits if start < h["message_id"] <= start + 5000],
        )
    del messages
    seen = {"rows": 0, "hits": 0}
    with engine.connect() as conn, conn.begin():
        tracemalloc.start()
        try:
            for row in export_rows(conn, chunk_size=500):
                seen["rows"] += 1
                seen["hits"] += len(row.hits)
                assert row.id == seen["rows"]
                assert row.text is not None
                assert row.text.startswith(f"{row.id}:")
                assert len(row.hits) == (1 if row.id % 7 == 1 else 0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == {"rows": total, "hits": len(hits)}
    assert peak < 8_000_000, f"peak {peak} bytes: the export is not streaming"


def test_twenty_thousand_rows_csv_file(engine: Engine, database_url: str, tmp_path: Path) -> None:
    total = 20_000
    add(engine, [message(i, f"第{i}条，含逗号") for i in range(1, total + 1)], [hit(5, "含", 1, 2)])
    out = tmp_path / "big.csv"
    code, err, _ = run_export(database_url, str(out), chunk_size=1000)
    assert code == 0, err
    rows = read_csv(out)
    assert len(rows) == total
    assert rows[-1]["id"] == str(total)
    assert rows[-1]["text"] == f"第{total}条，含逗号"
    assert rows[4]["hits"] == "含(客户维权风险,高)[1:2]"


def test_hits_are_fetched_once_per_chunk(engine: Engine) -> None:
    add(
        engine,
        [message(i) for i in range(1, 2501)],
        [hit(i, "你好", 0, 2) for i in range(1, 2501, 3)],
    )
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn, conn.begin():
            rows = list(export_rows(conn, chunk_size=1000))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(rows) == 2500
    assert sum(len(r.hits) for r in rows) == 834
    hit_queries = [s for s in statements if "FROM hit" in s]
    assert len(hit_queries) == 3  # chunks of 1000, 1000 and 500 messages
    assert len([s for s in statements if "FROM message" in s]) == 1


def test_hits_attach_across_chunk_boundaries(engine: Engine) -> None:
    add(
        engine,
        [message(i) for i in range(1, 6)],
        [hit(2, "你", 0, 1), hit(3, "好", 1, 2), hit(5, "你好", 0, 2)],
    )
    with engine.connect() as conn, conn.begin():
        rows = list(export_rows(conn, chunk_size=2))
    assert [(r.id, [h.word for h in r.hits]) for r in rows] == [
        (1, []),
        (2, ["你"]),
        (3, ["好"]),
        (4, []),
        (5, ["你好"]),
    ]


# Around midnight in Beijing (UTC+8): 23:59:59.999 on the 22nd, 00:00 and 23:59:59 on the 23rd, 00:00
# on the 24th.
EDGES = {
    1: datetime(2026, 11, 22, 15, 59, 59, 999000, tzinfo=UTC),
    2: datetime(2026, 11, 22, 16, 0, tzinfo=UTC),
    3: datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC),
    4: datetime(2026, 11, 23, 16, 0, tzinfo=UTC),
}


@pytest.mark.parametrize(
    ("since", "until", "tz", "expected"),
    [
        ("2026-11-23", "2026-11-23", "Asia/Shanghai", [2, 3]),  # all of the 23rd, Beijing time
        ("2026-11-23", None, "Asia/Shanghai", [2, 3, 4]),
        (None, "2026-11-22", "Asia/Shanghai", [1]),
        ("2026-11-23", None, "UTC", [3, 4]),
        ("2026-11-23T00:00:00+08:00", "2026-11-23T23:59:59+08:00", "UTC", [2]),  # until exclusive
        ("2026-11-23T00:00", "2026-11-23T23:59:59.5", "Asia/Shanghai", [2, 3]),  # naive: in --tz
        ("2026-11-22T15:59:59.999Z", "2026-11-22T16:00:00Z", "Asia/Shanghai", [1]),
    ],
)
def test_since_until_bounds(
    engine: Engine,
    database_url: str,
    *,
    since: str | None,
    until: str | None,
    tz: str,
    expected: list[int],
) -> None:
    add(engine, [message(i, received_at=at) for i, at in EDGES.items()])
    code, err, raw = run_export(database_url, "-", fmt="jsonl", since=since, until=until, tz=tz)
    assert code == 0, err
    assert [json.loads(line)["id"] for line in raw.splitlines()] == expected


def test_times_are_written_in_the_chosen_zone(engine: Engine, database_url: str) -> None:
    add(engine, [message(2, received_at=EDGES[2], create_time=1795363200)])
    _, _, beijing = run_export(database_url, "-", fmt="jsonl")
    _, _, utc = run_export(database_url, "-", fmt="jsonl", tz="UTC")
    assert json.loads(beijing)["time"] == "2026-11-23T00:00:00.000+08:00"
    assert json.loads(beijing)["create_time"] == "2026-11-23T00:00:00+08:00"
    assert json.loads(utc)["time"] == "2026-11-22T16:00:00.000+00:00"


def test_date_bounds_follow_the_zone_across_dst() -> None:
    new_york = ZoneInfo("America/New_York")  # DST starts 2026-03-08: that day has 23 hours
    since = parse_bound("2026-03-08", new_york)
    until = parse_bound("2026-03-08", new_york, end=True)
    assert since.astimezone(UTC) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert until.astimezone(UTC) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
    assert parse_bound("2026-11-23", SHANGHAI, end=True) == datetime(2026, 11, 24, tzinfo=SHANGHAI)
    aware = parse_bound("2026-11-23T08:00:00+00:00", SHANGHAI, end=True)
    assert aware == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # an instant is never widened


@pytest.mark.parametrize(
    ("kwargs", "message_part"),
    [
        ({"since": "2026-13-01"}, "--since"),
        ({"until": "yesterday"}, "is not a date"),
        ({"since": "2026-11-24", "until": "2026-11-23"}, "--since must be before --until"),
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"until": "9999-12-31"}, "out of range"),
    ],
)
def test_bad_arguments_exit_2(
    sqlite_url: str, tmp_path: Path, kwargs: dict[str, str], message_part: str
) -> None:
    out = tmp_path / "x.csv"
    code, err, _ = run_export(sqlite_url, str(out), **kwargs)
    assert code == 2
    assert err.startswith("archive export: ")
    assert message_part in err
    assert not out.exists()


def test_failed_export_leaves_no_file(
    engine: Engine, database_url: str, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(engine, [message(i) for i in range(1, 11)])
    real = export_rows

    def failing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for count, row in enumerate(real(*args, **kwargs)):
            if count == 5:
                raise OperationalError("SELECT ...", {}, Exception("server closed the connection"))
            yield row

    monkeypatch.setattr("monitor.archive.export_cli.export_rows", failing)
    out = outdir / "archive.jsonl"
    code, err, _ = run_export(database_url, str(out), fmt="jsonl", chunk_size=2)
    assert code == 1
    assert "[storage].database_url: cannot read the archive (server closed the connection)" in err
    assert list(outdir.iterdir()) == []  # neither OUT nor the temporary file
    out.write_text("the previous export\n", encoding="utf-8")
    assert run_export(database_url, str(out), fmt="jsonl", chunk_size=2)[0] == 1
    assert out.read_text(encoding="utf-8") == "the previous export\n"  # untouched
    assert list(outdir.iterdir()) == [out]


def test_atomic_output_on_interrupt(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt), atomic_output(out) as file:
        file.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_output(out) as file:
        file.write(b"whole")
        assert not out.exists()  # only the temporary file exists until the end
    assert out.read_bytes() == b"whole"
    assert (out.stat().st_mode & 0o777) == 0o600  # chat text: owner only


def test_progress_bar_only_on_a_terminal(engine: Engine, database_url: str, tmp_path: Path) -> None:
    add(engine, [message(i) for i in range(1, 4)])
    tty = Tty()
    code, err, _ = run_export(database_url, str(tmp_path / "a.csv"), stderr=tty)
    assert code == 0
    assert "3/3" in err  # the total comes from a COUNT
    assert err.endswith(f"exported 3 messages to {tmp_path / 'a.csv'}\n")
    code, err, _ = run_export(database_url, str(tmp_path / "b.csv"))
    assert err == f"exported 3 messages to {tmp_path / 'b.csv'}\n"  # not a terminal: summary only


def test_unreachable_database_names_the_key_not_the_password(tmp_path: Path) -> None:
    url = f"postgresql://sentinel:s3cretpw@127.0.0.1:{free_port()}/test"
    out = tmp_path / "a.csv"
    code, err, _ = run_export(url, str(out))
    assert code == 1
    assert "[storage].database_url: cannot read the archive" in err
    assert "s3cretpw" not in err
    assert not out.exists()


def test_missing_sqlite_file_is_an_error_not_a_new_archive(tmp_path: Path) -> None:
    db = tmp_path / "nope" / "sentinel.db"
    code, err, _ = run_export(f"sqlite:///{db}", "-")
    assert code == 1
    assert "[storage].database_url: there is no SQLite archive at" in err
    assert not db.parent.exists()


def test_unwritable_out_is_exit_1(engine: Engine, database_url: str, tmp_path: Path) -> None:
    code, err, _ = run_export(database_url, str(tmp_path / "no" / "dir" / "a.csv"))
    assert code == 1
    assert "cannot write" in err
    code, err, _ = run_export(database_url, str(tmp_path))
    assert code == 1
    assert "is a directory" in err


def test_formula_and_hits_helpers() -> None:
    assert [neutralize_formula(c) for c in ("=1", "+1", "-1", "@a", "\tx", "\rx", "a=1", "")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "'\rx",
        "a=1",
        "",
    ]
    assert csv_hits([ExportHit("红包", "员工违规", 4, 0, 2), ExportHit("x", "g", 9, 3, 4)]) == (
        "红包(员工违规,严重)[0:2]; x(g,9)[3:4]"  # an unknown severity value is kept as a number
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), *args],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_cli_end_to_end(engine: Engine, database_url: str, tmp_path: Path) -> None:
    add(engine, TRICKY, TRICKY_HITS)
    config = str(write_config(tmp_path, database_url))
    out = tmp_path / "archive.csv"
    done = run_cli("archive", "export", "--format", "csv", "--config", config, str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode() == f"exported 7 messages to {out}\n"  # no bar: not a terminal
    assert read_csv(out)[1]["text"] == '他说"退款"，\n然后\r\n挂了'
    done = run_cli(
        "archive", "export", "--format", "jsonl", "--since", "2026-11-23", "--until",
        "2026-11-23", "--config", config, "-",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == list(range(1, 8))
    bad = run_cli(
        "archive", "export", "--format", "csv", "--since", "23/11/2026", "--config", config, "-"
    )
    assert bad.returncode == 2
    assert b"--since" in bad.stderr
    assert bad.stdout == b""


def test_cli_help_and_unreachable_database(tmp_path: Path) -> None:
    help_text = run_cli("archive", "export", "--help").stdout.decode()
    assert "includes all of that day" in help_text
    assert "--tz" in help_text
    assert "Asia/Shanghai" in help_text
    url = f"postgresql://sentinel:s3cretpw@127.0.0.1:{free_port()}/test"
    config = str(write_config(tmp_path, url))
    done = run_cli(
        "archive", "export", "--format", "csv", "--config", config, str(tmp_path / "a.csv")
    )
    assert done.returncode == 1
    assert b"[storage].database_url" in done.stderr
    assert b"s3cretpw" not in done.stderr
    assert not (tmp_path / "a.csv").exists()
