"""What the bot does about one customer's new messages (pure): reply, hand off, or nothing.

For each customer message of a pulled page, in order (see :func:`plan_customer`):

1. the session is with a human (state 2/3/4): nothing (``with_human``);
2. older than ``[kf].reply_max_age_s`` (pulled late, e.g. after downtime): nothing (``too_old``);
3. a hand-off reason (:mod:`bot.kf.handoff`): the hand-off message (if the budget's slot 5 is
   free) and a transfer; later messages of the page then find the session with a human;
4. a reply rule matched: its answer, unless the rule is cooling down for this customer
   (``cooldown``: answered recently, not a failure) or the budget has no slot for it
   (:mod:`bot.kf.budget`; counts as unanswered);
5. otherwise ``unanswered``; the ``[kf].handoff_after_unanswered``-th in a row hands off.

A menu click (``menu_id``) that would be answered by the very menu it came from counts as
unanswered instead of sending the same menu again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.config import KfConfig
from bot.kf.bodies import action_msgid, kf_body
from bot.kf.budget import Budget, Value
from bot.kf.handoff import BOT_STATES, handoff_reason, transfer_target
from monitor.archive.kf_models import ActionKind
from rules.models import Inspection, MenuReply, ReplyRule, TextReplyContent

__all__ = ["Action", "CustomerPlan", "CustomerView", "Question", "plan_customer"]


@dataclass(frozen=True, slots=True)
class Question:
    """One customer message waiting for a decision."""

    dedupe_key: str
    msgid: str
    send_time: int
    text: str
    inspection: Inspection | None
    menu_id: str = ""


@dataclass(frozen=True, slots=True)
class CustomerView:
    """What the decisions need to know about the customer, read in the deciding transaction."""

    open_kfid: str
    external_userid: str
    #: Session state from kf/service_state/get (0..4).
    service_state: int
    unanswered: int
    budget: Budget
    #: Reply rule name -> when this customer was last sent its answer (unix s).
    last_sent: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Action:
    """One outbound action to record as pending and then perform."""

    kind: str
    msgid: str
    in_reply_to: str
    msgtype: str
    body: dict[str, Any]
    rule: str = ""


@dataclass(slots=True)
class CustomerPlan:
    """The decisions (archive key, outcome), the actions, and the customer's new counter."""

    decisions: list[tuple[str, str]]
    actions: list[Action]
    unanswered: int


def _repeats_menu(rule: ReplyRule, menu_id: str) -> bool:
    content = rule.reply
    return (
        bool(menu_id)
        and isinstance(content, MenuReply)
        and any(option.id == menu_id for option in content.options)
    )


def _cooling(rule: ReplyRule, last_sent: Mapping[str, float], now: float) -> bool:
    last = last_sent.get(rule.name)
    return rule.cooldown_s > 0 and last is not None and now - last < rule.cooldown_s


def plan_customer(
    view: CustomerView, questions: list[Question], settings: KfConfig, now: float
) -> CustomerPlan:
    """Decide every question of one customer, in order; see the module docstring."""
    planner = _Planner(view, settings, now)
    for q in questions:
        planner.plan.decisions.append((q.dedupe_key, planner.decide(q)))
    return planner.plan


class _Planner:
    def __init__(self, view: CustomerView, settings: KfConfig, now: float) -> None:
        self.kfid = view.open_kfid
        self.state = view.service_state
        self.budget = replace(view.budget)  # spent locally; the caller's view stays as read
        self.last_sent = dict(view.last_sent)
        self.settings = settings
        self.now = now
        self.plan = CustomerPlan([], [], view.unanswered)

    def decide(self, q: Question) -> str:
        """The outcome for ``q``; appends its actions to the plan."""
        skipped = self._skip(q)
        if skipped:
            return skipped
        rule = q.inspection.reply if q.inspection is not None else None
        if rule is not None and _repeats_menu(rule, q.menu_id):
            rule = None
        reason = handoff_reason(q.text, q.inspection, self.settings)
        if reason is not None:
            return self._hand_off(q, reason)
        if rule is not None:
            if _cooling(rule, self.last_sent, self.now):
                return "cooldown"
            if self._reply(q, rule):
                return "replied"
        self.plan.unanswered += 1
        limit = self.settings.handoff_after_unanswered
        if limit and self.plan.unanswered >= limit:
            return self._hand_off(q, "unanswered")
        return "budget" if rule is not None else "unanswered"

    def _skip(self, q: Question) -> str:
        if self.state not in BOT_STATES:
            return "with_human"
        if self.now - q.send_time > self.settings.reply_max_age_s:
            return "too_old"
        return ""

    def _add(self, kind: str, q: Question, content: Any, rule: str = "") -> None:
        msgtype, body = ("", content) if kind == ActionKind.TRANSFER else kf_body(content)
        msgid = action_msgid(kind, self.kfid, q.msgid)
        self.plan.actions.append(Action(kind, msgid, q.msgid, msgtype, body, rule))

    def _reply(self, q: Question, rule: ReplyRule) -> bool:
        low = rule.priority <= self.settings.low_value_priority
        if not self.budget.allows(Value.LOW if low else Value.NORMAL, self.now):
            return False
        self._add(ActionKind.REPLY, q, rule.reply, rule.name)
        self.budget.spend()
        self.last_sent[rule.name] = self.now
        self.plan.unanswered = 0
        return True

    def _hand_off(self, q: Question, reason: str) -> str:
        chosen = q.inspection.reply if q.inspection is not None else None
        if reason == "rule" and chosen is not None:
            content, name = chosen.reply, chosen.name
        else:
            content, name = TextReplyContent(self.settings.handoff_text), ""
        if self.budget.allows(Value.HANDOFF, self.now):
            self._add(ActionKind.HANDOFF, q, content, name)
            self.budget.spend()
        # The transfer needs no budget: even a customer the bot may no longer write to reaches
        # a human.
        self.state, servicer = transfer_target(self.settings)
        self._add(
            ActionKind.TRANSFER, q, {"service_state": self.state, "servicer_userid": servicer}
        )
        self.plan.unanswered = 0
        return f"handoff:{reason}"
