"""Full-text search of archived messages: filters, the SQL they make, and a runner.

**What matches.** A message matches a query ``q`` (1..64 characters, any script) when its
``content`` contains ``q`` as a substring, ASCII letters compared case-insensitively and nothing
else normalised (no full-width folding, no Unicode case folding, no segmentation): exactly what
``fold(content) LIKE '%' || fold(q) || '%'`` finds with ``%``, ``_`` and ``\\`` escaped, where
:func:`~monitor.archive.search_index.fold` lower-cases A-Z only. ``维权`` finds ``我要维权了``;
``％`` does not find ``%``; ``a_b`` finds only ``a_b``.

**How.** The gram index (:mod:`monitor.archive.search_index`) gives candidates, newest first; for
a query of 3 or more characters each candidate is rechecked on its real text (``instr`` on SQLite,
``strpos`` on PostgreSQL), since its bigrams may be apart. A query with a narrow filter
(conversation, hit word, severity, case state) reads that filter's messages instead and rechecks
every one: they are few, while a common query's candidates are many.

**Filters** combine with the query and with each other (AND): the sender as staff member
(``from_user``, any direction but ``customer``) or as customer (``direction = 'customer'``), the
conversation id, the UTC days the archive received it (``received_at``), a hit of a word (its
canonical spelling), a hit of at least a severity, and the state of a case (alert) the message is
linked to (``alert_message``). An empty query with filters lists the filtered messages.

Results are newest first (by message id, i.e. archive order), ``page_size`` per page; the total
is counted up to :data:`COUNT_CAP` and then shown as "1,000+".

**Two steps.** First the ids of at most :data:`COUNT_CAP` + 1 matches, in any order (the count).
When that is all of them, the page is those ids sorted, read by primary key: a rare query never
walks the table in id order looking for matches that are not there. Otherwise matches are
dense, and the page is read newest first with ``LIMIT``, which then stops after a few rows per
match. On PostgreSQL each step's plan is pinned (``SET LOCAL``): bitmap scans of the GIN index
for the first when the query is rare, index walks newest first when it is dense or for the
second step (a top-N sort of every match would read them all); its estimate of a gram's frequency
can be far off, so a probe of the newest messages decides (:func:`search_messages`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSQUERY

from monitor.alerts.models import AlertMessageLink, AlertRecord
from monitor.alerts.policy import AlertStatus
from monitor.archive.export import ExportHit, ExportRow
from monitor.archive.models import HitRecord, MessageRecord
from monitor.archive.search_index import INDEX_TABLE, fold, query_tokens

__all__ = [
    "COUNT_CAP",
    "OPEN_STATE",
    "QUERY_MAX",
    "SearchFilter",
    "SearchPage",
    "SearchResult",
    "count_statement",
    "export_chunk",
    "export_chunks",
    "id_bounds",
    "search_messages",
    "search_statement",
    "snippet",
    "uses_gram_index",
]

COUNT_CAP = 1000
"""Totals are counted up to this many matches; beyond, a page says "1,000+"."""

QUERY_MAX = 64
"""Longest query, in characters (a longer one is cut)."""

OPEN_STATE = "active"
"""The case-state filter value for any open case (待处理, 已认领, 已升级)."""

_OPEN = (AlertStatus.OPEN.value, AlertStatus.CLAIMED.value, AlertStatus.ESCALATED.value)

_M: Table = MessageRecord.__table__
_HITS: Table = HitRecord.__table__
_LINKS: Table = AlertMessageLink.__table__
_ALERTS: Table = AlertRecord.__table__
_FTS = table(INDEX_TABLE, column("rowid"))
_PG_INDEX = table(INDEX_TABLE, column("message_id"), column("grams"))
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_COLUMNS = (
    _M.c.id,
    _M.c.conversation_id,
    _M.c.from_user,
    _M.c.direction,
    _M.c.channel,
    _M.c.msg_type,
    _M.c.event,
    _M.c.create_time,
    _M.c.received_at,
    _M.c.content,
    _M.c.rules_version,
)


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """A search: the query and its filters; every field empty lists nothing."""

    text: str = ""
    staff: str = ""
    customer: str = ""
    conversation: str = ""
    since: date | None = None
    until: date | None = None
    word: str = ""
    severity: int | None = None
    """At least this severity (1..4) on one of the message's hits."""
    state: str = ""
    """A case state (:class:`AlertStatus` value) or :data:`OPEN_STATE`; "" for any."""
    page: int = 1

    @property
    def filtered(self) -> bool:
        """Some filter besides the query is set."""
        return any(
            (
                self.staff,
                self.customer,
                self.conversation,
                self.since,
                self.until,
                self.word,
                self.severity,
                self.state,
            )
        )

    @property
    def empty(self) -> bool:
        """Neither a query nor a filter: nothing to search for."""
        return not self.text and not self.filtered

    def query(self, **changes: Any) -> dict[str, str]:
        """The non-empty fields as query parameters (for links that keep the search)."""
        values = {
            "q": self.text,
            "staff": self.staff,
            "customer": self.customer,
            "conversation": self.conversation,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "word": self.word,
            "severity": "" if self.severity is None else str(self.severity),
            "state": self.state,
            "page": "" if self.page == 1 else str(self.page),
        }
        merged = {**values, **{key: str(value) for key, value in changes.items()}}
        return {key: value for key, value in merged.items() if value}

    def audit_detail(self) -> dict[str, str]:
        """The search as its audit row records it (the query and every filter set)."""
        return self.query(page="")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One matching message."""

    id: int
    conversation_id: str
    from_user: str
    direction: str
    create_time: int
    received_at: datetime
    content: str
    msg_type: str


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results and the (capped) total."""

    results: list[SearchResult]
    total: int
    """Matches counted, at most :data:`COUNT_CAP` + 1."""
    page: int
    page_size: int

    @property
    def capped(self) -> bool:
        """More matches than :data:`COUNT_CAP`: the total shows as "1,000+"."""
        return self.total > COUNT_CAP

    @property
    def total_label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.capped else f"{self.total:,}"

    @property
    def pages(self) -> int:
        return max(1, math.ceil(min(self.total, COUNT_CAP) / self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages or (self.capped and len(self.results) == self.page_size)


def uses_gram_index(wanted: SearchFilter) -> bool:
    """The search reads the gram index: a query and no narrow filter (see the module docstring)."""
    return bool(wanted.text) and _candidates(wanted) is None


def _candidates(wanted: SearchFilter) -> Select[Any] | None:
    """The ids of the narrowest filter set (None: no narrow filter), to drive the query from."""
    m = _M.c
    if wanted.conversation:
        return select(m.id.label("id")).where(m.conversation_id == wanted.conversation)
    if wanted.staff or wanted.customer:
        return select(m.id.label("id")).where(m.from_user == (wanted.staff or wanted.customer))
    if wanted.word or wanted.severity:
        hit_where: list[ColumnElement[bool]] = []
        if wanted.word:
            hit_where.append(_HITS.c.word == wanted.word)
        if wanted.severity:
            hit_where.append(_HITS.c.severity >= wanted.severity)
        return select(_HITS.c.message_id.label("id")).where(*hit_where).distinct()
    if wanted.state:
        states = _OPEN if wanted.state == OPEN_STATE else (wanted.state,)
        return (
            select(_LINKS.c.message_id.label("id"))
            .join(_ALERTS, _ALERTS.c.alert_id == _LINKS.c.alert_id)
            .where(_ALERTS.c.status.in_(states))
            .distinct()
        )
    return None


def _driver(wanted: SearchFilter) -> str:
    """Which filter :func:`_candidates` reads: ``conversation``, ``sender``, ``hit``, ``state``."""
    if wanted.conversation:
        return "conversation"
    if wanted.staff or wanted.customer:
        return "sender"
    return "hit" if wanted.word or wanted.severity else "state"


def _filters(wanted: SearchFilter, *, skip: str = "") -> list[ColumnElement[bool]]:
    """Every filter as a condition on the message, but the ``skip`` one (already applied)."""
    m = _M.c
    parts: list[ColumnElement[bool]] = []
    if wanted.staff:
        parts.append(m.from_user == wanted.staff)
        parts.append(func.coalesce(m.direction, "") != "customer")
    if wanted.customer:
        parts.append(m.from_user == wanted.customer)
        parts.append(m.direction == "customer")
    if wanted.conversation:
        parts.append(m.conversation_id == wanted.conversation)
    if wanted.since is not None:
        parts.append(m.received_at >= _day_start(wanted.since))
    if wanted.until is not None:
        parts.append(m.received_at < _day_start(wanted.until) + timedelta(days=1))
    if (wanted.word or wanted.severity) and skip != "hit":
        hit_where: list[ColumnElement[bool]] = []
        if wanted.word:
            hit_where.append(_HITS.c.word == wanted.word)
        if wanted.severity:
            hit_where.append(_HITS.c.severity >= wanted.severity)
        parts.append(m.id.in_(select(_HITS.c.message_id).where(*hit_where)))
    if wanted.state and skip != "state":
        states = _OPEN if wanted.state == OPEN_STATE else (wanted.state,)
        parts.append(
            m.id.in_(
                select(_LINKS.c.message_id)
                .join(_ALERTS, _ALERTS.c.alert_id == _LINKS.c.alert_id)
                .where(_ALERTS.c.status.in_(states))
            )
        )
    return parts


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _recheck(dialect: str, needle: str) -> ColumnElement[bool]:
    """The real text holds ``needle`` (already folded), ASCII letters case-insensitively."""
    content: ColumnElement[Any] = _M.c.content
    if not any("a" <= char <= "z" for char in needle):
        # No ASCII letter in the needle: a folded match is a plain one (folding changes letters
        # only), so the text need not be folded row by row.
        pass
    elif dialect == "postgresql":
        content = func.translate(content, _UPPER, _UPPER.lower())
    else:
        content = func.lower(content)  # SQLite's built-in lower() folds A-Z only, as fold() does
    if dialect == "postgresql":
        return func.strpos(content, literal(needle)) > 0
    return func.instr(content, literal(needle)) > 0


IdBounds = tuple[int, int]
"""``(lowest, highest)`` message id worth reading; see :func:`id_bounds`."""


def search_statement(
    dialect: str,
    wanted: SearchFilter,
    *,
    limit: int | None,
    offset: int = 0,
    before_id: int | None = None,
    bounds: IdBounds | None = None,
    ids_only: bool = False,
) -> Select[Any]:
    """The SELECT of the messages ``wanted`` finds, newest first (``dialect``: ``sqlite`` or
    ``postgresql``); ``before_id`` keeps only older ids (the export's keyset paging); ``bounds``
    (:func:`id_bounds`) limits the ids read for a date range, which stays checked exactly;
    ``ids_only`` selects the message ids alone."""
    columns = (_M.c.id,) if ids_only else _COLUMNS
    needle = fold(wanted.text)
    where = _filters(wanted)
    tokens = query_tokens(needle)
    candidates = _candidates(wanted)
    rowid: ColumnElement[Any] = _M.c.id
    if candidates is not None:
        # A narrow filter: read its messages, newest first, and check each one's text.
        # MATERIALIZED: the filter's ids are read once, not re-planned into a scan of every message.
        driver = candidates.cte("candidates").prefix_with("MATERIALIZED")
        rowid = driver.c.id
        if tokens:
            where.append(_recheck(dialect, needle))
        stmt = select(*columns).select_from(driver.join(_M, _M.c.id == driver.c.id))
    elif not tokens:
        stmt = select(*columns)
    else:
        if len(needle) > 2:  # bigrams may be apart: check the text itself
            where.append(_recheck(dialect, needle))
        if dialect == "postgresql":
            lexemes = " & ".join(f"'{token}'" for token in tokens)  # tokens are [0-9a-fx]
            stmt = select(*columns).select_from(
                _PG_INDEX.join(_M, _M.c.id == _PG_INDEX.c.message_id)
            )
            rowid = _PG_INDEX.c.message_id  # bounds on the index table: a bitmap can use them
            where.append(_PG_INDEX.c.grams.op("@@")(cast(literal(lexemes), TSQUERY)))
        else:
            match = " ".join(f'"{token}"' for token in tokens)
            stmt = select(*columns).select_from(_FTS.join(_M, _M.c.id == _FTS.c.rowid))
            where.append(literal_column(INDEX_TABLE).op("MATCH")(literal(match)))
            rowid = _FTS.c.rowid  # FTS5 walks its doclists newest first, within the bounds
    if before_id is not None:
        where.append(rowid < before_id)
    if bounds is not None:
        where.extend((rowid >= bounds[0], rowid <= bounds[1]))
    stmt = stmt.where(*where).order_by(rowid.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


BOUNDS_SLACK = timedelta(hours=1)
"""How far ``received_at`` may run against id order (ids are given at insert, ``received_at``
just before it by each worker's clock): :func:`id_bounds` widens the date range by this much."""


def id_bounds(conn: Connection, wanted: SearchFilter) -> IdBounds | None:
    """For a date range, the ids worth reading: from the first message received an hour
    (:data:`BOUNDS_SLACK`) before ``since`` to the last received an hour after ``until``, found on
    the ``received_at`` index; the range itself is still checked on every row. None without a
    date range; ``(1, 0)`` (nothing) when no message is in the widened range."""
    if wanted.since is None and wanted.until is None:
        return None
    m = _M.c
    low: Any = 1
    high: Any = None
    if wanted.since is not None:
        start = _day_start(wanted.since) - BOUNDS_SLACK
        low = conn.execute(
            select(m.id).where(m.received_at >= start).order_by(m.received_at).limit(1)
        ).scalar()
    if wanted.until is not None:
        stop = _day_start(wanted.until) + timedelta(days=1) + BOUNDS_SLACK
        high = conn.execute(
            select(m.id).where(m.received_at < stop).order_by(m.received_at.desc()).limit(1)
        ).scalar()
    else:
        high = conn.execute(select(func.max(m.id))).scalar()
    if low is None or high is None:
        return (1, 0)
    return (int(low), int(high))


def count_statement(
    dialect: str, wanted: SearchFilter, *, cap: int = COUNT_CAP, bounds: IdBounds | None = None
) -> Select[Any]:
    """``SELECT count(*)`` of at most ``cap`` + 1 matches: stops early on a common query."""
    stmt = search_statement(dialect, wanted, limit=cap + 1, bounds=bounds)
    inner = stmt.order_by(None).subquery()  # any cap + 1 matches will do: no sort
    return select(func.count()).select_from(inner)


def _result(row: Any) -> SearchResult:
    return SearchResult(
        id=row.id,
        conversation_id=row.conversation_id or "",
        from_user=row.from_user,
        direction=row.direction or "",
        create_time=row.create_time,
        received_at=row.received_at,
        content=row.content or "",
        msg_type=row.msg_type,
    )


DENSE_PROBE = 2000
"""PostgreSQL: the newest messages (in the searched id range) a query is first tried on."""

DENSE_SHARE = 0.05
"""PostgreSQL: a query found in this share of the probed messages is dense (see
:func:`search_messages`)."""

WALK_SHARE = 0.007
"""PostgreSQL: below this share, a page past the count is a bitmap scan and a sort, not a walk
(the two cost the same near sqrt(page_size / messages) for a million messages)."""


def search_messages(conn: Connection, wanted: SearchFilter, *, page_size: int = 50) -> SearchPage:
    """One page of what ``wanted`` finds, and the total up to :data:`COUNT_CAP` + 1 (see the
    module docstring: two steps). An empty search finds nothing, without touching the database.

    On PostgreSQL a gram-index search first counts its matches among the newest
    :data:`DENSE_PROBE` messages. Dense (at least :data:`DENSE_SHARE`), the count walks the index
    table newest first and stops early; else it uses a bitmap scan of the GIN index, whose cost
    grows with the number of matches, few for such a query. A page past a capped count walks
    too, unless the query is sparse (under :data:`WALK_SHARE`): then a bitmap scan and a sort.
    """
    if wanted.empty:
        return SearchPage([], 0, 1, page_size)
    dialect = conn.dialect.name
    bounds = id_bounds(conn, wanted)
    candidates = _candidates(wanted)
    if candidates is not None:
        return _narrow_page(conn, wanted, candidates, bounds, page_size)
    pinned = dialect == "postgresql" and uses_gram_index(wanted)
    share = _probe(conn, wanted, bounds) if pinned else 0.0
    dense = share >= DENSE_SHARE
    first = search_statement(dialect, wanted, limit=COUNT_CAP + 1, bounds=bounds, ids_only=True)
    if pinned:
        _plan(conn, bitmap=not dense)
    try:
        ids = [row[0] for row in conn.execute(first.order_by(None) if not dense else first)]
        total = len(ids)
        if total <= COUNT_CAP:
            pages = max(1, math.ceil(total / page_size))
            page = min(wanted.page, pages)
            start = (page - 1) * page_size
            chosen = sorted(ids, reverse=True)[start : start + page_size]
            if pinned:
                _plan(conn, bitmap=None)
            stmt = select(*_COLUMNS).where(_M.c.id.in_(chosen)).order_by(_M.c.id.desc())
        else:
            page = wanted.page
            if pinned:
                # Walking newest first reads ~page_size / share rows, a bitmap every match
                # (~share * messages): walk unless the query is sparse.
                _plan(conn, bitmap=share < WALK_SHARE)
            stmt = search_statement(
                dialect, wanted, limit=page_size, offset=(page - 1) * page_size, bounds=bounds
            )
        rows = conn.execute(stmt).all()
    finally:
        if pinned:
            _plan(conn, bitmap=None)
    return SearchPage([_result(row) for row in rows], total, page, page_size)


NARROW_CHUNK = 1000
"""Ids of a narrow filter checked per statement, newest first."""


def _narrow_page(
    conn: Connection,
    wanted: SearchFilter,
    candidates: Select[Any],
    bounds: IdBounds | None,
    page_size: int,
) -> SearchPage:
    """A search with a narrow filter: that filter's ids, newest first, checked a chunk at a time
    (the other filters, the date range and the text) until the page and the count are known."""
    ids_query = select(candidates.subquery().c.id)
    if bounds is not None:
        column = ids_query.selected_columns[0]
        ids_query = ids_query.where(column >= bounds[0], column <= bounds[1])
    ids = sorted(conn.execute(ids_query).scalars(), reverse=True)
    needle = fold(wanted.text)
    checks = _filters(wanted, skip=_driver(wanted))
    if needle:
        checks.append(_recheck(conn.dialect.name, needle))
    wanted_rows = max(COUNT_CAP + 1, wanted.page * page_size)
    matched: list[int] = []
    for start in range(0, len(ids), NARROW_CHUNK):
        chunk = ids[start : start + NARROW_CHUNK]
        found = conn.execute(select(_M.c.id).where(_M.c.id.in_(chunk), *checks)).scalars()
        matched.extend(sorted(found, reverse=True))
        if len(matched) >= wanted_rows:
            break
    total = min(len(matched), COUNT_CAP + 1)
    pages = max(1, math.ceil(len(matched) / page_size))
    page = min(wanted.page, pages)
    chosen = matched[(page - 1) * page_size : page * page_size]
    rows = conn.execute(select(*_COLUMNS).where(_M.c.id.in_(chosen)).order_by(_M.c.id.desc()))
    return SearchPage([_result(row) for row in rows], total, page, page_size)


def _probe(conn: Connection, wanted: SearchFilter, bounds: IdBounds | None) -> float:
    """PostgreSQL: the share of the newest :data:`DENSE_PROBE` messages of the searched range
    that hold the query (a walk of the index table's key)."""
    top = bounds[1] if bounds is not None else conn.execute(select(func.max(_M.c.id))).scalar()
    if top is None:
        return 0.0
    low = max(int(top) - DENSE_PROBE, bounds[0] - 1 if bounds is not None else 0)
    # The text alone (the date range, the only other filter here, is what bounds the ids).
    text_only = SearchFilter(text=wanted.text)
    probe = search_statement(
        "postgresql", text_only, limit=None, bounds=(low + 1, int(top)), ids_only=True
    ).order_by(None)
    _plan(conn, bitmap=False)
    found = int(conn.execute(select(func.count()).select_from(probe.subquery())).scalar_one())
    return found / DENSE_PROBE


def _plan(conn: Connection, *, bitmap: bool | None) -> None:
    """Pin the transaction's plans to bitmap scans (True), to anything but (False), or unpin."""
    # False leaves the key's index walk alone: a seq scan would read every match, then sort.
    on = {True: ("off", "off", "on"), False: ("off", "on", "off"), None: ("on", "on", "on")}
    seqscan, indexscan, bitmapscan = on[bitmap]
    conn.exec_driver_sql(
        f"SET LOCAL enable_seqscan = {seqscan}; SET LOCAL enable_indexscan = {indexscan}; "
        f"SET LOCAL enable_bitmapscan = {bitmapscan}"
    )


def _hits_of(conn: Connection, ids: list[int]) -> dict[int, tuple[ExportHit, ...]]:
    found: dict[int, list[ExportHit]] = {}
    h = _HITS.c
    query = (
        select(h.message_id, h.word, h.rule_group, h.severity, h.span_start, h.span_end)
        .where(h.message_id.in_(ids))
        .order_by(h.message_id, h.span_start, h.id)
    )
    for message_id, word, group, severity, start, end in conn.execute(query):
        found.setdefault(message_id, []).append(ExportHit(word, group, severity, start, end))
    return {message_id: tuple(hits) for message_id, hits in found.items()}


def export_chunk(
    conn: Connection, wanted: SearchFilter, *, before_id: int | None, size: int
) -> list[ExportRow]:
    """The next ``size`` matches older than ``before_id`` (all when None), as export rows."""
    bounds = id_bounds(conn, wanted)
    stmt = search_statement(
        conn.dialect.name, wanted, limit=size, before_id=before_id, bounds=bounds
    )
    rows = conn.execute(stmt).all()
    hits = _hits_of(conn, [row.id for row in rows])
    return [
        ExportRow(
            id=row.id,
            received_at=row.received_at,
            create_time=row.create_time,
            channel=row.channel,
            conversation=row.conversation_id,
            sender=row.from_user,
            direction=row.direction,
            msg_type=row.msg_type,
            event=row.event,
            text=row.content,
            rules_version=row.rules_version,
            hits=hits.get(row.id, ()),
        )
        for row in rows
    ]


def export_chunks(
    conn: Connection, wanted: SearchFilter, *, size: int = 500
) -> Iterator[list[ExportRow]]:
    """Every match, newest first, ``size`` at a time (keyset paging: one query per chunk)."""
    before: int | None = None
    while True:
        chunk = export_chunk(conn, wanted, before_id=before, size=size)
        if not chunk:
            return
        yield chunk
        if len(chunk) < size:
            return
        before = chunk[-1].id


def snippet(content: str, query: str, *, before: int = 30, after: int = 60) -> Markup:
    """``content`` around the first occurrence of ``query`` (as search matches it), that text
    wrapped in ``<mark>`` and everything escaped; the start of ``content`` when not found."""
    at = fold(content).find(fold(query)) if query else -1
    if at < 0:
        cut = content[: before + after]
        return escape(cut) + (Markup("…") if len(content) > len(cut) else Markup(""))
    end = at + len(query)
    start = max(0, at - before)
    stop = min(len(content), end + after)
    return (
        (Markup("…") if start > 0 else Markup(""))
        + escape(content[start:at])
        + Markup("<mark>")
        + escape(content[at:end])
        + Markup("</mark>")
        + escape(content[end:stop])
        + (Markup("…") if stop < len(content) else Markup(""))
    )
