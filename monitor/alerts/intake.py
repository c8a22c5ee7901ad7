"""Store effects for alerts: decide and queue in the archived message's own transaction.

``AlertIntake`` runs the aggregation policy for a message with hits; ``CardClick`` applies a card
button click (``template_card_event``). Both are ``monitor.archive.models.StoreEffect``s: they run on the
group-commit writer thread, inside the transaction that archives the message, and only when the
message is newly stored. So an acknowledged message always has its alert and outbox rows, and a
WeCom retry never raises a second alert or applies a click twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import Connection, update

from monitor.alerts import store
from monitor.alerts.cards import (
    AlertWording,
    build_alert_card,
    build_escalation_card,
    build_robot_markdown,
    make_task_id,
)
from monitor.alerts.models import OutboxKind
from monitor.alerts.policy import (
    AlertPolicy,
    AlertSubject,
    ClickRejected,
    Decision,
    DecisionAction,
    OpenAlert,
    update_recipients,
)

__all__ = [
    "AlertIntake",
    "CardClick",
    "CardStyle",
    "ClickOutcome",
    "queue_card",
    "queue_card_updates",
]

log = logging.getLogger("sentinel.alerts")


@dataclass(frozen=True, slots=True)
class CardStyle:
    """How cards look and link: the review web's public address, wording, team-room robot."""

    review_base: str = "http://127.0.0.1:8080/review"
    wording: AlertWording = field(default_factory=AlertWording)
    #: Post new alerts to the ``[alerts].robot_webhook`` team room as well.
    robot: bool = False

    def review_url(self, conversation_id: str) -> str:
        """Link to the conversation in the review web (the card's click-through)."""
        return f"{self.review_base.rstrip('/')}/conversations/{quote(conversation_id, safe='')}"


def queue_card(
    conn: Connection,
    *,
    row_cards_sent: int,
    alert: OpenAlert,
    subject: AlertSubject,
    recipients: tuple[str, ...],
    style: CardStyle,
    now: datetime,
    escalation_waited_s: int | None = None,
    escalation_reason: str = "",
) -> int:
    """Render one card for ``recipients`` and queue it; bumps the alert's card counter.

    With ``escalation_waited_s`` it is an escalation card; ``escalation_reason`` then says who
    escalated it and why (a reviewer's 升级) instead of how long it waited.
    """
    task_id = make_task_id(alert.alert_id, row_cards_sent + 1)
    url = style.review_url(alert.conversation_id)
    if escalation_waited_s is None:
        card = build_alert_card(
            alert, subject, review_url=url, task_id=task_id, wording=style.wording
        )
        kind = OutboxKind.CARD
    else:
        card = build_escalation_card(
            alert,
            subject,
            waited_s=escalation_waited_s,
            review_url=url,
            task_id=task_id,
            wording=style.wording,
            reason=escalation_reason,
        )
        kind = OutboxKind.ESCALATION
    store.set_cards_sent(conn, alert.alert_id, row_cards_sent + 1)
    return store.enqueue(
        conn,
        kind=kind,
        alert_id=alert.alert_id,
        recipients=recipients,
        payload=card,
        now=now,
        task_id=task_id,
    )


@dataclass(frozen=True, slots=True)
class AlertIntake:
    """Open, join or re-notify the conversation's alert for one message with hits."""

    policy: AlertPolicy
    subject: AlertSubject
    style: CardStyle
    rules_version: str = ""
    #: Decisions made by ``apply``; the last one is the committed one (a failed group-commit
    #: batch is re-run message by message, so ``apply`` may have run before in a rolled-back
    #: transaction).
    decisions: list[Decision] = field(default_factory=list, compare=False)

    @property
    def order_key(self) -> str:
        """Lock order: by conversation."""
        return self.subject.conversation_id

    def apply(self, conn: Connection, message_id: int, now: datetime) -> None:
        """Decide, store the alert, link the message and queue what must be sent."""
        subject = replace(self.subject, at=now)
        kind = self.policy.kind_of(subject)
        store.lock_conversation(conn, subject.conversation_id)
        row = store.latest_alert_row(conn, subject.conversation_id, kind)
        previous = store.alert_from_row(row) if row is not None else None
        decision = self.policy.on_hits(subject, previous)
        alert = decision.alert
        if decision.action is DecisionAction.NEW:
            store.insert_alert(
                conn,
                alert,
                latest_message_id=message_id,
                cards_sent=0,
                rules_version=self.rules_version,
            )
            cards_sent = 0
        else:
            cards_sent = row.cards_sent if row is not None else 0
            store.update_joined(conn, alert, latest_message_id=message_id)
        store.link_message(conn, alert.alert_id, message_id)
        if decision.action is DecisionAction.NEW and not alert.recipients:
            log.warning(
                "alert %s has no recipients: set [alerts].managers or the group's recipients",
                alert.alert_id,
            )
        if decision.notify:
            queue_card(
                conn,
                row_cards_sent=cards_sent,
                alert=alert,
                subject=subject,
                recipients=decision.notify,
                style=self.style,
                now=now,
            )
        if self.style.robot and decision.action is not DecisionAction.JOIN:
            markdown = build_robot_markdown(
                alert,
                subject,
                self.style.review_url(alert.conversation_id),
                wording=self.style.wording,
            )
            store.enqueue(
                conn,
                kind=OutboxKind.ROBOT,
                alert_id=alert.alert_id,
                recipients=(),
                payload={"markdown": markdown},
                now=now,
            )
        self.decisions.append(decision)


@dataclass(frozen=True, slots=True)
class ClickOutcome:
    """What a click did (for logs and tests): accepted with the new state text, or why not."""

    accepted: bool
    replace_name: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CardClick:
    """A manager pressed 认领 / 已处理 / 误报 on an alert card (``template_card_event``)."""

    policy: AlertPolicy
    event_key: str
    task_id: str
    response_code: str
    user: str
    outcomes: list[ClickOutcome] = field(default_factory=list, compare=False)

    @property
    def alert_id(self) -> str:
        """The alert the button belongs to (its key is ``<action>:<alert_id>``)."""
        return self.event_key.partition(":")[2]

    @property
    def order_key(self) -> str:
        """Lock order: clicks after message intake of the same batch is fine; by alert id."""
        return "~" + self.alert_id

    def apply(self, conn: Connection, message_id: int, now: datetime) -> None:
        """Apply the click, audit it, and queue card updates for everyone holding a card."""
        row = store.load_alert(conn, self.alert_id, for_update=True) if self.alert_id else None
        if row is None:
            log.warning("card click for unknown alert (key prefix %r)", self.event_key[:16])
            self.outcomes.append(ClickOutcome(False, "", "unknown_alert"))
            return
        alert = store.alert_from_row(row)
        result = self.policy.on_click(alert, self.event_key, self.user, now)
        if isinstance(result, ClickRejected):
            # Still bring the clicker's stale card up to date when we know the current state.
            if result.replace_name and self.response_code:
                _queue_update(
                    conn,
                    self.alert_id or None,
                    userids=(self.user,),
                    code=self.response_code,
                    replace_name=result.replace_name,
                    now=now,
                )
            self.outcomes.append(ClickOutcome(False, result.replace_name, result.reason))
            return
        store.update_alert(conn, result.alert)
        store.record_audit(conn, result.audit, source="card")
        store.link_message(conn, alert.alert_id, message_id)
        clicked = (self.task_id, self.response_code, self.user) if self.response_code else None
        queue_card_updates(conn, result.alert, result.replace_name, now, clicked=clicked)
        self.outcomes.append(ClickOutcome(True, result.replace_name))


def queue_card_updates(
    conn: Connection,
    alert: OpenAlert,
    replace_name: str,
    now: datetime,
    *,
    clicked: tuple[str, str, str] | None = None,
) -> int:
    """Queue ``update_template_card`` for every card of ``alert``: its buttons become ``replace_name``.

    One update per sent card: ``clicked`` (task id, the click's fresh response code, the clicker)
    covers the clicked card, each other card uses its own send-time code (single use). Cards whose
    code is spent keep their old text until someone clicks them (the click brings a new code).
    Returns how many updates were queued.
    """
    queued = 0
    clicked_found = False
    for card in store.sent_cards(conn, alert.alert_id):
        if clicked is not None and card.task_id == clicked[0]:
            clicked_found = True
            code = clicked[1]
        elif card.response_code:
            code = card.response_code
            conn.execute(
                update(store.OUTBOX)
                .where(store.OUTBOX.c.id == card.outbox_id)
                .values(response_code_used=True)
            )
        else:
            continue
        users = card.delivered_to or update_recipients(alert, ())
        _queue_update(
            conn, alert.alert_id, userids=users, code=code, replace_name=replace_name, now=now
        )
        queued += 1
    if clicked is not None and not clicked_found:
        _queue_update(
            conn,
            alert.alert_id,
            userids=(clicked[2],),
            code=clicked[1],
            replace_name=replace_name,
            now=now,
        )
        queued += 1
    return queued


def _queue_update(
    conn: Connection,
    alert_id: str | None,
    *,
    userids: tuple[str, ...],
    code: str,
    replace_name: str,
    now: datetime,
) -> None:
    store.enqueue(
        conn,
        kind=OutboxKind.CARD_UPDATE,
        alert_id=alert_id,
        recipients=userids,
        payload={"userids": list(userids), "response_code": code, "replace_name": replace_name},
        now=now,
    )
