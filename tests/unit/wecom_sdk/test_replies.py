"""Passive replies render to WeCom's XML (doc 90241) and survive encryption."""

from __future__ import annotations

from typing import Any

import pytest
from wechatpy.enterprise.crypto import WeChatCrypto

from wecom_sdk import (
    Article,
    ImageReply,
    MsgCrypto,
    NewsReply,
    Reply,
    TextReply,
    UpdateButtonReply,
    VideoReply,
    VoiceReply,
    parse_xml,
    render_reply,
)

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
HEAD = {"ToUserName": "zhangsan", "FromUserName": CORP, "CreateTime": "1700000000"}

CASES: list[tuple[Reply, dict[str, Any]]] = [
    (TextReply("已收到]]>，稍后回复"), {"MsgType": "text", "Content": "已收到]]>，稍后回复"}),
    (ImageReply("m1"), {"MsgType": "image", "Image": {"MediaId": "m1"}}),
    (VoiceReply("m2"), {"MsgType": "voice", "Voice": {"MediaId": "m2"}}),
    (
        VideoReply("m3", title="标题", description="d"),
        {"MsgType": "video", "Video": {"MediaId": "m3", "Title": "标题", "Description": "d"}},
    ),
    (
        NewsReply((Article("t1", "d1", "p1", "u1"), Article("t2"))),
        {
            "MsgType": "news",
            "ArticleCount": "2",
            "Articles": {
                "item": [
                    {"Title": "t1", "Description": "d1", "PicUrl": "p1", "Url": "u1"},
                    {"Title": "t2", "Description": "", "PicUrl": "", "Url": ""},
                ]
            },
        },
    ),
    (
        NewsReply((Article("only"),)),
        {
            "MsgType": "news",
            "ArticleCount": "1",
            "Articles": {"item": {"Title": "only", "Description": "", "PicUrl": "", "Url": ""}},
        },
    ),
    (
        UpdateButtonReply("已由张三处理"),
        {"MsgType": "update_button", "Button": {"ReplaceName": "已由张三处理"}},
    ),
]


def render(reply: Reply) -> bytes:
    return render_reply(reply, to_user="zhangsan", from_user=CORP, create_time=1700000000)


@pytest.mark.parametrize(("reply", "body"), CASES, ids=lambda c: type(c).__name__)
def test_renders_and_reads_back(reply: Reply, body: dict[str, Any]) -> None:
    xml = render(reply)
    assert xml.startswith(b"<xml><ToUserName><![CDATA[zhangsan]]></ToUserName>")
    assert b"<CreateTime>1700000000</CreateTime>" in xml
    assert parse_xml(xml) == HEAD | body


def test_news_article_limits() -> None:
    NewsReply(tuple(Article(f"t{i}") for i in range(8)))
    with pytest.raises(ValueError, match="1 to 8"):
        NewsReply(tuple(Article(f"t{i}") for i in range(9)))
    with pytest.raises(ValueError, match="1 to 8"):
        NewsReply(())


def test_news_stores_a_tuple() -> None:
    reply = NewsReply([Article("t")])  # type: ignore[arg-type]
    assert reply.articles == (Article("t"),)
    hash(reply)


@pytest.mark.parametrize(("reply", "body"), CASES, ids=lambda c: type(c).__name__)
def test_sealed_reply_decrypts_with_wechatpy(reply: Reply, body: dict[str, Any]) -> None:
    sealed = MsgCrypto(TOKEN, KEY, CORP).seal(render(reply), nonce="1372623149")
    plain = WeChatCrypto(TOKEN, KEY, CORP).decrypt_message(
        sealed.reply_xml(), sealed.signature, sealed.timestamp, sealed.nonce
    )
    assert parse_xml(plain) == HEAD | body
