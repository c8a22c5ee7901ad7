"""Reply content as kf/send_msg bodies, and the idempotent msgid of each bot message (pure).

https://developer.work.weixin.qq.com/document/path/94677: ``msgid`` is at most 32 characters of
``[0-9a-zA-Z_-]`` and unique per kf account; WeCom does not deliver a msgid twice. Deriving it
from the message being answered makes a re-send after a crash the very same message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from rules.models import LinkReply, MenuOption, MenuReply, ReplyContent, TextReplyContent

__all__ = ["KfBody", "action_msgid", "kf_body", "menu_body", "plain_text"]

KfBody = tuple[str, dict[str, Any]]
"""(msgtype, the msgtype-keyed body) as :meth:`wecom_sdk.client.kf.KfApi.send_msg` takes them."""

# One letter per action kind, so the ids of one message's reply and hand-off never collide.
_PREFIX = {"reply": "r", "handoff": "h", "transfer": "t", "welcome": "w"}


def action_msgid(kind: str, open_kfid: str, source_msgid: str) -> str:
    """The msgid of the ``kind`` action answering ``source_msgid``: 32 chars, stable."""
    digest = hashlib.sha1(f"{kind}\0{open_kfid}\0{source_msgid}".encode()).hexdigest()
    return _PREFIX[kind] + digest[:31]


def menu_body(head: str, options: Sequence[MenuOption], tail: str = "") -> KfBody:
    """A ``msgmenu``: each option a click item whose id comes back as the text's ``menu_id``."""
    body: dict[str, Any] = {
        "head_content": head,
        "list": [{"type": "click", "click": {"id": o.id, "content": o.text}} for o in options],
    }
    if tail:
        body["tail_content"] = tail
    return "msgmenu", body


def kf_body(content: ReplyContent) -> KfBody:
    """A reply rule's content as a kf message: text or msgmenu (a link goes as text)."""
    if isinstance(content, TextReplyContent):
        return "text", {"content": content.text}
    if isinstance(content, MenuReply):
        return menu_body(content.head, content.options, content.tail)
    if isinstance(content, LinkReply):
        # kf's link message needs a thumb_media_id (an image uploaded to WeCom first); the rule
        # has a picture URL at most. A text with the address is always deliverable and WeChat
        # makes the URL clickable.
        lines = (content.title, content.description, content.url)
        return "text", {"content": "\n".join(line for line in lines if line)}
    raise TypeError(f"unknown reply content {type(content).__name__}")


def plain_text(msgtype: str, body: dict[str, Any]) -> str:
    """What a bot message says, as text for the archive and the review page."""
    if msgtype == "text":
        return str(body.get("content", ""))
    if msgtype == "msgmenu":
        lines = [str(body.get("head_content", ""))]
        for item in body.get("list", ()):
            kind = item.get("type", "")
            lines.append(str(item.get(kind, {}).get("content", "")))
        lines.append(str(body.get("tail_content", "")))
        return "\n".join(line for line in lines if line)
    return ""
