"""The parts of composite kf items: msgmenu options and merged chat records (聊天记录).

Plain frozen values, read by the readers here from an item's body; the items holding them
(:class:`~wecom_sdk.messages.kf.KfMsgMenu`, :class:`~wecom_sdk.messages.kf.KfMergedMsg`) live
in :mod:`wecom_sdk.messages.kf`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .kf_fields import entries, path, read_int, read_object, read_str

__all__ = ["KfMenuItem", "KfMergedItem", "read_menu_items", "read_merged_items"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KfMenuItem:
    """One msgmenu option: ``{"type": "click", "click": {"id": ..., "content": ...}}``.

    Attributes:
        type: click, view, miniprogram or text (others are kept with empty fields).
        content: The visible label (all types).
        id: click: the menu_id echoed back in the customer's text message.
        url: view: the page opened.
        appid: miniprogram: the mini-program.
        pagepath: miniprogram: the page opened.
    """

    type: str
    content: str = ""
    id: str = ""
    url: str = ""
    appid: str = ""
    pagepath: str = ""


_MENU_TYPES = frozenset({"click", "view", "miniprogram", "text"})


def read_menu_items(d: Mapping[str, Any], key: str, where: str) -> tuple[KfMenuItem, ...]:
    """The options of array ``key``; an option of unknown type keeps only its type."""
    items = []
    for at, entry in entries(d, key, where):
        kind = read_str(entry, "type", at)
        # An unknown type's body may have any shape; only known bodies are read (and checked).
        body = read_object(entry, kind, at) if kind in _MENU_TYPES else {}
        where_body = path(at, kind)
        items.append(
            KfMenuItem(
                type=kind,
                content=read_str(body, "content", where_body),
                id=read_str(body, "id", where_body),
                url=read_str(body, "url", where_body),
                appid=read_str(body, "appid", where_body),
                pagepath=read_str(body, "pagepath", where_body),
            )
        )
    return tuple(items)


@dataclass(frozen=True, slots=True, kw_only=True)
class KfMergedItem:
    """One message of a merged chat record (聊天记录).

    Attributes:
        send_time: Unix seconds of the original message.
        msgtype: Its msgtype.
        sender_name: Display name of its sender.
        msg_content: Its body as a JSON string, e.g. ``{"text":{"content":"..."}}``.
    """

    send_time: int = 0
    msgtype: str = ""
    sender_name: str = ""
    msg_content: str = ""

    @property
    def text(self) -> str:
        """The content of a text message, "" for other types or undecodable ``msg_content``."""
        try:
            body = json.loads(self.msg_content)
        # RecursionError: a deeply nested string must not take the whole item down.
        except (ValueError, RecursionError):
            return ""
        text = body.get("text") if isinstance(body, dict) else None
        content = text.get("content") if isinstance(text, dict) else None
        return content if isinstance(content, str) else ""


def read_merged_items(d: Mapping[str, Any], key: str, where: str) -> tuple[KfMergedItem, ...]:
    """The messages of array ``key``."""
    return tuple(
        KfMergedItem(
            send_time=read_int(entry, "send_time", at),
            msgtype=read_str(entry, "msgtype", at),
            sender_name=read_str(entry, "sender_name", at),
            msg_content=read_str(entry, "msg_content", at),
        )
        for at, entry in entries(d, key, where)
    )
