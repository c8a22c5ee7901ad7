"""Perform the recorded kf actions: messages through ``kf/send_msg``, transfers through
``kf/service_state/trans``; archive each delivered bot message in its conversation.

Actions are performed only by the account's current puller (it holds the pull lock), oldest
first, one customer's in order. A message keeps its msgid on every attempt, so a re-send after a
crash (the row still ``pending``) is the same message to WeCom, which does not deliver it twice.
A refusal (errcode) fails the action; a network failure or a busy WeCom leaves it pending for the
next pull, up to :data:`MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from bot.kf.actions import ActionRow, finish_action, pending_actions
from bot.kf.bodies import plain_text
from bot.kf.convert import CHANNEL, conversation_id
from bot.kf.log import kf_log
from bot.web.metrics import BotMetrics
from monitor.archive import Archive, GroupCommitWriter, InboundRecord
from monitor.archive.kf_models import ActionKind, ActionStatus
from wecom_sdk.client import WeComClient
from wecom_sdk.errors import ApiError, TransportError

__all__ = ["MAX_ATTEMPTS", "KfSender", "bot_record"]

#: Attempts before a transiently failing action is given up.
MAX_ATTEMPTS = 5
_TRANSIENT = frozenset({-1, 45009, 45033})


def bot_record(
    open_kfid: str,
    external_userid: str,
    msgid: str,
    *,
    msgtype: str,
    body: dict[str, Any],
    at: float,
) -> InboundRecord:
    """The archive row of a message the bot sent: direction ``bot``, in the customer's chat."""
    sent: dict[str, Any] = {"touser": external_userid, "open_kfid": open_kfid, "msgid": msgid}
    is_transfer = not msgtype  # a transfer is shown in the chat as an event of the bot
    sent.update(body if is_transfer else {"msgtype": msgtype, msgtype: body})
    return InboundRecord(
        dedupe_key=f"kfbot:{msgid}",
        channel=CHANNEL,
        msg_type="event" if is_transfer else msgtype,
        event="service_state_trans" if is_transfer else None,
        from_user=open_kfid,
        to_user=external_userid,
        create_time=int(at),
        content=None if is_transfer else plain_text(msgtype, body),
        raw=json.dumps(sent, ensure_ascii=False),
        conversation_id=conversation_id(open_kfid, external_userid),
        direction="bot",
    )


class KfSender:
    """Sends an account's pending actions (see the module docstring)."""

    def __init__(
        self,
        client: WeComClient,
        writer: GroupCommitWriter,
        archive: Archive,
        *,
        clock: Callable[[], float] = time.time,
        concurrency: int = 8,
        metrics: BotMetrics | None = None,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._writer = writer
        self._archive = archive
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)

    async def flush(self, open_kfid: str) -> int:
        """Perform every pending action of the account; returns how many were delivered."""
        rows = await self._writer.run(lambda conn: pending_actions(conn, open_kfid))
        by_customer: dict[str, list[ActionRow]] = {}
        for row in rows:
            by_customer.setdefault(row.external_userid, []).append(row)
        done = await asyncio.gather(*(self._customer(actions) for actions in by_customer.values()))
        return sum(done)

    async def _customer(self, actions: list[ActionRow]) -> int:
        delivered = 0
        async with self._slots:
            for action in actions:
                status = await self._perform(action)
                if status == ActionStatus.SENT:
                    delivered += 1
                elif status == ActionStatus.PENDING:
                    break  # keep this customer's order: the rest waits for the next pull
        return delivered

    async def _perform(self, action: ActionRow) -> str:
        # (Welcomes never come here: they are recorded after their one attempt, see welcome.py.)
        try:
            await self._call(action)
        except ApiError as exc:
            if exc.errcode in _TRANSIENT:
                return await self._retry_later(action, f"errcode {exc.errcode}")
            kf_log.warning("kf %s %s refused: errcode %s", action.kind, action.msgid, exc.errcode)
            return await self._finish(action, ActionStatus.FAILED, f"errcode {exc.errcode}")
        except TransportError as exc:
            return await self._retry_later(action, type(exc).__name__)
        except ValueError as exc:  # content WeCom would refuse (e.g. over 2048 bytes)
            return await self._finish(action, ActionStatus.FAILED, str(exc))
        now = self._clock()
        await self._archive.store_inbound(
            bot_record(
                action.open_kfid,
                action.external_userid,
                action.msgid,
                msgtype=action.msgtype,
                body=action.body,
                at=now,
            )
        )
        return await self._finish(action, ActionStatus.SENT, "")

    async def _call(self, action: ActionRow) -> None:
        kf = self._client.kf
        if action.kind == ActionKind.TRANSFER:
            await kf.service_state_trans(
                action.open_kfid,
                action.external_userid,
                int(action.body["service_state"]),
                str(action.body.get("servicer_userid", "")) or None,
            )
            return
        await kf.send_msg(
            action.external_userid,
            action.open_kfid,
            action.msgtype,
            action.body,
            msgid=action.msgid,
        )

    async def _retry_later(self, action: ActionRow, why: str) -> str:
        if action.attempts + 1 >= MAX_ATTEMPTS:
            kf_log.warning(
                "kf %s %s given up after %d attempts (%s)",
                action.kind,
                action.msgid,
                MAX_ATTEMPTS,
                why,
            )
            return await self._finish(action, ActionStatus.FAILED, why)
        kf_log.info(
            "kf %s %s not sent yet (%s); retried on the next pull", action.kind, action.msgid, why
        )
        return await self._finish(action, ActionStatus.PENDING, why)

    async def _finish(self, action: ActionRow, status: str, error: str) -> str:
        at = self._clock()
        await self._writer.run(
            lambda conn: finish_action(conn, action.id, status, error=error, at=at)
        )
        if self._metrics is not None:
            self._metrics.kf_actions.labels(action.kind, status).inc()
        return status
