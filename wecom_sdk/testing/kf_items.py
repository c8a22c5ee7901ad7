"""``kf/sync_msg`` items as WeCom writes them (wecom-protocol.md §4.2), for queueing in the emulator."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["kf_event", "kf_text"]


def kf_text(
    msgid: str,
    user: str,
    content: str,
    *,
    open_kfid: str = "wkSENTINEL",
    origin: int = 3,
    servicer: str = "",
    send_time: int | None = None,
    menu_id: str = "",
) -> dict[str, Any]:
    """A sync_msg text item: from the customer (origin 3) or a servicer (origin 5)."""
    text: dict[str, Any] = {"content": content}
    if menu_id:
        text["menu_id"] = menu_id
    item: dict[str, Any] = {
        "msgid": msgid,
        "open_kfid": open_kfid,
        "external_userid": user,
        "send_time": int(time.time()) if send_time is None else send_time,
        "origin": origin,
        "msgtype": "text",
        "text": text,
    }
    if servicer:
        item["servicer_userid"] = servicer
    return item


def kf_event(
    msgid: str,
    event_type: str,
    *,
    open_kfid: str = "wkSENTINEL",
    user: str = "",
    send_time: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A sync_msg system event item (origin 4): account and customer inside ``event``."""
    event: dict[str, Any] = {"event_type": event_type, "open_kfid": open_kfid, **fields}
    if user:
        event["external_userid"] = user
    return {
        "msgid": msgid,
        "send_time": int(time.time()) if send_time is None else send_time,
        "origin": 4,
        "msgtype": "event",
        "event": event,
    }
