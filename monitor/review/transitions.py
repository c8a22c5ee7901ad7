"""What a reviewer's action does to a case (an alert): pure, no I/O, no clock.

A case is one alert (``monitor.alerts``): one conversation, one kind, one aggregation window. The
review web and the WeCom card buttons change the same row, so a case has one state on both
surfaces. Two reviewers never work a case unknowingly: a case claimed by someone else can only be
resolved, dismissed or escalated by them, or after it was released or reassigned to you.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from monitor.alerts.policy import AlertStatus, AuditEntry, OpenAlert, state_text

__all__ = [
    "COMMENT_MAX",
    "ActionRefused",
    "CaseAction",
    "Transition",
    "apply_action",
]

COMMENT_MAX = 2000
"""Longest comment or note kept (characters); longer ones are refused, not cut."""


class CaseAction(StrEnum):
    """Review-web actions; the value is the last part of the action's URL."""

    CLAIM = "claim"
    ASSIGN = "assign"
    RELEASE = "release"
    RESOLVE = "resolve"
    FALSE_POSITIVE = "false_positive"
    ESCALATE = "escalate"
    REOPEN = "reopen"

    @property
    def needs_comment(self) -> bool:
        """误报, 升级 and reopening must say why."""
        return self in (CaseAction.FALSE_POSITIVE, CaseAction.ESCALATE, CaseAction.REOPEN)

    @property
    def label(self) -> str:
        """The button text (the contract fixes 已处理, 误报 and 升级)."""
        return _LABELS[self]


_LABELS = {
    CaseAction.CLAIM: "认领",
    CaseAction.ASSIGN: "改派",
    CaseAction.RELEASE: "释放",
    CaseAction.RESOLVE: "已处理",
    CaseAction.FALSE_POSITIVE: "误报",
    CaseAction.ESCALATE: "升级",
    CaseAction.REOPEN: "重新打开",
}


class ActionRefused(Exception):
    """The action does not apply to the case as it is now; ``message`` is shown to the reviewer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Transition:
    """An accepted action: the case's new state, its audit entry, and what the cards should say."""

    alert: OpenAlert
    audit: AuditEntry
    card_text: str | None
    """Text replacing the buttons of every card of the alert; None leaves the cards alone."""
    escalate: bool = False
    """Send the escalation card to the escalation recipients."""


def apply_action(
    alert: OpenAlert,
    action: CaseAction,
    *,
    actor: str,
    now: datetime,
    comment: str = "",
    assignee: str = "",
    is_admin: bool = False,
) -> Transition:
    """Apply ``action`` by reviewer ``actor``; raises :class:`ActionRefused` when it cannot.

    A case claimed by someone else can be reassigned or released only by an admin; nobody else
    acts on it until then.
    """
    comment = comment.strip()
    _check(alert, action, actor=actor, comment=comment, is_admin=is_admin)
    done = _Done(alert, action, actor, now, comment)
    holder = alert.claimed_by
    if action is CaseAction.REOPEN:
        new = replace(alert, status=AlertStatus.OPEN, claimed_by="", closed_by="", closed_at=None)
        return done(new, card_text="已重新打开，请到审核后台处理")
    if action is CaseAction.ASSIGN:
        assignee = assignee.strip()
        if not assignee:
            raise ActionRefused("assignee_required", "请选择改派给谁")
        if assignee == holder:
            raise ActionRefused("already_assigned", f"该案件已由 {holder} 认领")
        new = _claimed(alert, assignee)
        return done(new, card_text=state_text(new), assignee=assignee)
    if action is CaseAction.CLAIM:
        if holder == actor:
            raise ActionRefused("already_yours", "您已认领该案件")
        new = _claimed(alert, actor)
        return done(new, card_text=state_text(new))
    if action is CaseAction.RELEASE:
        if not holder:
            raise ActionRefused("not_claimed", "该案件尚未被认领")
        status = AlertStatus.OPEN if alert.status is AlertStatus.CLAIMED else alert.status
        return done(replace(alert, status=status, claimed_by=""), card_text=None)
    if action is CaseAction.ESCALATE:
        new = replace(alert, status=AlertStatus.ESCALATED, escalated=True)
        return done(new, card_text=state_text(new), escalate=True)
    status = AlertStatus.RESOLVED if action is CaseAction.RESOLVE else AlertStatus.FALSE_POSITIVE
    new = replace(alert, status=status, claimed_by=holder or actor, closed_by=actor, closed_at=now)
    return done(new, card_text=state_text(new))


def _check(
    alert: OpenAlert, action: CaseAction, *, actor: str, comment: str, is_admin: bool
) -> None:
    """Refuse what never applies: a missing comment, acting on a closed case, someone's case."""
    if action.needs_comment and not comment:
        raise ActionRefused("comment_required", f"「{action.label}」需要填写说明")
    if len(comment) > COMMENT_MAX:
        raise ActionRefused("comment_too_long", f"说明最多 {COMMENT_MAX} 字")
    closed = alert.status.closed
    if action is CaseAction.REOPEN:
        if not closed:
            raise ActionRefused("not_closed", "案件尚未结案，无需重新打开")
        return
    if closed:
        raise ActionRefused("closed", f"案件已结案（{state_text(alert)}），如需处理请先重新打开")
    holder = alert.claimed_by
    takeover = is_admin and action in (CaseAction.ASSIGN, CaseAction.RELEASE)
    if holder and holder != actor and not takeover:
        raise ActionRefused(
            "claimed_by_other", f"该案件已由 {holder} 认领；请其释放或由管理员改派后再操作"
        )


def _claimed(alert: OpenAlert, user: str) -> OpenAlert:
    status = AlertStatus.CLAIMED if alert.status is AlertStatus.OPEN else alert.status
    return replace(alert, status=status, claimed_by=user)


@dataclass(frozen=True, slots=True)
class _Done:
    """Builds the :class:`Transition` (with its audit entry) of one accepted action."""

    before: OpenAlert
    action: CaseAction
    actor: str
    now: datetime
    comment: str

    def __call__(
        self,
        after: OpenAlert,
        *,
        card_text: str | None,
        escalate: bool = False,
        assignee: str = "",
    ) -> Transition:
        detail = {"comment": self.comment} if self.comment else {}
        if assignee:
            detail["assignee"] = assignee
        audit = AuditEntry(
            self.before.alert_id,
            self.actor,
            self.action.value,
            self.now,
            self.before.status,
            after.status,
            detail,
        )
        return Transition(after, audit, card_text, escalate)
