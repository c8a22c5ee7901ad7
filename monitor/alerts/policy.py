"""Manager alert policy (pure): who is told, when hits aggregate, escalation and button clicks.

Nothing here does I/O or reads the clock; the outbox worker passes ``now`` and the stored state, and
persists what these functions return. The per-recipient rate limit is ``RateLimit.may_send`` here;
alerts it holds back go into a digest rendered by ``monitor.alerts.cards.build_digest``.

Aggregation window: a hit joins the open alert of its conversation while ``at - open.last_at <=
aggregate_window_s`` (a *sliding* window from the last hit). Measuring from ``first_at`` would send a new
message every 10 minutes of one long heated conversation, which is exactly the noise this avoids; an
alert that keeps growing is still escalated on time (escalation counts from ``first_at``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from rules.models import Audience, Hit, SensitiveGroup, Severity

__all__ = [
    "AlertKind",
    "AlertPolicy",
    "AlertSettings",
    "AlertStatus",
    "AlertSubject",
    "AuditEntry",
    "ClickAction",
    "ClickRejected",
    "ClickResult",
    "Decision",
    "DecisionAction",
    "Escalation",
    "OpenAlert",
    "RateLimit",
    "button_key",
    "make_alert_id",
    "state_text",
    "update_recipients",
]


class AlertSettings(Protocol):
    """The ``[alerts]`` settings the policy reads; ``bot.config.AlertsConfig`` fits.

    A protocol, not an import: the design keeps ``monitor`` from importing ``bot``.
    """

    @property
    def managers(self) -> tuple[str, ...]: ...
    @property
    def aggregate_window_s(self) -> int: ...
    @property
    def escalate_after_s(self) -> int: ...
    @property
    def escalate_to(self) -> tuple[str, ...]: ...


class AlertKind(StrEnum):
    """Whose message raised the alert: a customer at risk, or staff misconduct; or no message
    at all: a conversation without hits drawn for review (抽检, ``monitor.review.sampling``)."""

    CUSTOMER_RISK = "customer_risk"
    STAFF_MISCONDUCT = "staff_misconduct"
    SAMPLE = "sample"
    """A sampled case: reviewers only, never a card to managers, never escalated by time."""


class AlertStatus(StrEnum):
    """Life cycle of an alert, shown in the review UI."""

    OPEN = "open"
    CLAIMED = "claimed"
    ESCALATED = "escalated"
    """A reviewer sent it up (升级) with a comment; still open until resolved or dismissed."""
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"

    @property
    def closed(self) -> bool:
        """Resolved or dismissed: new hits start a new alert, clicks no longer change it."""
        return self in (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE)


class ClickAction(StrEnum):
    """Card buttons; the value is the prefix of the button key (``claim:<alert_id>``)."""

    CLAIM = "claim"
    RESOLVE = "resolve"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True, slots=True)
class AlertSubject:
    """One inspected message that produced hits."""

    conversation_id: str
    customer_id: str
    customer_name: str
    staff_userid: str
    author: Audience
    text: str
    hits: tuple[Hit, ...]
    at: datetime
    staff_name: str = ""


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """Stored state of one alert (one conversation, one kind, one aggregation window)."""

    alert_id: str
    conversation_id: str
    kind: AlertKind
    severity: Severity
    words: tuple[str, ...]
    count: int
    first_at: datetime
    last_at: datetime
    latest_text: str
    recipients: tuple[str, ...]
    customer_id: str = ""
    customer_name: str = ""
    staff_userid: str = ""
    staff_name: str = ""
    status: AlertStatus = AlertStatus.OPEN
    claimed_by: str = ""
    #: Who resolved or dismissed it, and when.
    closed_by: str = ""
    closed_at: datetime | None = None
    escalated: bool = False
    #: Highest severity a message was sent for; a join above it notifies once more.
    notified_severity: Severity = Severity.LOW


class DecisionAction(StrEnum):
    """What ``on_hits`` decided."""

    NEW = "new"
    JOIN = "join"
    RENOTIFY = "renotify"


@dataclass(frozen=True, slots=True)
class Decision:
    """The alert to store, and who (if anyone) gets a message now."""

    action: DecisionAction
    alert: OpenAlert
    #: Recipients to message now; empty for a silent join.
    notify: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Escalation:
    """An unclaimed alert to send to the second level; ``alert`` is already marked escalated."""

    alert: OpenAlert
    recipients: tuple[str, ...]
    waited_s: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to which alert (written to the audit log by the caller)."""

    alert_id: str
    user: str
    action: str
    """A :class:`ClickAction` value, or a review-web action (``assign``, ``escalate``, ...)."""
    at: datetime
    before: AlertStatus
    after: AlertStatus
    #: More to keep: the reviewer's comment, the assignee.
    detail: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClickResult:
    """An accepted click: the new state, the button text for every card, and the audit entry."""

    alert: OpenAlert
    replace_name: str
    audit: AuditEntry


@dataclass(frozen=True, slots=True)
class ClickRejected:
    """A click that changes nothing (bad, stale or late key).

    ``replace_name`` is the current state's text when there is one, so the clicker's stale card can
    still be brought up to date.
    """

    reason: str
    replace_name: str = ""


def make_alert_id(conversation_id: str, at: datetime) -> str:
    """Deterministic id, valid as a WeCom ``task_id`` (``[0-9A-Za-z_-@]``, well under 128 B)."""
    digest = hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()[:12]
    return f"a{at:%Y%m%d%H%M%S%f}-{digest}"


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _short(user: str) -> str:
    # Button text is short in WeCom; long userids are cut so the state words stay visible.
    return user if len(user) <= 12 else user[:11] + "…"


def state_text(alert: OpenAlert) -> str:
    """Button replacement text for the alert's state, e.g. ``已由 zhangsan 认领``."""
    if alert.status is AlertStatus.CLAIMED:
        return f"已由 {_short(alert.claimed_by)} 认领"
    if alert.status is AlertStatus.RESOLVED:
        return f"已由 {_short(alert.closed_by)} 处理"
    if alert.status is AlertStatus.FALSE_POSITIVE:
        return f"{_short(alert.closed_by)} 标记为误报"
    if alert.status is AlertStatus.ESCALATED:
        return "已升级处理"
    return "待处理"


class AlertPolicy:
    """Pure alert decisions for one configuration and rule set."""

    def __init__(
        self,
        config: AlertSettings,
        groups: Mapping[str, SensitiveGroup],
    ) -> None:
        self.config = config
        self.groups = groups

    def kind_of(self, subject: AlertSubject) -> AlertKind:
        """Staff-authored messages are misconduct; for unknown authors, the groups' audiences decide."""
        if subject.author is Audience.STAFF:
            return AlertKind.STAFF_MISCONDUCT
        if subject.author is Audience.CUSTOMER:
            return AlertKind.CUSTOMER_RISK
        audiences = {g.audience for h in subject.hits if (g := self.groups.get(h.group))}
        staff_only = audiences == {Audience.STAFF}
        return AlertKind.STAFF_MISCONDUCT if staff_only else AlertKind.CUSTOMER_RISK

    def recipients_for(self, hits: Iterable[Hit]) -> tuple[str, ...]:
        """Each hit's group recipients, or ``[alerts].managers`` for a group that names none."""
        out: list[str] = []
        for hit in hits:
            group = self.groups.get(hit.group)
            out.extend(group.recipients if group and group.recipients else self.config.managers)
        return _unique(out)

    def on_hits(
        self,
        subject: AlertSubject,
        open_alert: OpenAlert | None,
        *,
        alert_id: str | None = None,
    ) -> Decision:
        """Decide new alert / silent join / re-notification for one message with hits.

        ``open_alert`` is the caller's latest alert for ``(subject.conversation_id, kind_of(subject))``;
        one of another conversation or kind, a closed one, or one outside the window is not joined.
        ``alert_id`` overrides ``make_alert_id`` for a new alert.
        """
        if not subject.hits:
            raise ValueError("on_hits needs at least one hit")
        kind = self.kind_of(subject)
        severity = max(h.severity for h in subject.hits)
        words = _unique(h.word for h in subject.hits)
        recipients = self.recipients_for(subject.hits)
        window = timedelta(seconds=self.config.aggregate_window_s)
        if (
            open_alert is None
            or open_alert.conversation_id != subject.conversation_id
            or open_alert.kind is not kind
            or open_alert.status.closed
            or subject.at - open_alert.last_at > window
        ):
            alert = OpenAlert(
                # The kind is part of the id: one message time may open a customer-risk and a
                # staff alert in the same conversation, and ids must never collide.
                alert_id=alert_id
                or make_alert_id(f"{subject.conversation_id}#{kind.value}", subject.at),
                conversation_id=subject.conversation_id,
                kind=kind,
                severity=severity,
                words=words,
                count=1,
                first_at=subject.at,
                last_at=subject.at,
                latest_text=subject.text,
                recipients=recipients,
                customer_id=subject.customer_id,
                customer_name=subject.customer_name,
                staff_userid=subject.staff_userid,
                staff_name=subject.staff_name,
                notified_severity=severity,
            )
            return Decision(DecisionAction.NEW, alert, recipients)
        merged = _unique((*open_alert.recipients, *recipients))
        joined = replace(
            open_alert,
            severity=max(open_alert.severity, severity),
            words=_unique((*open_alert.words, *words)),
            count=open_alert.count + 1,
            last_at=max(open_alert.last_at, subject.at),
            latest_text=subject.text,
            recipients=merged,
            customer_name=open_alert.customer_name or subject.customer_name,
            staff_name=open_alert.staff_name or subject.staff_name,
        )
        if severity > open_alert.notified_severity:
            # Once per level: the next hit at this level compares against the raised mark.
            joined = replace(joined, notified_severity=severity)
            return Decision(DecisionAction.RENOTIFY, joined, merged)
        added = tuple(r for r in merged if r not in open_alert.recipients)
        # A group with its own recipients joined: tell only the newcomers, once.
        action = DecisionAction.RENOTIFY if added else DecisionAction.JOIN
        return Decision(action, joined, added)

    def due_escalations(self, open_alerts: Iterable[OpenAlert], now: datetime) -> list[Escalation]:
        """Open (unclaimed), not yet escalated alerts whose ``first_at`` is ``escalate_after_s`` ago, oldest first.

        Sampled cases (:attr:`AlertKind.SAMPLE`) are never escalated by time: nobody was alerted
        about them, and a reviewer's 升级 is their only way to managers.
        """
        after = self.config.escalate_after_s
        to = _unique(self.config.escalate_to)
        if after <= 0 or not to:
            return []
        due = [
            a
            for a in open_alerts
            if a.status is AlertStatus.OPEN
            and a.kind is not AlertKind.SAMPLE
            and not a.escalated
            and (now - a.first_at).total_seconds() >= after
        ]
        due.sort(key=lambda a: a.first_at)
        return [
            Escalation(replace(a, escalated=True), to, int((now - a.first_at).total_seconds()))
            for a in due
        ]

    def on_click(
        self, alert: OpenAlert, event_key: str, user: str, now: datetime
    ) -> ClickResult | ClickRejected:
        """Apply a card button click (``template_card_event`` EventKey) by ``user``."""
        prefix, sep, key_id = event_key.partition(":")
        try:
            action = ClickAction(prefix)
        except ValueError:
            return ClickRejected("unknown_key")
        if not sep or not user:
            return ClickRejected("unknown_key")
        if key_id != alert.alert_id:
            return ClickRejected("stale_key")
        if alert.status.closed or (
            action is ClickAction.CLAIM and alert.status is AlertStatus.CLAIMED
        ):
            return ClickRejected("already_" + alert.status.value, state_text(alert))
        if action is ClickAction.CLAIM:
            new = replace(alert, status=AlertStatus.CLAIMED, claimed_by=user)
        else:
            status = (
                AlertStatus.RESOLVED
                if action is ClickAction.RESOLVE
                else AlertStatus.FALSE_POSITIVE
            )
            new = replace(
                alert,
                status=status,
                claimed_by=alert.claimed_by or user,
                closed_by=user,
                closed_at=now,
            )
        audit = AuditEntry(alert.alert_id, user, action, now, alert.status, new.status)
        return ClickResult(new, state_text(new), audit)


def button_key(action: ClickAction, alert_id: str) -> str:
    """The card button key that ``on_click`` accepts."""
    return f"{action.value}:{alert_id}"


def update_recipients(alert: OpenAlert, escalate_to: Sequence[str]) -> tuple[str, ...]:
    """Everyone holding a card of this alert (for ``update_template_card`` userids)."""
    return _unique((*alert.recipients, *(escalate_to if alert.escalated else ())))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per-recipient send budget, well under WeCom's silent-drop limits (30/min, 1000/h per member)."""

    per_minute: int = 20
    per_hour: int = 600

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.per_hour < 1:
            raise ValueError("rate limits must be at least 1")

    def may_send(self, recent: Iterable[datetime], now: datetime) -> bool:
        """Whether one more message to a recipient fits, given the times of earlier sends to them."""
        return self.next_slot(recent, now) <= now

    def next_slot(self, recent: Iterable[datetime], now: datetime) -> datetime:
        """The earliest time (``>= now``) one more message fits: when to send the digest."""
        slot = now
        sends = sorted(t for t in recent if now - t < timedelta(hours=1))
        for limit, span in (
            (self.per_minute, timedelta(minutes=1)),
            (self.per_hour, timedelta(hours=1)),
        ):
            inside = [t for t in sends if now - t < span]
            if len(inside) >= limit:
                # The send that must age out of the window before there is room again.
                slot = max(slot, inside[len(inside) - limit] + span)
        return slot
