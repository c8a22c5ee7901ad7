"""What adding a phrase to a group's allow-list would have done to the archive's past hits.

The test is the matcher's own allow-list filter (``rules.matcher.Matcher._group_allows``): the
message text and the phrase are normalised with ``rules.normalize.normalize``, and a hit is dropped
when its normalised span lies inside an occurrence of the normalised phrase
(``rules.hit_filters.occurrences`` / ``inside_any``). A stored hit's span is in the original text;
it is mapped back to the normalised text through the offset map the matcher itself used.

Bounded on any archive: the group's hits are read newest first in pages of ``page_size``
(keyset on the hit id, over the index ``ix_hit_rule_group_id``), each message normalised once,
until ``max_checked`` hits or ``time_budget_s`` seconds; the result says how many were checked
out of how many, and keeps at most ``max_examples`` examples. A word split over several messages
(``via = "split"``) was matched on the joined messages, which the archive does not keep as one
text: such hits are counted apart and not judged.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import Connection, Table, func, select

from monitor.alerts.models import AlertMessageLink
from monitor.archive.models import HitRecord, MessageRecord
from rules.hit_filters import inside_any, occurrences
from rules.normalize import Normalized, normalize

__all__ = [
    "Backtest",
    "BacktestLimits",
    "CaseHit",
    "DroppedHit",
    "allowed_by",
    "load_case_hits",
    "load_hit",
    "marked_snippet",
    "run_backtest",
]

_HITS: Table = HitRecord.__table__
_MESSAGES: Table = MessageRecord.__table__
_LINKS: Table = AlertMessageLink.__table__
_SNIPPET = 30  # characters shown on each side of a hit


@dataclass(frozen=True, slots=True)
class BacktestLimits:
    """How much one backtest may read."""

    max_checked: int = 50_000
    page_size: int = 500
    max_examples: int = 20
    time_budget_s: float = 10.0


@dataclass(frozen=True, slots=True)
class DroppedHit:
    """An archived hit the phrase would have dropped."""

    hit_id: int
    message_id: int
    conversation_id: str
    word: str
    at: datetime
    snippet: Markup
    """The text around the hit, escaped, the hit wrapped in ``<mark>``."""


@dataclass(frozen=True, slots=True)
class Backtest:
    """The counts over the hits checked (newest first), and examples of dropped ones."""

    group: str
    phrase: str
    total: int
    """Hits of the group in the archive when the backtest started."""
    checked: int
    """Hits looked at (newest first)."""
    dropped: int
    """Checked hits the phrase would drop (and the current allow-list does not already)."""
    already_allowed: int
    """Checked hits the current allow-list already drops (recorded under older rules)."""
    split: int
    """Checked hits of a word split over messages: not judged, counted as kept."""
    complete: bool
    """Every hit of the group was checked."""
    examples: tuple[DroppedHit, ...] = ()

    @property
    def remaining(self) -> int:
        """Checked hits that would still be flagged."""
        return self.checked - self.dropped - self.already_allowed

    def counts(self) -> dict[str, int | bool]:
        """The figures, for the audit trail and the proposal row."""
        return {
            "total": self.total,
            "checked": self.checked,
            "dropped": self.dropped,
            "remaining": self.remaining,
            "already_allowed": self.already_allowed,
            "split": self.split,
            "complete": self.complete,
        }


def _normalised_span(norm: Normalized, start: int, end: int) -> tuple[int, int]:
    """``(a, b)`` with ``norm.span(a, b) == (start, end)`` for a span the matcher reported."""
    return bisect_left(norm.starts, start), bisect_right(norm.ends, end)


def allowed_by(norm: Normalized, start: int, end: int, phrases: tuple[str, ...]) -> bool:
    """Whether the hit ``original[start:end]`` of the normalised ``norm`` lies inside an
    occurrence of one of ``phrases`` (already normalised): the matcher's allow-list test."""
    a, b = _normalised_span(norm, start, end)
    if a >= b:
        return False
    return inside_any(a, b, [o for p in phrases for o in occurrences(norm.text, p)])


def marked_snippet(text: str, start: int, end: int, width: int = _SNIPPET) -> Markup:
    """``text`` around ``[start, end)``, escaped, with the span in ``<mark>``."""
    lo, hi = max(0, start - width), min(len(text), end + width)
    head = ("…" if lo > 0 else "") + text[lo:start]
    tail = text[end:hi] + ("…" if hi < len(text) else "")
    return Markup("{}<mark>{}</mark>{}").format(head, text[start:end], tail)


def run_backtest(
    conn: Connection,
    group: str,
    phrase: str,
    *,
    current_allow: tuple[str, ...] = (),
    limits: BacktestLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Backtest:
    """Check ``group``'s archived hits against ``phrase`` added to ``current_allow``."""
    limits = limits or BacktestLimits()
    new = (normalize(phrase).text,)
    old = tuple(n for n in (normalize(p).text for p in current_allow) if n)
    total = int(conn.execute(select(func.count()).where(_HITS.c.rule_group == group)).scalar_one())
    deadline = clock() + limits.time_budget_s
    checked = dropped = already = split = 0
    examples: list[DroppedHit] = []
    last_id: int | None = None
    exhausted = False
    while checked < limits.max_checked and clock() < deadline:
        stmt = (
            select(
                _HITS.c.id,
                _HITS.c.word,
                _HITS.c.span_start,
                _HITS.c.span_end,
                _HITS.c.via,
                _MESSAGES.c.id.label("message_id"),
                _MESSAGES.c.content,
                _MESSAGES.c.conversation_id,
                _MESSAGES.c.received_at,
            )
            .join(_MESSAGES, _MESSAGES.c.id == _HITS.c.message_id)
            .where(_HITS.c.rule_group == group)
            .order_by(_HITS.c.id.desc())
            .limit(min(limits.page_size, limits.max_checked - checked))
        )
        if last_id is not None:
            stmt = stmt.where(_HITS.c.id < last_id)
        rows = list(conn.execute(stmt))
        if not rows:
            exhausted = True
            break
        norms: dict[int, Normalized] = {}
        for row in rows:
            checked += 1
            last_id = row.id
            verdict = _judge(row, norms, new, old)
            if verdict == "split":
                split += 1
            elif verdict == "already":
                already += 1
            elif verdict == "dropped":
                dropped += 1
                if len(examples) < limits.max_examples:
                    examples.append(_example(row))
        if len(rows) < limits.page_size and checked < limits.max_checked:
            exhausted = True
            break
    return Backtest(
        group=group,
        phrase=phrase,
        total=total,
        checked=checked,
        dropped=dropped,
        already_allowed=already,
        split=split,
        complete=exhausted or checked >= total,
        examples=tuple(examples),
    )


def _judge(
    row: Any, norms: dict[int, Normalized], new: tuple[str, ...], old: tuple[str, ...]
) -> str:
    if row.via == "split":
        return "split"
    content = row.content or ""
    if not 0 <= row.span_start < row.span_end <= len(content):
        return "kept"
    norm = norms.get(row.message_id)
    if norm is None:
        norm = norms[row.message_id] = normalize(content)
    if old and allowed_by(norm, row.span_start, row.span_end, old):
        return "already"
    if allowed_by(norm, row.span_start, row.span_end, new):
        return "dropped"
    return "kept"


def _example(row: Any) -> DroppedHit:
    return DroppedHit(
        hit_id=row.id,
        message_id=row.message_id,
        conversation_id=row.conversation_id or "",
        word=row.word,
        at=row.received_at,
        snippet=marked_snippet(row.content or "", row.span_start, row.span_end),
    )


@dataclass(frozen=True, slots=True)
class CaseHit:
    """An archived hit with its message's text (the allow-list offer and the hit check)."""

    hit_id: int
    message_id: int
    conversation_id: str
    word: str
    group: str
    start: int
    end: int
    via: str | None
    content: str

    @property
    def text(self) -> str:
        """The matched text, as written in the message."""
        return self.content[self.start : self.end]

    @property
    def snippet(self) -> Markup:
        return marked_snippet(self.content, self.start, self.end)

    def dropped_by(self, phrase: str) -> bool:
        """Whether ``phrase`` in the group's allow-list would have dropped this hit."""
        if self.via == "split" or not 0 <= self.start < self.end <= len(self.content):
            return False
        return allowed_by(normalize(self.content), self.start, self.end, (normalize(phrase).text,))


def _case_hit_query() -> Any:
    return select(
        _HITS.c.id,
        _HITS.c.word,
        _HITS.c.rule_group,
        _HITS.c.span_start,
        _HITS.c.span_end,
        _HITS.c.via,
        _MESSAGES.c.id.label("message_id"),
        _MESSAGES.c.content,
        _MESSAGES.c.conversation_id,
    ).join(_MESSAGES, _MESSAGES.c.id == _HITS.c.message_id)


def _case_hit(row: Any) -> CaseHit:
    return CaseHit(
        hit_id=int(row.id),
        message_id=int(row.message_id),
        conversation_id=row.conversation_id or "",
        word=row.word,
        group=row.rule_group,
        start=int(row.span_start),
        end=int(row.span_end),
        via=row.via,
        content=row.content or "",
    )


def load_case_hits(conn: Connection, alert_id: str, *, limit: int = 50) -> list[CaseHit]:
    """The hits of the messages that joined the case (oldest first, at most ``limit``)."""
    stmt = (
        _case_hit_query()
        .join(_LINKS, _LINKS.c.message_id == _MESSAGES.c.id)
        .where(_LINKS.c.alert_id == alert_id)
        .order_by(_HITS.c.id)
        .limit(limit)
    )
    return [_case_hit(row) for row in conn.execute(stmt)]


def load_hit(conn: Connection, hit_id: int) -> CaseHit | None:
    """One archived hit with its message's text."""
    row = conn.execute(_case_hit_query().where(_HITS.c.id == hit_id)).first()
    return None if row is None else _case_hit(row)
