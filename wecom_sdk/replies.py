"""Passive reply models and their plain-XML rendering.

A handler returns one of these; :func:`render_reply` writes the XML that
:meth:`wecom_sdk.crypto.MsgCrypto.seal` then encrypts.
Format: https://developer.work.weixin.qq.com/document/path/90241 (被动回复消息格式).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from .xmlsafe import render_xml

__all__ = [
    "Article",
    "ImageReply",
    "NewsReply",
    "Reply",
    "TextReply",
    "UpdateButtonReply",
    "VideoReply",
    "VoiceReply",
    "render_reply",
]

MAX_ARTICLES = 8  # message/send caps news at 8; WeCom's passive-reply doc is silent, stay safe


@dataclass(frozen=True, slots=True)
class TextReply:
    """A text reply."""

    msg_type: ClassVar[str] = "text"
    content: str

    def body(self) -> dict[str, object]:
        """The type-specific XML fields."""
        return {"Content": self.content}


@dataclass(frozen=True, slots=True)
class ImageReply:
    """An image reply; ``media_id`` from the media upload API."""

    msg_type: ClassVar[str] = "image"
    media_id: str

    def body(self) -> dict[str, object]:
        """The type-specific XML fields."""
        return {"Image": {"MediaId": self.media_id}}


@dataclass(frozen=True, slots=True)
class VoiceReply:
    """A voice reply; ``media_id`` from the media upload API."""

    msg_type: ClassVar[str] = "voice"
    media_id: str

    def body(self) -> dict[str, object]:
        """The type-specific XML fields."""
        return {"Voice": {"MediaId": self.media_id}}


@dataclass(frozen=True, slots=True)
class VideoReply:
    """A video reply; ``media_id`` from the media upload API."""

    msg_type: ClassVar[str] = "video"
    media_id: str
    title: str = ""
    description: str = ""

    def body(self) -> dict[str, object]:
        """The type-specific XML fields."""
        return {
            "Video": {
                "MediaId": self.media_id,
                "Title": self.title,
                "Description": self.description,
            }
        }


@dataclass(frozen=True, slots=True)
class Article:
    """One item of a news reply."""

    title: str
    description: str = ""
    pic_url: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class NewsReply:
    """A news (图文) reply of 1 to 8 articles.

    Raises:
        ValueError: No articles, or more than 8.
    """

    msg_type: ClassVar[str] = "news"
    articles: tuple[Article, ...]

    def __post_init__(self) -> None:
        # Accept any sequence from callers but store the immutable tuple the type promises.
        object.__setattr__(self, "articles", tuple(self.articles))
        if not 1 <= len(self.articles) <= MAX_ARTICLES:
            raise ValueError(f"a news reply needs 1 to {MAX_ARTICLES} articles")

    def body(self) -> dict[str, object]:
        """The type-specific XML fields."""
        items = [
            {"Title": a.title, "Description": a.description, "PicUrl": a.pic_url, "Url": a.url}
            for a in self.articles
        ]
        return {"ArticleCount": len(items), "Articles": {"item": items}}


@dataclass(frozen=True, slots=True)
class UpdateButtonReply:
    """Replace the clicked template-card button's text, for the clicking member only.

    Valid only as the passive reply to a ``template_card_event`` callback (doc 90241).
    """

    msg_type: ClassVar[str] = "update_button"
    replace_name: str

    def body(self) -> dict[str, object]:
        """The type-specific XML fields."""
        return {"Button": {"ReplaceName": self.replace_name}}


Reply: TypeAlias = TextReply | ImageReply | VoiceReply | VideoReply | NewsReply | UpdateButtonReply


def render_reply(reply: Reply, *, to_user: str, from_user: str, create_time: int) -> bytes:
    """Render a passive reply as plain XML, ready for :meth:`MsgCrypto.seal`.

    Args:
        reply: The reply model.
        to_user: The member's userid (the callback's FromUserName).
        from_user: The corpid (the callback's ToUserName).
        create_time: Unix seconds.
    """
    head: dict[str, object] = {
        "ToUserName": to_user,
        "FromUserName": from_user,
        "CreateTime": create_time,
        "MsgType": reply.msg_type,
    }
    return render_xml(head | reply.body())
