"""Manager alerts in the bot: the pipeline stage that attaches alert effects, and its settings.

The stage turns an inspected message with hits into an ``AlertIntake`` effect and a card click
(``template_card_event``) into a ``CardClick`` effect; the archive commits both with the message
(``monitor.alerts.intake``). Delivery is the outbox worker's job (``monitor.alerts.outbox``), woken once the
message is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config import Config
from bot.handlers.router import HandlerResult
from bot.inbound.context import Context
from bot.inbound.pipeline import Inbound, NextHandler
from bot.web.metrics import BotMetrics
from monitor.alerts.cards import AlertWording
from monitor.alerts.intake import AlertIntake, CardClick, CardStyle
from monitor.alerts.policy import AlertPolicy, AlertSubject
from monitor.archive.models import StoreEffect
from rules.engine import RuleEngine
from rules.models import Severity
from wecom_sdk.messages.callback import TemplateCardEvent

__all__ = ["AlertPolicies", "AlertStage", "card_style", "review_base"]


def review_base(config: Config) -> str:
    """The review web's public base URL, as linked from cards and digests."""
    review = config.review
    if review.public_url:
        return review.public_url.rstrip("/") + review.path
    host = config.server.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{config.server.port}{review.path}"


def card_style(config: Config) -> CardStyle:
    """Card links, titles and the team-room switch from ``[review]`` and ``[alerts]``."""
    alerts = config.alerts
    default = AlertWording()
    levels = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
    wording = AlertWording(
        customer=dict(zip(levels, alerts.customer_titles, strict=True))
        if alerts.customer_titles
        else default.customer,
        staff=dict(zip(levels, alerts.staff_titles, strict=True))
        if alerts.staff_titles
        else default.staff,
    )
    return CardStyle(
        review_base=review_base(config), wording=wording, robot=bool(alerts.robot_webhook)
    )


class AlertPolicies:
    """The alert policy for the rules in force, rebuilt when a reload swaps them."""

    def __init__(self, config: Config, rules: RuleEngine) -> None:
        self._config = config
        self._rules = rules
        self._version = ""
        self._policy: AlertPolicy | None = None

    def current(self) -> AlertPolicy:
        """The policy over the current rule groups (cached per rules version)."""
        ruleset = self._rules.rules
        if self._policy is None or ruleset.version != self._version:
            groups = {g.name: g for g in ruleset.groups}
            self._policy = AlertPolicy(self._config.alerts, groups)
            self._version = ruleset.version
        return self._policy


@dataclass(slots=True)
class AlertStage:
    """Attach alert effects before the archive stage stores the message."""

    policies: AlertPolicies
    style: CardStyle
    metrics: BotMetrics
    wake: Callable[[], None]

    async def __call__(
        self,
        handler: NextHandler,
        msg: Inbound,
        ctx: Context,
    ) -> HandlerResult:
        effects: list[StoreEffect] = []
        intake: AlertIntake | None = None
        click: CardClick | None = None
        policy = self.policies.current()
        if ctx.hits and ctx.inspection is not None:
            intake = AlertIntake(
                policy,
                _subject(msg, ctx),
                self.style,
                rules_version=ctx.inspection.rules_version,
            )
            effects.append(intake)
        if isinstance(msg, TemplateCardEvent) and msg.event_key:
            click = CardClick(policy, msg.event_key, msg.task_id, msg.response_code, msg.from_user)
            effects.append(click)
        if effects:
            ctx.effects = (*ctx.effects, *effects)
            ctx.after_store.append(lambda: self._stored(intake, click))
        return await handler(msg, ctx)

    def _stored(self, intake: AlertIntake | None, click: CardClick | None) -> None:
        notify = False
        if intake is not None and intake.decisions:
            decision = intake.decisions[-1]  # the committed one (see AlertIntake.decisions)
            self.metrics.alerts_created.labels(decision.action.value).inc()
            notify = bool(decision.notify) or self.style.robot
        if click is not None:
            notify = True
        if notify:
            self.wake()


def _subject(msg: Inbound, ctx: Context) -> AlertSubject:
    facts = ctx.facts
    return AlertSubject(
        conversation_id=facts.conversation_id or f"{facts.channel}:{msg.from_user}",
        customer_id=facts.customer_id or msg.from_user,
        customer_name=facts.customer_name,
        staff_userid=facts.staff_userid,
        staff_name=facts.staff_name,
        author=facts.author,
        text=msg.text or "",
        hits=ctx.hits,
        # Replaced by the message's received_at inside the store transaction.
        at=datetime.now(UTC),
    )
