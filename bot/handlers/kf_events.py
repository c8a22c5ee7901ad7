"""``kf_msg_or_event`` callbacks: hand the pull notice to the kf puller and answer at once.

The callback carries only a pull token (10 min) and the kf account; the messages are pulled by
:class:`bot.kf.puller.KfPuller` in the background, after this callback has been answered (the
event itself is archived like any other before this handler runs). The puller is created by a
resource after the router, so this feature's router holds a :class:`KfNotices` slot that the kf
resource binds (:func:`bind_kf_notices`).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.handlers.router import Router
from bot.inbound.context import Context
from wecom_sdk.messages.callback import KfMsgOrEvent, Message

__all__ = ["KfEventsRouter", "KfNotices", "bind_kf_notices", "router"]

Notify = Callable[[str, str], None]


class KfNotices:
    """Where pull notices go: the puller's ``notify(open_kfid, token)`` once bound."""

    def __init__(self) -> None:
        self._notify: Notify | None = None

    def bind(self, notify: Notify | None) -> None:
        """Deliver notices to ``notify`` from now on (None: drop them)."""
        self._notify = notify

    def __call__(self, open_kfid: str, token: str) -> bool:
        """Pass one notice on; False when no puller is bound (kf disabled)."""
        if self._notify is None:
            return False
        self._notify(open_kfid, token)
        return True


class KfEventsRouter(Router):
    """The kf-events feature's router; ``notices`` is bound to the puller by the kf resource."""

    def __init__(self) -> None:
        super().__init__("kf_events")
        self.notices = KfNotices()

        @self.event("kf_msg_or_event")
        async def pull_notice(msg: Message, ctx: Context) -> None:
            if not isinstance(msg, KfMsgOrEvent):
                return
            if not self.notices(msg.open_kf_id, msg.token):
                ctx.log.info("kf_msg_or_event for %s archived; kf pulling is off", msg.open_kf_id)
            return  # an empty 200 at once; the pull runs in the background


def router() -> KfEventsRouter:
    """The kf-events feature's router."""
    return KfEventsRouter()


def bind_kf_notices(root: Router, notify: Notify | None) -> bool:
    """Bind every kf-events router under ``root`` to ``notify``; whether one was found."""
    found = False
    for child in root.walk():
        if isinstance(child, KfEventsRouter):
            child.notices.bind(notify)
            found = True
    return found
