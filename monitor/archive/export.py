"""Streaming export of the archive: one row per archived message, as CSV or JSON lines.

:func:`export_rows` reads messages with a streamed query (a server-side cursor on PostgreSQL, a
lazily stepped cursor on SQLite) and their hits with ONE query per chunk of messages, so memory
stays bounded by the chunk size however large the archive is. :func:`write_csv` and
:func:`write_jsonl` turn the rows into bytes on a binary stream.

Columns, in order: ``id, time, create_time, channel, conversation, sender, direction, msg_type,
event, text, hits, rules_version``. ``time`` is when the archive received the message and
``create_time`` WeCom's CreateTime, both ISO 8601 with the offset of the chosen time zone.

CSV is made for Excel: UTF-8 with a BOM, CRLF line ends, fields quoted when they hold a comma,
quote or line break (a line break inside a text stays in its cell). A NULL is an empty cell. A text
cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe
so a spreadsheet shows it instead of running it as a formula (CSV injection, per OWASP): such a
cell reads back with that apostrophe. ``hits`` is ``word(group,severity label)[start:end]`` joined
by ``"; "``, e.g. ``维权(客户维权风险,高)[2:4]``.

:func:`export_rows` and :func:`count_messages` also take a ``conversation`` (one case's export
from the review web, ``monitor.review.case_export``), which pages its output with
:func:`csv_header`, :func:`csv_lines` and :func:`jsonl_lines`: the same bytes as the writers.

JSON lines: one object per line with the same keys, UTF-8 unescaped, NULL as ``null``, ``hits`` a
list of ``{"word", "group", "severity", "start", "end"}`` with ``severity`` the lower-case name
(``high``) as ``rules scan`` writes it; ``text[start:end]`` is the matched span.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, Connection, Select, Table, bindparam, func, select

from monitor.archive.models import HitRecord, MessageRecord
from rules.models import Severity

__all__ = [
    "COLUMNS",
    "ExportHit",
    "ExportRow",
    "count_messages",
    "csv_header",
    "csv_hits",
    "csv_lines",
    "export_rows",
    "jsonl_lines",
    "neutralize_formula",
    "row_values",
    "write_csv",
    "write_jsonl",
]

COLUMNS = (
    "id",
    "time",
    "create_time",
    "channel",
    "conversation",
    "sender",
    "direction",
    "msg_type",
    "event",
    "text",
    "hits",
    "rules_version",
)
"""The export's columns (CSV header, JSON keys), in order."""

DEFAULT_CHUNK = 1000
"""Messages per fetched chunk, and so per hits query (far below SQLite's bound-parameter limit)."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_MESSAGE: Table = MessageRecord.__table__
_HIT: Table = HitRecord.__table__


@dataclass(frozen=True, slots=True)
class ExportHit:
    """One stored hit: ``text[start:end]`` matched ``word`` of ``group``."""

    word: str
    group: str
    severity: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One archived message with its hits (in span order), as exported."""

    id: int
    received_at: datetime
    create_time: int
    channel: str
    conversation: str | None
    sender: str
    direction: str | None
    msg_type: str
    event: str | None
    text: str | None
    rules_version: str | None
    hits: tuple[ExportHit, ...]


def _where(
    since: datetime | None,
    until: datetime | None,
    conversation: str | None = None,
    after: int | None = None,
) -> list[ColumnElement[bool]]:
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise ValueError("since/until must be timezone-aware datetimes")
    received = _MESSAGE.c.received_at
    return [
        *([received >= since] if since is not None else []),
        *([received < until] if until is not None else []),
        *([_MESSAGE.c.conversation_id == conversation] if conversation is not None else []),
        *([_MESSAGE.c.id > after] if after is not None else []),
    ]


def count_messages(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    conversation: str | None = None,
) -> int:
    """How many messages :func:`export_rows` yields for the same bounds (for a progress total)."""
    query = select(func.count()).select_from(_MESSAGE).where(*_where(since, until, conversation))
    return int(conn.execute(query).scalar_one())


def _messages_query(
    since: datetime | None, until: datetime | None, conversation: str | None, after: int | None
) -> Select[Any]:
    m = _MESSAGE.c
    return (
        select(
            m.id,
            m.received_at,
            m.create_time,
            m.channel,
            m.conversation_id.label("conversation"),
            m.from_user.label("sender"),
            m.direction,
            m.msg_type,
            m.event,
            m.content.label("text"),
            m.rules_version,
        )
        .where(*_where(since, until, conversation, after))
        .order_by(m.id)
    )


_HITS_QUERY = (
    select(
        _HIT.c.message_id,
        _HIT.c.word,
        _HIT.c.rule_group,
        _HIT.c.severity,
        _HIT.c.span_start,
        _HIT.c.span_end,
    )
    .where(_HIT.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(_HIT.c.message_id, _HIT.c.span_start, _HIT.c.id)
)
"""The hits of one chunk of messages: a single query per chunk, never one per message."""


def _hits_of(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[ExportHit, ...]]:
    found: dict[int, list[ExportHit]] = {}
    for message_id, word, group, severity, start, end in conn.execute(_HITS_QUERY, {"ids": ids}):
        found.setdefault(message_id, []).append(ExportHit(word, group, severity, start, end))
    return {message_id: tuple(hits) for message_id, hits in found.items()}


def export_rows(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    conversation: str | None = None,
    after: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> Generator[ExportRow, None, None]:
    """Archived messages received in ``[since, until)`` (aware datetimes), oldest id first; only
    those of ``conversation`` when it is given, and with ids above ``after`` (paging).

    Rows are streamed ``chunk_size`` at a time; each chunk's hits come from one query. Run it
    inside one transaction (``conn.begin()``) so the rows, their hits and a
    :func:`count_messages` taken before all see the same snapshot.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    # Per statement: Connection.execution_options() would change the connection itself, and the
    # hits queries must stay plain buffered ones.
    result = conn.execute(
        _messages_query(since, until, conversation, after),
        execution_options={"yield_per": chunk_size},
    )
    try:
        for chunk in result.partitions():
            hits = _hits_of(conn, [row.id for row in chunk])
            for row in chunk:
                yield ExportRow(**row._mapping, hits=hits.get(row.id, ()))
    finally:
        result.close()  # an abandoned export releases its server-side cursor at once


def _iso(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def _create_time(seconds: int, tz: tzinfo) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).astimezone(tz).isoformat()
    except (OverflowError, OSError, ValueError):  # WeCom sent nonsense: keep the number as sent
        return str(seconds)


def _severity(value: int, *, label: bool) -> str:
    """``高`` (label) or ``high`` (name); a value outside the enum stays a number."""
    try:
        severity = Severity(value)
    except ValueError:
        return str(value)
    return severity.label if label else severity.name.lower()


def csv_hits(hits: Iterable[ExportHit]) -> str:
    """The CSV ``hits`` cell: ``维权(客户维权风险,高)[2:4]; ...`` (empty when no hits)."""
    return "; ".join(
        f"{h.word}({h.group},{_severity(h.severity, label=True)})[{h.start}:{h.end}]" for h in hits
    )


def row_values(row: ExportRow, tz: tzinfo) -> dict[str, Any]:
    """``row`` as the JSON object of one line (keys in :data:`COLUMNS` order)."""
    return {
        "id": row.id,
        "time": _iso(row.received_at, tz),
        "create_time": _create_time(row.create_time, tz),
        "channel": row.channel,
        "conversation": row.conversation,
        "sender": row.sender,
        "direction": row.direction,
        "msg_type": row.msg_type,
        "event": row.event,
        "text": row.text,
        "hits": [
            {
                "word": h.word,
                "group": h.group,
                "severity": _severity(h.severity, label=False),
                "start": h.start,
                "end": h.end,
            }
            for h in row.hits
        ],
        "rules_version": row.rules_version,
    }


def neutralize_formula(cell: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula (starts with = + - @ tab CR)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _csv_cells(row: ExportRow, tz: tzinfo) -> list[str | int]:
    texts = (
        _iso(row.received_at, tz),
        _create_time(row.create_time, tz),
        row.channel,
        row.conversation,
        row.sender,
        row.direction,
        row.msg_type,
        row.event,
        row.text,
        csv_hits(row.hits),
        row.rules_version,
    )
    return [row.id, *(neutralize_formula(t) if t else "" for t in texts)]


def write_csv(rows: Iterable[ExportRow], out: BinaryIO, *, tz: tzinfo) -> int:
    """Write a header and ``rows`` to ``out`` as Excel-ready CSV; return the number of rows."""
    # newline="" hands line ends to the csv module: CRLF between records, a text's own line
    # breaks kept verbatim inside its quoted cell.
    text = io.TextIOWrapper(out, encoding="utf-8", errors="replace", newline="")
    count = 0
    try:
        text.write("\ufeff")  # the BOM: without it Excel reads UTF-8 as the local code page
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(_csv_cells(row, tz))
            count += 1
        text.flush()
    finally:
        text.detach()  # leave ``out`` open: the caller owns it
    return count


def write_jsonl(rows: Iterable[ExportRow], out: BinaryIO, *, tz: tzinfo) -> int:
    """Write ``rows`` to ``out`` as JSON lines (UTF-8, ``\\n`` ends); return the number of rows."""
    count = 0
    for row in rows:
        line = json.dumps(row_values(row, tz), ensure_ascii=False) + "\n"
        out.write(line.encode("utf-8", errors="replace"))
        count += 1
    return count


def csv_header() -> bytes:
    """The start of a CSV export: the BOM and the header line (as :func:`write_csv` writes it)."""
    return "\ufeff".encode() + _csv_records([list(COLUMNS)])


def csv_lines(rows: Iterable[ExportRow], *, tz: tzinfo) -> bytes:
    """``rows`` as CSV records (after :func:`csv_header`), exactly as :func:`write_csv` would."""
    return _csv_records(_csv_cells(row, tz) for row in rows)


def _csv_records(records: Iterable[Sequence[str | int]]) -> bytes:
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\r\n").writerows(records)
    return text.getvalue().encode("utf-8", errors="replace")


def jsonl_lines(rows: Iterable[ExportRow], *, tz: tzinfo) -> bytes:
    """``rows`` as JSON lines, exactly as :func:`write_jsonl` would."""
    return b"".join(
        (json.dumps(row_values(row, tz), ensure_ascii=False) + "\n").encode("utf-8", "replace")
        for row in rows
    )
