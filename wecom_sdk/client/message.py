"""App messages: ``message/send`` and ``message/update_template_card``.

https://developer.work.weixin.qq.com/document/path/90236 (send),
https://developer.work.weixin.qq.com/document/path/94888 (update_template_card).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .caller import Caller
from .models import SendResult, check_bytes

__all__ = ["MessageApi"]

_INTERACTIVE_CARDS = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
_CARD_TYPES = _INTERACTIVE_CARDS | {"text_notice", "news_notice"}
_MAX_DUP_INTERVAL = 4 * 3600


def _recipients(touser: str | Sequence[str]) -> str:
    joined = touser if isinstance(touser, str) else "|".join(touser)
    if not joined:
        raise ValueError("touser must name at least one userid (or '@all')")
    return joined


class MessageApi:
    """``client.message``: messages from the app to members (alerts to managers)."""

    def __init__(self, client: Caller) -> None:
        self._client = client

    async def _send(
        self,
        touser: str | Sequence[str],
        msgtype: str,
        payload: Mapping[str, Any],
        *,
        enable_duplicate_check: bool,
        duplicate_check_interval: int,
        safe: int | None = None,
    ) -> SendResult:
        if self._client.agent_id is None:
            raise ValueError("WeComClient(agent_id=...) is required for message/send")
        if not 0 < duplicate_check_interval <= _MAX_DUP_INTERVAL:
            raise ValueError(f"duplicate_check_interval must be 1..{_MAX_DUP_INTERVAL} s")
        body: dict[str, Any] = {
            "touser": _recipients(touser),
            "msgtype": msgtype,
            "agentid": self._client.agent_id,
            msgtype: dict(payload),
        }
        if safe is not None:
            body["safe"] = safe
        if enable_duplicate_check:
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = duplicate_check_interval
        return SendResult.from_response(await self._client.call("message/send", body))

    async def send_text(
        self,
        touser: str | Sequence[str],
        content: str,
        *,
        safe: int = 0,
        enable_duplicate_check: bool = False,
        duplicate_check_interval: int = 1800,
    ) -> SendResult:
        """Send a text message (≤ 2048 bytes). https://developer.work.weixin.qq.com/document/path/90236"""
        check_bytes(content, 2048, "text content")
        return await self._send(
            touser,
            "text",
            {"content": content},
            safe=safe,
            enable_duplicate_check=enable_duplicate_check,
            duplicate_check_interval=duplicate_check_interval,
        )

    async def send_markdown(
        self,
        touser: str | Sequence[str],
        content: str,
        *,
        enable_duplicate_check: bool = False,
        duplicate_check_interval: int = 1800,
    ) -> SendResult:
        """Send markdown (≤ 2048 bytes). https://developer.work.weixin.qq.com/document/path/90236"""
        check_bytes(content, 2048, "markdown content")
        return await self._send(
            touser,
            "markdown",
            {"content": content},
            enable_duplicate_check=enable_duplicate_check,
            duplicate_check_interval=duplicate_check_interval,
        )

    async def send_template_card(
        self,
        touser: str | Sequence[str],
        card: Mapping[str, Any],
        *,
        enable_duplicate_check: bool = True,
        duplicate_check_interval: int = 1800,
    ) -> SendResult:
        """Send a template card; ``response_code`` in the result feeds :meth:`update_template_card`.

        Duplicate check is on by default so an alert retried after a lost answer arrives once.
        https://developer.work.weixin.qq.com/document/path/90236
        """
        card_type = card.get("card_type")
        if card_type not in _CARD_TYPES:
            raise ValueError(f"card.card_type must be one of {sorted(_CARD_TYPES)}")
        if card_type in _INTERACTIVE_CARDS and not card.get("task_id"):
            raise ValueError(f"card.task_id is required for {card_type} cards")
        if len(card.get("button_list", ())) > 6:
            raise ValueError("card.button_list holds at most 6 buttons")
        return await self._send(
            touser,
            "template_card",
            card,
            enable_duplicate_check=enable_duplicate_check,
            duplicate_check_interval=duplicate_check_interval,
        )

    async def update_template_card(
        self,
        userids: Sequence[str],
        response_code: str,
        *,
        replace_name: str | None = None,
        card: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Replace the clicked button's text (``replace_name``) or the whole card, for ``userids``.

        ``response_code`` is single use and valid 72 h.
        https://developer.work.weixin.qq.com/document/path/94888
        """
        if (replace_name is None) == (card is None):
            raise ValueError("give exactly one of replace_name or card")
        if not response_code:
            raise ValueError("response_code is required")
        if self._client.agent_id is None:
            raise ValueError("WeComClient(agent_id=...) is required for update_template_card")
        body: dict[str, Any] = {
            "userids": list(userids),
            "agentid": self._client.agent_id,
            "response_code": response_code,
        }
        if card is not None:
            body["template_card"] = dict(card)
        else:
            body["button"] = {"replace_name": replace_name}
        return await self._client.call("message/update_template_card", body)
