"""When a customer is handed over to a human, and where to (pure).

Reasons, first that applies:

1. ``rule``: the reply rule that matched has ``handoff = true`` (its answer is the hand-off
   message);
2. ``keyword``: the text contains one of ``[kf].handoff_keywords`` (人工 ...);
3. ``risk``: a hit of at least ``[kf].handoff_on_severity`` (a complaint, a legal threat);
4. ``unanswered``: ``[kf].handoff_after_unanswered`` customer messages in a row the bot could
   not answer (see :mod:`bot.kf.plan`).

The action (:mod:`bot.kf.sender`): the hand-off message through ``kf/send_msg`` (budget slot 5
is kept for it), then ``kf/service_state/trans`` to the pool (state 2) or, with
``[kf].handoff_servicer``, to that servicer (state 3). Only a session still with the bot
(state 0 or 1) is handed over.
"""

from __future__ import annotations

from bot.config import KfConfig
from rules.models import Inspection, Severity

__all__ = ["BOT_STATES", "handoff_reason", "transfer_target"]

#: Session states in which the API (the bot) may answer: 0 new, 1 with the smart assistant.
BOT_STATES = frozenset({0, 1})


def handoff_reason(text: str, inspection: Inspection | None, settings: KfConfig) -> str | None:
    """Why this customer message asks for a human at once, or None (the unanswered count aside)."""
    if inspection is not None and inspection.reply is not None and inspection.reply.handoff:
        return "rule"
    folded = text.casefold()
    if any(word.casefold() in folded for word in settings.handoff_keywords):
        return "keyword"
    if settings.handoff_on_severity and inspection is not None and inspection.hits:
        threshold = Severity.parse(settings.handoff_on_severity)
        if max(hit.severity for hit in inspection.hits) >= threshold:
            return "risk"
    return None


def transfer_target(settings: KfConfig) -> tuple[int, str]:
    """(service_state, servicer_userid) a hand-off moves the session to."""
    if settings.handoff_servicer:
        return 3, settings.handoff_servicer
    return 2, ""
