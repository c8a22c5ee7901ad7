"""Review actions on a case (pure): who may do what, comments, and what the cards then say."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from monitor.alerts.policy import AlertKind, AlertStatus, OpenAlert
from monitor.review.transitions import COMMENT_MAX, ActionRefused, CaseAction, apply_action
from rules.models import Severity

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _alert(**changes: object) -> OpenAlert:
    base = OpenAlert(
        alert_id="a1",
        conversation_id="kf:wk1:wm1",
        kind=AlertKind.CUSTOMER_RISK,
        severity=Severity.HIGH,
        words=("维权",),
        count=1,
        first_at=T0,
        last_at=T0,
        latest_text="我要维权",
        recipients=("mgr1",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _refused(alert: OpenAlert, action: CaseAction, **kw: object) -> ActionRefused:
    with pytest.raises(ActionRefused) as caught:
        apply_action(alert, action, actor=str(kw.pop("actor", "li")), now=T1, **kw)  # type: ignore[arg-type]
    return caught.value


def test_claim_marks_the_case_and_the_cards() -> None:
    t = apply_action(_alert(), CaseAction.CLAIM, actor="li", now=T1)
    assert (t.alert.status, t.alert.claimed_by) == (AlertStatus.CLAIMED, "li")
    assert t.card_text == "已由 li 认领"
    assert (t.audit.action, t.audit.before, t.audit.after) == (
        "claim",
        AlertStatus.OPEN,
        AlertStatus.CLAIMED,
    )


def test_someone_elses_case_cannot_be_worked_on() -> None:
    mine = _alert(status=AlertStatus.CLAIMED, claimed_by="wang")
    for action in (CaseAction.CLAIM, CaseAction.RESOLVE, CaseAction.RELEASE):
        assert _refused(mine, action, comment="x").code == "claimed_by_other"
    refused = _refused(mine, CaseAction.FALSE_POSITIVE, comment="客户只是咨询")
    assert refused.code == "claimed_by_other"
    assert "wang" in refused.message


def test_an_admin_may_reassign_or_release_someone_elses_case() -> None:
    theirs = _alert(status=AlertStatus.CLAIMED, claimed_by="wang")
    t = apply_action(theirs, CaseAction.ASSIGN, actor="boss", now=T1, assignee="li", is_admin=True)
    assert (t.alert.claimed_by, t.audit.detail["assignee"]) == ("li", "li")
    t = apply_action(theirs, CaseAction.RELEASE, actor="boss", now=T1, is_admin=True)
    assert (t.alert.status, t.alert.claimed_by, t.card_text) == (AlertStatus.OPEN, "", None)
    assert _refused(theirs, CaseAction.RESOLVE, actor="boss", is_admin=True).code == (
        "claimed_by_other"
    )


@pytest.mark.parametrize(
    ("action", "status", "text"),
    [
        (CaseAction.RESOLVE, AlertStatus.RESOLVED, "已由 li 处理"),
        (CaseAction.FALSE_POSITIVE, AlertStatus.FALSE_POSITIVE, "li 标记为误报"),
    ],
)
def test_closing_records_who_and_when(action: CaseAction, status: AlertStatus, text: str) -> None:
    t = apply_action(_alert(), action, actor="li", now=T1, comment="已电话回访")
    assert (t.alert.status, t.alert.closed_by, t.alert.closed_at) == (status, "li", T1)
    assert t.alert.claimed_by == "li"
    assert t.card_text == text
    assert t.audit.detail == {"comment": "已电话回访"}


@pytest.mark.parametrize("action", [CaseAction.FALSE_POSITIVE, CaseAction.ESCALATE])
def test_false_positive_and_escalate_need_a_comment(action: CaseAction) -> None:
    assert _refused(_alert(), action, comment="   ").code == "comment_required"
    assert "需要填写说明" in _refused(_alert(), action).message


def test_resolve_without_a_comment_is_fine_and_too_long_is_refused() -> None:
    assert apply_action(_alert(), CaseAction.RESOLVE, actor="li", now=T1).audit.detail == {}
    long = "字" * (COMMENT_MAX + 1)
    assert _refused(_alert(), CaseAction.RESOLVE, comment=long).code == "comment_too_long"


def test_escalate_keeps_the_case_open_and_sends_it_up() -> None:
    t = apply_action(_alert(), CaseAction.ESCALATE, actor="li", now=T1, comment="涉及退款纠纷")
    assert (t.alert.status, t.alert.escalated, t.escalate) == (AlertStatus.ESCALATED, True, True)
    assert not t.alert.status.closed
    assert t.card_text == "已升级处理"


def test_closed_cases_refuse_everything_but_reopen_which_needs_a_comment() -> None:
    closed = _alert(status=AlertStatus.RESOLVED, closed_by="li", closed_at=T0, claimed_by="li")
    for action in (CaseAction.CLAIM, CaseAction.RESOLVE, CaseAction.ASSIGN):
        assert _refused(closed, action, comment="x", assignee="wang").code == "closed"
    assert _refused(closed, CaseAction.REOPEN).code == "comment_required"
    t = apply_action(closed, CaseAction.REOPEN, actor="wang", now=T1, comment="客户再次投诉")
    assert (t.alert.status, t.alert.closed_by, t.alert.closed_at, t.alert.claimed_by) == (
        AlertStatus.OPEN,
        "",
        None,
        "",
    )
    assert _refused(_alert(), CaseAction.REOPEN, comment="x").code == "not_closed"


def test_claiming_twice_and_releasing_nothing_are_refused() -> None:
    mine = _alert(status=AlertStatus.CLAIMED, claimed_by="li")
    assert _refused(mine, CaseAction.CLAIM).code == "already_yours"
    assert _refused(_alert(), CaseAction.RELEASE).code == "not_claimed"
    assert _refused(_alert(), CaseAction.ASSIGN, assignee=" ").code == "assignee_required"
    assert _refused(mine, CaseAction.ASSIGN, assignee="li").code == "already_assigned"


def test_release_of_an_escalated_case_keeps_it_escalated() -> None:
    escalated = _alert(status=AlertStatus.ESCALATED, escalated=True, claimed_by="li")
    t = apply_action(escalated, CaseAction.RELEASE, actor="li", now=T1)
    assert (t.alert.status, t.alert.claimed_by) == (AlertStatus.ESCALATED, "")
    t = apply_action(escalated, CaseAction.RESOLVE, actor="li", now=T1)
    assert t.alert.status is AlertStatus.RESOLVED
