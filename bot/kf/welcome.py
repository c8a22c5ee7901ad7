"""The welcome on ``enter_session``: ``kf/send_msg_on_event`` with the event's welcome_code.

The code allows one message and lives **20 s** (doc 95122), so the welcome is sent as soon as the
event is archived, not after the rest of its page, and never for an event already older than
that (a late pull, a re-read after a crash). It is outside the 5-message budget. The attempt is
recorded in ``kf_reply`` (kind ``welcome``) and a delivered welcome is archived as a bot message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.config import KfConfig
from bot.kf.actions import record_action
from bot.kf.bodies import KfBody, action_msgid, menu_body
from bot.kf.log import kf_log
from bot.kf.sender import bot_record
from monitor.archive import Archive, GroupCommitWriter
from monitor.archive.kf_models import ActionKind, ActionStatus
from rules.models import MenuOption
from wecom_sdk.client import WeComClient
from wecom_sdk.errors import WeComError
from wecom_sdk.messages.kf import KfEnterSession

__all__ = ["CODE_LIFE_S", "Welcomer", "welcome_body"]

#: A welcome_code is valid this long after the event (doc 95122).
CODE_LIFE_S = 20.0


def welcome_body(settings: KfConfig) -> KfBody:
    """The welcome: ``[kf].welcome_text``, as a menu's head when ``welcome_menu`` has options.

    A click on option *n* comes back as the customer writing its label (``menu_id`` ``w<n>``),
    so the reply rules answer it like a typed question.
    """
    if not settings.welcome_menu:
        return "text", {"content": settings.welcome_text}
    options = [MenuOption(f"w{n}", label) for n, label in enumerate(settings.welcome_menu, 1)]
    return menu_body(settings.welcome_text, options)


class Welcomer:
    """Sends welcomes for fresh ``enter_session`` events."""

    def __init__(
        self,
        client: WeComClient,
        writer: GroupCommitWriter,
        archive: Archive,
        settings: KfConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._writer = writer
        self._archive = archive
        self._settings = settings
        self._clock = clock

    def wanted(self, event: KfEnterSession) -> bool:
        """Whether ``event`` allows a welcome that can still arrive in time."""
        return bool(event.welcome_code) and self._clock() - event.send_time < CODE_LIFE_S

    async def send(self, event: KfEnterSession, open_kfid: str) -> bool:
        """Send the welcome for ``event``; record and archive it. Never raises for WeCom errors."""
        kfid = event.open_kfid or open_kfid
        user = event.external_userid
        msgid = action_msgid(ActionKind.WELCOME, kfid, event.msgid)
        msgtype, body = welcome_body(self._settings)
        status, error = ActionStatus.SENT, ""
        # Past the code's life WeCom refuses it anyway: do not let retries run beyond it.
        remaining = CODE_LIFE_S - (self._clock() - event.send_time)
        try:
            async with asyncio.timeout(max(remaining, 0.1)):
                await self._client.kf.send_msg_on_event(
                    event.welcome_code, msgtype, body, msgid=msgid
                )
        except (WeComError, ValueError, TimeoutError) as exc:
            status, error = ActionStatus.FAILED, str(exc)[:200] or type(exc).__name__
            kf_log.warning("kf welcome for %s not sent: %s", user, error)
        now = self._clock()
        if status == ActionStatus.SENT:
            record = bot_record(kfid, user, msgid, msgtype=msgtype, body=body, at=now)
            await self._archive.store_inbound(record)
        row = {
            "msgid": msgid,
            "open_kfid": kfid,
            "external_userid": user,
            "in_reply_to": event.msgid,
            "kind": ActionKind.WELCOME,
            "msgtype": msgtype,
            "body": json.dumps(body, ensure_ascii=False),
            "status": status,
            "error": error,
            "attempts": 1,
            "created_at": _utc(now),
            "sent_at": _utc(now) if status == ActionStatus.SENT else None,
        }
        await self._writer.run(lambda conn: record_action(conn, row))
        return status == ActionStatus.SENT


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
