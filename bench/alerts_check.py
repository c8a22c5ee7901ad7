"""What the alerts benchmark verifies after the replay, from the database and the fake's calls.

- **Per-member limits.** From the simulated time of every ``message/send`` the fake accepted, each
  recipient's most messages in any 60-s and any 3600-s window. WeCom drops what exceeds 30/min or
  1000/h per member without an error, so only counting what reached it shows a breach.
- **Nothing lost.** Every card and escalation row reached each of its recipients: in the card the
  fake received (matched by ``task_id``), or as an alert held for them (``held_alert``) into a
  digest the fake received, whose "以下 N 条" equals the alerts held for it. Every outbox row ended
  sent, or skipped because all its recipients were held; none is pending or failed. Every alert's
  recipients, and ``escalate_to`` once it escalated, got a card or a digest listing it.

A digest the fake accepted but did not deliver was dropped by WeCom's duplicate check
(``enable_duplicate_check``: the same text to the same member within 30 minutes): it still counts
as reaching the member, whose identical earlier digest listed the same alerts, and the report
says how many there were.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, func, select

from monitor.alerts import store
from monitor.alerts.models import AlertMessageLink, HeldAlertRecord, OutboxKind, OutboxStatus
from monitor.archive.models import MessageRecord

__all__ = [
    "WECOM_PER_HOUR",
    "WECOM_PER_MINUTE",
    "Check",
    "RecipientStats",
    "Sent",
    "alert_snapshot",
    "check",
    "max_in_window",
    "parse_sent",
]

WECOM_PER_MINUTE = 30
WECOM_PER_HOUR = 1000

_HELD: Table = HeldAlertRecord.__table__
_MESSAGES: Table = MessageRecord.__table__
_LINKS: Table = AlertMessageLink.__table__
_DIGEST_COUNT = re.compile(r"以下 (\d+) 条已合并")
_ESCALATION_PREFIX = "【升级】"
_CARDS = (OutboxKind.CARD, OutboxKind.ESCALATION)


@dataclass(frozen=True, slots=True)
class Sent:
    """One ``message/send`` the fake accepted, at simulated time ``at``."""

    at: datetime
    kind: str  # OutboxKind.CARD, ESCALATION or DIGEST
    users: tuple[str, ...]
    #: False when WeCom's duplicate check dropped it (an identical one was delivered before).
    delivered: bool = True
    task_id: str | None = None
    #: Digests: how many alerts its text says it lists.
    listed: int = 0


def _key(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def parse_sent(
    attempts: Iterable[tuple[datetime, dict[str, Any]]], delivered: Iterable[dict[str, Any]]
) -> list[Sent]:
    """Accepted ``message/send`` bodies as :class:`Sent`; ``delivered`` is what the fake recorded.

    An accepted body the fake did not record is a duplicate it dropped; the first of identical
    bodies is the delivered one.
    """
    recorded = Counter(_key(b) for b in delivered)
    out = []
    for at, body in attempts:
        key = _key(body)
        kept = recorded[key] > 0
        recorded[key] -= kept
        users = tuple(str(body["touser"]).split("|"))
        if body["msgtype"] == "template_card":
            card = body["template_card"]
            escalation = str(card["main_title"]["title"]).startswith(_ESCALATION_PREFIX)
            kind = OutboxKind.ESCALATION if escalation else OutboxKind.CARD
            out.append(Sent(at, kind, users, kept, task_id=str(card["task_id"])))
        else:
            match = _DIGEST_COUNT.search(str(body["text"]["content"]))
            listed = int(match[1]) if match else -1
            out.append(Sent(at, OutboxKind.DIGEST, users, kept, listed=listed))
    return out


def max_in_window(times: Sequence[datetime], span_s: float) -> int:
    """Most of ``times`` inside any half-open window ``[t, t + span_s)``."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while (t - ordered[start]).total_seconds() >= span_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def alert_snapshot(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """What intake decided for each alert (not what delivery changed: escalation, card count)."""
    a = store.ALERTS.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                a.alert_id,
                a.conversation_id,
                a.kind,
                a.severity,
                a.words,
                a.count,
                a.first_at,
                a.last_at,
                a.recipients,
                a.notified_severity,
            )
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


@dataclass(frozen=True, slots=True)
class RecipientStats:
    """What one member received, and their busiest windows (simulated time)."""

    recipient: str
    cards: int
    escalations: int
    digests: int
    held: int
    max_per_minute: int
    max_per_hour: int


@dataclass(slots=True)
class Check:
    """Counts from the database and the fake, and every broken invariant (``failures``)."""

    messages: int = 0
    linked: int = 0
    alerts: int = 0
    escalated: int = 0
    outbox: dict[str, Counter[str]] = field(default_factory=dict)
    #: Accepted calls and per-member deliveries by kind (card, escalation, digest).
    sent: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[str] = field(default_factory=Counter)
    #: Digests WeCom's duplicate check dropped (identical to one delivered ≤ 30 min before).
    duplicates_dropped: int = 0
    held: int = 0
    #: Simulated seconds from an alert being held for a member to the digest that listed it.
    digest_delay_s: list[float] = field(default_factory=list)
    recipients: list[RecipientStats] = field(default_factory=list)
    covered: int = 0
    pairs: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str, examples: Sequence[object] = ()) -> None:
        """Record a broken invariant, with up to three examples."""
        shown = ", ".join(map(str, examples[:3]))
        self.failures.append(message + (f" (e.g. {shown})" if shown else ""))

    @property
    def digest_delay(self) -> tuple[float, float]:
        """Median and max of ``digest_delay_s`` (0, 0 when nothing was held)."""
        if not self.digest_delay_s:
            return 0.0, 0.0
        return statistics.median(self.digest_delay_s), max(self.digest_delay_s)


def _users(raw: str | None) -> tuple[str, ...]:
    return tuple(json.loads(raw)) if raw else ()


@dataclass(slots=True)
class _State:
    """The final database state the checks read."""

    # Rows of alert (id, recipients, escalated), outbox and held_alert.
    alerts: Sequence[Any]
    rows: Sequence[Any]
    held: Sequence[Any]


def _read(engine: Engine, result: Check) -> _State:
    a = store.ALERTS.c
    with engine.connect() as conn:
        result.messages = int(
            conn.execute(select(func.count()).select_from(_MESSAGES)).scalar_one()
        )
        result.linked = int(conn.execute(select(func.count()).select_from(_LINKS)).scalar_one())
        alerts = conn.execute(select(a.alert_id, a.recipients, a.escalated)).all()
        rows = conn.execute(select(store.OUTBOX).order_by(store.OUTBOX.c.id)).all()
        held = conn.execute(select(_HELD)).all()
    return _State(alerts, rows, held)


def _digests_received(state: _State, sent: Sequence[Sent], result: Check) -> set[int]:
    """Ids of digest rows that provably reached their recipient, matched to the fake's calls.

    A sent digest row and an accepted digest call match on (recipient, simulated time, number
    of alerts listed); the worker's clock stands still during a pass, so the times are equal.
    """
    held_by_digest: dict[int, set[str]] = defaultdict(set)
    for h in state.held:
        held_by_digest[h.digest_id].add(h.alert_id)
    calls: Counter[tuple[str, datetime, int]] = Counter(
        (user, s.at, s.listed) for s in sent if s.kind == OutboxKind.DIGEST for user in s.users
    )
    received: set[int] = set()
    unmatched: list[str] = []
    for row in state.rows:
        if row.kind != OutboxKind.DIGEST or row.status != OutboxStatus.SENT:
            continue
        for user in _users(row.delivered_to):
            key = (user, row.sent_at, len(held_by_digest[row.id]))
            if calls[key] > 0:
                calls[key] -= 1
                received.add(row.id)
            else:
                unmatched.append(f"digest {row.id} -> {user}")
    if unmatched:
        result.fail(f"{len(unmatched)} digests marked sent never reached WeCom", unmatched)
    extra = [f"{u} at {t:%H:%M:%S} ({n} listed)" for (u, t, n), left in calls.items() if left > 0]
    if extra:
        result.fail(f"{len(extra)} digests reached WeCom with no matching outbox row", extra)
    return received


def _card_coverage(
    state: _State, sent: Sequence[Sent], in_digest: set[tuple[str, str]], result: Check
) -> set[tuple[str, str, str]]:
    """``(kind, recipient, alert_id)`` delivered as cards; fails cards neither sent nor held."""
    calls: dict[str, list[Sent]] = defaultdict(list)
    for s in sent:
        if s.task_id is not None:
            calls[s.task_id].append(s)
    twice = [t for t, c in calls.items() if len(c) > 1]
    if twice:
        result.fail(f"{len(twice)} cards reached WeCom more than once", twice)
    held_at = {(h.recipient, h.alert_id, h.held_at) for h in state.held}
    got: set[tuple[str, str, str]] = set()
    lost: list[str] = []
    mismatch: list[int] = []
    for row in state.rows:
        if row.kind not in _CARDS or row.task_id is None:
            continue
        card = calls.get(row.task_id, [])
        delivered = set(card[0].users) if card and card[0].delivered else set()
        if delivered != set(_users(row.delivered_to)):
            mismatch.append(row.id)
        for user in _users(row.recipients):
            if user in delivered:
                got.add((row.kind, user, row.alert_id))
            elif (user, row.alert_id, row.sent_at) not in held_at:
                lost.append(f"{row.kind} {row.id} -> {user}")
            elif (user, row.alert_id) not in in_digest:
                lost.append(f"{row.kind} {row.id} -> {user} (held; its digest never arrived)")
    if mismatch:
        result.fail(f"{len(mismatch)} cards: delivered_to differs from what WeCom got", mismatch)
    if lost:
        result.fail(f"{len(lost)} card recipients got neither the card nor a digest", lost)
    return got


def _recipient_stats(
    sent: Sequence[Sent], state: _State, budget: tuple[int, int], result: Check
) -> None:
    times: dict[str, list[datetime]] = defaultdict(list)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for s in sent:
        for user in s.users:
            times[user].append(s.at)
            kinds[user][s.kind] += 1
    held = Counter(h.recipient for h in state.held)
    per_minute, per_hour = budget
    for user in sorted(times):
        stats = RecipientStats(
            recipient=user,
            cards=kinds[user][OutboxKind.CARD],
            escalations=kinds[user][OutboxKind.ESCALATION],
            digests=kinds[user][OutboxKind.DIGEST],
            held=held[user],
            max_per_minute=max_in_window(times[user], 60),
            max_per_hour=max_in_window(times[user], 3600),
        )
        result.recipients.append(stats)
        busiest = f"{user} got {stats.max_per_minute}/min, {stats.max_per_hour}/h"
        if stats.max_per_minute > WECOM_PER_MINUTE or stats.max_per_hour > WECOM_PER_HOUR:
            result.fail(
                f"{busiest}: over WeCom's {WECOM_PER_MINUTE}/min, {WECOM_PER_HOUR}/h "
                "(WeCom drops the excess silently)"
            )
        elif stats.max_per_minute > per_minute or stats.max_per_hour > per_hour:
            result.fail(f"{busiest}: over the configured {per_minute}/min, {per_hour}/h")


def check(
    engine: Engine,
    sent: Sequence[Sent],
    *,
    escalate_to: Sequence[str],
    budget: tuple[int, int],
) -> Check:
    """Read the final state and verify it against what the fake received."""
    result = Check()
    state = _read(engine, result)
    result.alerts = len(state.alerts)
    result.escalated = sum(1 for a in state.alerts if a.escalated)
    result.held = len(state.held)
    outbox: dict[str, Counter[str]] = defaultdict(Counter)
    for row in state.rows:
        outbox[row.kind][row.status] += 1
    result.outbox = dict(outbox)
    unfinished = [
        r.id for r in state.rows if r.status in (OutboxStatus.PENDING, OutboxStatus.FAILED)
    ]
    if unfinished:
        result.fail(f"{len(unfinished)} outbox rows still pending or failed", unfinished)
    for s in sent:
        result.sent[s.kind] += 1
        result.deliveries[s.kind] += len(s.users)
        result.duplicates_dropped += not s.delivered

    received = _digests_received(state, sent, result)
    digests = {r.id: r for r in state.rows if r.id in received}
    in_digest: set[tuple[str, str]] = set()
    for h in state.held:
        digest = digests.get(h.digest_id)
        if digest is not None and h.recipient in _users(digest.delivered_to):
            in_digest.add((h.recipient, h.alert_id))
            result.digest_delay_s.append((digest.sent_at - h.held_at).total_seconds())
    got = _card_coverage(state, sent, in_digest, result)

    uncovered: list[str] = []
    for alert in state.alerts:
        wanted = [(OutboxKind.CARD, u) for u in _users(alert.recipients)]
        if alert.escalated:
            wanted += [(OutboxKind.ESCALATION, u) for u in escalate_to]
        for kind, user in wanted:
            result.pairs += 1
            if (kind, user, alert.alert_id) in got or (user, alert.alert_id) in in_digest:
                result.covered += 1
            else:
                uncovered.append(f"{alert.alert_id} -> {user}")
    if uncovered:
        result.fail(f"{len(uncovered)} (alert, recipient) pairs never reached", uncovered)
    _recipient_stats(sent, state, budget, result)
    return result
