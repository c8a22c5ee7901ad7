"""WeCom's kf message budget, and how the bot spends it (pure).

WeCom: after each customer message the account may send at most **5** messages through
``kf/send_msg`` within **48 h**; the next customer message opens a new window (doc 94677). A 6th
is refused (errcode 95001) and an expired window fails, so the bot never attempts either.

How the bot spends the five (our rule):

=========  =====================================================================
slot 1-3   any reply
slot 4     replies that are not low-value (a low-value rule: priority at or below
           ``[kf].low_value_priority``, e.g. greetings and after-hours notices)
slot 5     only a hand-off message, so a customer who needs a human can always
           be told one is coming
=========  =====================================================================

``kf/send_msg_on_event`` (the welcome) is outside this budget, and so is a session transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["MAX_MESSAGES", "WINDOW_S", "Budget", "Value"]

MAX_MESSAGES = 5
WINDOW_S = 48 * 3600


class Value(IntEnum):
    """How much a message is worth spending a slot on; it may use slots 1..``last_slot``."""

    LOW = 3
    NORMAL = 4
    HANDOFF = 5

    @property
    def last_slot(self) -> int:
        """The highest slot (1-based) a message of this value may take."""
        return int(self)


@dataclass(slots=True)
class Budget:
    """The window opened by the newest customer message, and what is spent of it.

    Attributes:
        window_start: send_time (unix s) of the newest customer message; 0 = none known.
        used: messages sent (or pending) since then.
    """

    window_start: int
    used: int = 0

    def open(self, now: float) -> bool:
        """Whether the 48 h window is still open at ``now``."""
        return self.window_start > 0 and now - self.window_start < WINDOW_S

    def allows(self, value: Value, now: float) -> bool:
        """Whether a message of ``value`` may be sent now (the next slot is ``used + 1``)."""
        return self.open(now) and self.used + 1 <= min(value.last_slot, MAX_MESSAGES)

    def spend(self) -> None:
        """Count one message as sent."""
        self.used += 1
