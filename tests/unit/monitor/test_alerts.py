"""Alert policy: aggregation, recipients, escalation, clicks, rate limit (monitor.alerts.policy)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import AlertsConfig
from monitor.alerts.policy import (
    AlertKind,
    AlertPolicy,
    AlertStatus,
    AlertSubject,
    ClickAction,
    ClickRejected,
    ClickResult,
    DecisionAction,
    OpenAlert,
    RateLimit,
    button_key,
    make_alert_id,
    update_recipients,
)
from rules.models import Audience, Hit, SensitiveGroup, Severity, Word

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

GROUPS = {
    "customer_risk": SensitiveGroup(
        "customer_risk", Severity.HIGH, Audience.CUSTOMER, (Word("维权"), Word("投诉"))
    ),
    "press": SensitiveGroup(
        "press", Severity.CRITICAL, Audience.CUSTOMER, (Word("曝光"),), recipients=("pr_lead",)
    ),
    "staff_misconduct": SensitiveGroup(
        "staff_misconduct", Severity.HIGH, Audience.STAFF, (Word("红包"),), recipients=("hr1",)
    ),
    "mild": SensitiveGroup("mild", Severity.LOW, Audience.ANY, (Word("差评"),)),
}
CONFIG = AlertsConfig(
    managers=("mgr1", "mgr2"), aggregate_window_s=600, escalate_after_s=1800, escalate_to=("boss",)
)
POLICY = AlertPolicy(CONFIG, GROUPS)


def hit(word: str, group: str, start: int = 0) -> Hit:
    return Hit(word, start, start + len(word), group, GROUPS[group].severity)


def subject(
    *hits: Hit, at: datetime = T0, author: Audience = Audience.CUSTOMER, conv: str = "c1"
) -> AlertSubject:
    return AlertSubject(conv, "wmCUST", "张三", "zhangsan", author, "我要维权", hits, at)


def test_six_repeats_in_window_make_one_alert_and_silent_joins() -> None:
    alert = None
    actions = []
    for i in range(6):
        decision = POLICY.on_hits(
            subject(hit("维权", "customer_risk", 2), at=T0 + timedelta(minutes=2 * i)), alert
        )
        actions.append(decision.action)
        alert = decision.alert
        if decision.action is DecisionAction.JOIN:
            assert decision.notify == ()
    assert actions == [DecisionAction.NEW] + [DecisionAction.JOIN] * 5
    assert alert is not None
    assert alert.count == 6
    assert alert.first_at == T0 and alert.last_at == T0 + timedelta(minutes=10)


def test_severity_increase_renotifies_exactly_once() -> None:
    d1 = POLICY.on_hits(subject(hit("维权", "customer_risk")), None)
    d2 = POLICY.on_hits(subject(hit("曝光", "press"), at=T0 + timedelta(minutes=1)), d1.alert)
    d3 = POLICY.on_hits(subject(hit("曝光", "press"), at=T0 + timedelta(minutes=2)), d2.alert)
    assert [d.action for d in (d1, d2, d3)] == [
        DecisionAction.NEW,
        DecisionAction.RENOTIFY,
        DecisionAction.JOIN,
    ]
    assert d2.alert.severity is Severity.CRITICAL
    assert d2.alert.words == ("维权", "曝光")
    assert set(d2.notify) == {"mgr1", "mgr2", "pr_lead"}
    assert d3.notify == ()


def test_lower_severity_joins_silently_and_keeps_level() -> None:
    d1 = POLICY.on_hits(subject(hit("维权", "customer_risk")), None)
    d2 = POLICY.on_hits(subject(hit("差评", "mild"), at=T0 + timedelta(seconds=5)), d1.alert)
    assert d2.action is DecisionAction.JOIN
    assert d2.alert.severity is Severity.HIGH


@pytest.mark.parametrize(
    ("gap_s", "action"),
    [(600, DecisionAction.JOIN), (601, DecisionAction.NEW), (3600, DecisionAction.NEW)],
)
def test_window_is_measured_from_last_hit(gap_s: int, action: DecisionAction) -> None:
    first = POLICY.on_hits(subject(hit("维权", "customer_risk")), None).alert
    # A sliding window: the previous hit at +9 min keeps the alert open until +19 min.
    later = replace(first, last_at=T0 + timedelta(minutes=9))
    at = later.last_at + timedelta(seconds=gap_s)
    assert POLICY.on_hits(subject(hit("维权", "customer_risk"), at=at), later).action is action


@pytest.mark.parametrize(
    "change",
    [
        {"status": AlertStatus.RESOLVED},
        {"status": AlertStatus.FALSE_POSITIVE},
        {"conversation_id": "other"},
        {"kind": AlertKind.STAFF_MISCONDUCT},
    ],
)
def test_not_joined_when_closed_or_different(change: dict[str, object]) -> None:
    first = POLICY.on_hits(subject(hit("维权", "customer_risk")), None).alert
    other = replace(first, **change)  # type: ignore[arg-type]
    d = POLICY.on_hits(subject(hit("维权", "customer_risk"), at=T0 + timedelta(seconds=1)), other)
    assert d.action is DecisionAction.NEW
    assert d.alert.alert_id != first.alert_id


def test_claimed_alert_still_aggregates() -> None:
    first = POLICY.on_hits(subject(hit("维权", "customer_risk")), None).alert
    claimed = replace(first, status=AlertStatus.CLAIMED, claimed_by="mgr1")
    d = POLICY.on_hits(subject(hit("投诉", "customer_risk"), at=T0 + timedelta(seconds=1)), claimed)
    assert d.action is DecisionAction.JOIN
    assert d.alert.status is AlertStatus.CLAIMED


@pytest.mark.parametrize(
    ("hits", "author", "kind", "recipients"),
    [
        ([("维权", "customer_risk")], Audience.CUSTOMER, AlertKind.CUSTOMER_RISK, ("mgr1", "mgr2")),
        ([("曝光", "press")], Audience.CUSTOMER, AlertKind.CUSTOMER_RISK, ("pr_lead",)),
        ([("红包", "staff_misconduct")], Audience.STAFF, AlertKind.STAFF_MISCONDUCT, ("hr1",)),
        ([("红包", "staff_misconduct")], Audience.ANY, AlertKind.STAFF_MISCONDUCT, ("hr1",)),
        ([("差评", "mild")], Audience.STAFF, AlertKind.STAFF_MISCONDUCT, ("mgr1", "mgr2")),
        (
            [("维权", "customer_risk"), ("曝光", "press")],
            Audience.CUSTOMER,
            AlertKind.CUSTOMER_RISK,
            ("mgr1", "mgr2", "pr_lead"),
        ),
    ],
)
def test_kind_and_recipients(
    hits: list[tuple[str, str]], author: Audience, kind: AlertKind, recipients: tuple[str, ...]
) -> None:
    d = POLICY.on_hits(subject(*(hit(w, g) for w, g in hits), author=author), None)
    assert d.action is DecisionAction.NEW
    assert d.alert.kind is kind
    assert d.alert.recipients == recipients == d.notify
    assert d.alert.severity == max(GROUPS[g].severity for _, g in hits)


def test_new_group_recipients_are_told_once() -> None:
    first = POLICY.on_hits(subject(hit("投诉", "customer_risk")), None).alert
    first = replace(first, notified_severity=Severity.CRITICAL)
    d = POLICY.on_hits(subject(hit("曝光", "press"), at=T0 + timedelta(seconds=1)), first)
    assert d.action is DecisionAction.RENOTIFY
    assert d.notify == ("pr_lead",)


def test_on_hits_requires_hits() -> None:
    with pytest.raises(ValueError, match="at least one hit"):
        POLICY.on_hits(subject(), None)


def test_alert_id_is_a_valid_task_id() -> None:
    alert_id = make_alert_id("wmCUST/张三 会话", T0)
    assert alert_id.replace("-", "").isalnum() and alert_id.isascii()
    assert len(alert_id) <= 128


def _alert(**changes: object) -> OpenAlert:
    base = POLICY.on_hits(subject(hit("维权", "customer_risk")), None).alert
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("age_s", "changes", "due"),
    [
        (1799, {}, False),
        (1800, {}, True),
        (7200, {}, True),
        (7200, {"escalated": True}, False),
        (7200, {"status": AlertStatus.CLAIMED}, False),
        (7200, {"status": AlertStatus.RESOLVED}, False),
    ],
)
def test_escalation_timing(age_s: int, changes: dict[str, object], due: bool) -> None:
    result = POLICY.due_escalations([_alert(**changes)], T0 + timedelta(seconds=age_s))
    assert bool(result) is due
    if due:
        assert result[0].recipients == ("boss",)
        assert result[0].waited_s == age_s
        assert result[0].alert.escalated


def test_escalation_happens_once() -> None:
    now = T0 + timedelta(hours=1)
    (esc,) = POLICY.due_escalations([_alert()], now)
    assert POLICY.due_escalations([esc.alert], now + timedelta(hours=1)) == []


def test_no_escalation_without_second_level() -> None:
    policy = AlertPolicy(replace(CONFIG, escalate_to=()), GROUPS)
    assert policy.due_escalations([_alert()], T0 + timedelta(days=1)) == []


def test_claim_then_resolve() -> None:
    alert = _alert()
    now = T0 + timedelta(minutes=3)
    claimed = POLICY.on_click(alert, button_key(ClickAction.CLAIM, alert.alert_id), "mgr1", now)
    assert isinstance(claimed, ClickResult)
    assert claimed.alert.status is AlertStatus.CLAIMED and claimed.alert.claimed_by == "mgr1"
    assert claimed.replace_name == "已由 mgr1 认领"
    assert claimed.audit.before is AlertStatus.OPEN and claimed.audit.user == "mgr1"
    done = POLICY.on_click(claimed.alert, f"resolve:{alert.alert_id}", "mgr2", now)
    assert isinstance(done, ClickResult)
    assert done.alert.status is AlertStatus.RESOLVED
    assert (done.alert.claimed_by, done.alert.closed_by, done.alert.closed_at) == (
        "mgr1",
        "mgr2",
        now,
    )
    assert done.replace_name == "已由 mgr2 处理"


def test_false_positive_from_open() -> None:
    alert = _alert()
    r = POLICY.on_click(alert, f"false_positive:{alert.alert_id}", "mgr2", T0)
    assert isinstance(r, ClickResult)
    assert r.alert.status is AlertStatus.FALSE_POSITIVE
    assert r.audit.action is ClickAction.FALSE_POSITIVE
    assert "误报" in r.replace_name


@pytest.mark.parametrize(
    ("key", "changes", "reason"),
    [
        ("claim:other-id", {}, "stale_key"),
        ("approve:{id}", {}, "unknown_key"),
        ("claim", {}, "unknown_key"),
        ("", {}, "unknown_key"),
        ("claim:{id}", {"status": AlertStatus.CLAIMED, "claimed_by": "mgr1"}, "already_claimed"),
        ("resolve:{id}", {"status": AlertStatus.RESOLVED, "closed_by": "x"}, "already_resolved"),
        ("claim:{id}", {"status": AlertStatus.FALSE_POSITIVE}, "already_false_positive"),
    ],
)
def test_rejected_clicks(key: str, changes: dict[str, object], reason: str) -> None:
    alert = _alert(**changes)
    r = POLICY.on_click(alert, key.format(id=alert.alert_id), "mgr2", T0)
    assert isinstance(r, ClickRejected)
    assert r.reason == reason
    if reason == "already_claimed":
        assert r.replace_name == "已由 mgr1 认领"


def test_update_recipients_include_second_level_after_escalation() -> None:
    assert update_recipients(_alert(), ("boss",)) == ("mgr1", "mgr2")
    assert update_recipients(_alert(escalated=True), ("boss", "mgr1")) == ("mgr1", "mgr2", "boss")


def test_rate_limit_per_minute_and_hour() -> None:
    rate = RateLimit(per_minute=3, per_hour=5)
    now = T0 + timedelta(hours=2)
    assert rate.may_send([], now)
    recent = [now - timedelta(seconds=s) for s in (10, 20, 30)]
    assert not rate.may_send(recent, now)
    assert rate.next_slot(recent, now) == now + timedelta(seconds=30)
    spread = [now - timedelta(minutes=m) for m in (5, 10, 20, 30, 59)]
    assert not rate.may_send(spread, now)
    assert rate.next_slot(spread, now) == now + timedelta(minutes=1)
    assert rate.may_send([now - timedelta(hours=1, seconds=1)] * 10, now)


def test_rate_limit_defaults_are_under_wecom_limits() -> None:
    assert RateLimit().per_minute < 30 and RateLimit().per_hour < 1000
    with pytest.raises(ValueError):
        RateLimit(per_minute=0)


@given(st.lists(st.integers(min_value=0, max_value=7200), max_size=40))
def test_next_slot_is_the_first_free_moment(ages: list[int]) -> None:
    rate = RateLimit(per_minute=4, per_hour=12)
    now = T0 + timedelta(hours=3)
    recent = [now - timedelta(seconds=a) for a in ages]
    slot = rate.next_slot(recent, now)
    assert slot >= now
    assert rate.may_send(recent, slot)
    if slot > now:
        assert not rate.may_send(recent, slot - timedelta(microseconds=1))
