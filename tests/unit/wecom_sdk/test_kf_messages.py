"""kf/sync_msg msg_list items become typed models; bad items raise KfItemError, nothing else."""

from __future__ import annotations

import dataclasses
import json
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_sdk.errors import KfItemError, WeComError
from wecom_sdk.messages.kf import (
    KfAuthor,
    KfBusinessCard,
    KfEnterSession,
    KfEvent,
    KfFile,
    KfImage,
    KfItem,
    KfLink,
    KfLocation,
    KfMedia,
    KfMenuItem,
    KfMergedItem,
    KfMergedMsg,
    KfMiniprogram,
    KfMsgMenu,
    KfMsgSendFail,
    KfRecall,
    KfServicerStatusChange,
    KfSessionStatusChange,
    KfText,
    KfUnknown,
    KfUnknownEvent,
    KfVideo,
    KfVoice,
    parse_kf_item,
    parse_kf_items,
)

KFID = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"
USER = "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw"


def _msg(msgid: str, msgtype: str, body: dict[str, Any], origin: int = 3) -> str:
    item = {
        "msgid": msgid,
        "open_kfid": KFID,
        "external_userid": USER,
        "send_time": 1615478585,
        "origin": origin,
        msgtype: body,
        "msgtype": msgtype,
    }
    if origin == 5:
        item["servicer_userid"] = "zhangsan"
    return json.dumps(item, ensure_ascii=False)


def _event(msgid: str, event: dict[str, Any]) -> str:
    item = {"msgid": msgid, "send_time": 1615478585, "origin": 4, "msgtype": "event"}
    return json.dumps({**item, "event": event}, ensure_ascii=False)


MERGED_TEXT = json.dumps({"text": {"content": "这是一条文本消息"}}, ensure_ascii=False)
MERGED_IMAGE = json.dumps({"image": {"media_id": "2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5WKRQ4Nvvg"}})

# Shapes from doc 94670 (sync_msg) as quoted in shared/wecom-protocol.md §4.2, as WeCom sends
# them on the wire (JSON text, decoded the way the client decodes responses).
SAMPLES: dict[str, str] = {
    "text": _msg(
        "from_msgid_4622416642169452483",
        "text",
        {"content": "你好，我想咨询一下退款", "menu_id": "101"},
    ),
    "image": _msg(
        "from_msgid_1", "image", {"media_id": "2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5WKRQ4Nvvg"}
    ),
    "voice": _msg(
        "from_msgid_2", "voice", {"media_id": "2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5WKRQ4Nvvg"}
    ),
    "video": _msg(
        "from_msgid_3", "video", {"media_id": "2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5WKRQ4Nvvg"}
    ),
    "file": _msg(
        "from_msgid_4", "file", {"media_id": "1Yv-zXfHjSjU-7LH-GwtYqDGS-zz6w22KmWAT5COgP7o"}
    ),
    "location": _msg(
        "from_msgid_5",
        "location",
        {
            "latitude": 23.106021881103501,
            "longitude": 113,
            "name": "广州国际媒体港(广州市海珠区)",
            "address": "广东省广州市海珠区滨江东路",
        },
    ),
    "link": _msg(
        "from_msgid_6",
        "link",
        {
            "title": "低价代开发票",
            "desc": "加微信了解详情",
            "url": "https://example.com/invoice",
            "pic_url": "https://example.com/pic.png",
        },
    ),
    "business_card": _msg("from_msgid_7", "business_card", {"userid": "zhangsan"}),
    "miniprogram": _msg(
        "from_msgid_8",
        "miniprogram",
        {
            "title": "订单查询",
            "appid": "wx123123123123123",
            "pagepath": "pages/index?userid=zhangsan&orderid=123123123",
            "thumb_media_id": "THUMB_MEDIA_ID",
        },
    ),
    "msgmenu": _msg(
        "from_msgid_9",
        "msgmenu",
        {
            "head_content": "您对本次服务是否满意呢？",
            "list": [
                {"type": "click", "click": {"id": "101", "content": "满意"}},
                {"type": "click", "click": {"id": "102", "content": "不满意"}},
                {
                    "type": "view",
                    "view": {
                        "url": "https://work.weixin.qq.com",
                        "content": "点击跳转到自助查询页面",
                    },
                },
                {
                    "type": "miniprogram",
                    "miniprogram": {
                        "appid": "wx123123123123123",
                        "pagepath": "pages/index?userid=zhangsan&orderid=123123123",
                        "content": "点击打开小程序查询更多",
                    },
                },
                {"type": "text", "text": {"content": "也可以直接回复", "no_newline": 1}},
            ],
            "tail_content": "欢迎再次光临",
        },
        origin=5,
    ),
    "channels": _msg(
        "from_msgid_10",
        "channels",
        {"sub_type": 1, "nickname": "视频号名称", "title": "视频号消息的标题"},
    ),
    "merged_msg": _msg(
        "from_msgid_11",
        "merged_msg",
        {
            "title": "李四和张三的聊天记录",
            "item": [
                {
                    "send_time": 1615454355,
                    "msgtype": "text",
                    "sender_name": "张三",
                    "msg_content": MERGED_TEXT,
                },
                {
                    "send_time": 1615454356,
                    "msgtype": "image",
                    "sender_name": "李四",
                    "msg_content": MERGED_IMAGE,
                },
                {
                    "send_time": 1615454357,
                    "msgtype": "text",
                    "sender_name": "张三",
                    "msg_content": '{"text": {"content": "截断的',
                },
            ],
        },
    ),
    "enter_session": _event(
        "from_msgid_20",
        {
            "event_type": "enter_session",
            "open_kfid": KFID,
            "external_userid": USER,
            "scene": "123",
            "scene_param": "abc",
            "welcome_code": "aaaaaa",
            "wechat_channels": {"nickname": "进入会话的视频号名称", "scene": 1},
        },
    ),
    "msg_send_fail": _event(
        "from_msgid_21",
        {
            "event_type": "msg_send_fail",
            "open_kfid": KFID,
            "external_userid": USER,
            "fail_msgid": "FAIL_MSGID",
            "fail_type": 4,
        },
    ),
    "servicer_status_change": _event(
        "from_msgid_22",
        {
            "event_type": "servicer_status_change",
            "servicer_userid": "zhangsan",
            "status": 2,
            "stop_type": 1,
            "open_kfid": KFID,
        },
    ),
    "session_status_change": _event(
        "from_msgid_23",
        {
            "event_type": "session_status_change",
            "open_kfid": KFID,
            "external_userid": USER,
            "change_type": 2,
            "old_servicer_userid": "zhangsan",
            "new_servicer_userid": "lisi",
            "msg_code": "MSG_CODE",
        },
    ),
    "user_recall_msg": _event(
        "from_msgid_24",
        {
            "event_type": "user_recall_msg",
            "open_kfid": KFID,
            "external_userid": USER,
            "recall_msgid": "from_msgid_4622416642169452483",
        },
    ),
    "servicer_recall_msg": _event(
        "from_msgid_25",
        {
            "event_type": "servicer_recall_msg",
            "open_kfid": KFID,
            "external_userid": USER,
            "recall_msgid": "from_msgid_9",
            "servicer_userid": "zhangsan",
        },
    ),
}


def sample(name: str) -> dict[str, Any]:
    item = json.loads(SAMPLES[name])
    assert isinstance(item, dict)
    return item


def parsed(name: str) -> KfItem:
    return parse_kf_item(sample(name))


def test_text() -> None:
    item = parsed("text")
    assert isinstance(item, KfText)
    assert item.msgid == "from_msgid_4622416642169452483"
    assert item.open_kfid == KFID
    assert item.external_userid == USER
    assert item.send_time == 1615478585
    assert item.origin == 3
    assert item.author is KfAuthor.CUSTOMER
    assert item.servicer_userid == ""
    assert item.msgtype == "text"
    assert item.content == "你好，我想咨询一下退款"
    assert item.menu_id == "101"
    assert item.text == "你好，我想咨询一下退款"
    assert item.raw == sample("text")


@pytest.mark.parametrize(
    ("name", "model"),
    [("image", KfImage), ("voice", KfVoice), ("video", KfVideo), ("file", KfFile)],
)
def test_media(name: str, model: type[KfMedia]) -> None:
    item = parsed(name)
    assert type(item) is model
    assert isinstance(item, KfMedia)
    assert item.media_id == sample(name)[name]["media_id"]
    assert item.text == ""


def test_location_accepts_an_integer_coordinate() -> None:
    item = parsed("location")
    assert isinstance(item, KfLocation)
    assert item.latitude == pytest.approx(23.1060218811035)
    assert item.longitude == 113.0
    assert isinstance(item.longitude, float)
    assert item.text == "广州国际媒体港(广州市海珠区) 广东省广州市海珠区滨江东路"


def test_link() -> None:
    item = parsed("link")
    assert isinstance(item, KfLink)
    assert (item.url, item.pic_url) == (
        "https://example.com/invoice",
        "https://example.com/pic.png",
    )
    assert item.text == "低价代开发票\n加微信了解详情"


def test_business_card_has_no_text() -> None:
    item = parsed("business_card")
    assert isinstance(item, KfBusinessCard)
    assert item.userid == "zhangsan"
    assert item.text == ""


def test_miniprogram() -> None:
    item = parsed("miniprogram")
    assert isinstance(item, KfMiniprogram)
    assert (item.appid, item.thumb_media_id) == ("wx123123123123123", "THUMB_MEDIA_ID")
    assert item.pagepath == "pages/index?userid=zhangsan&orderid=123123123"
    assert item.text == "订单查询"


def test_msgmenu_from_a_servicer() -> None:
    item = parsed("msgmenu")
    assert isinstance(item, KfMsgMenu)
    assert item.author is KfAuthor.STAFF
    assert item.servicer_userid == "zhangsan"
    assert item.items[0] == KfMenuItem(type="click", id="101", content="满意")
    assert item.items[2] == KfMenuItem(
        type="view", url="https://work.weixin.qq.com", content="点击跳转到自助查询页面"
    )
    assert item.items[3].appid == "wx123123123123123"
    assert item.items[3].pagepath == "pages/index?userid=zhangsan&orderid=123123123"
    assert item.items[4] == KfMenuItem(type="text", content="也可以直接回复")
    assert item.text == (
        "您对本次服务是否满意呢？\n满意\n不满意\n点击跳转到自助查询页面\n"
        "点击打开小程序查询更多\n也可以直接回复\n欢迎再次光临"
    )


def test_msgmenu_unknown_option_type_is_kept_empty() -> None:
    item = sample("msgmenu")
    item["msgmenu"]["list"] = [{"type": "future", "future": ["any", "shape"]}]
    menu = parse_kf_item(item)
    assert isinstance(menu, KfMsgMenu)
    assert menu.items == (KfMenuItem(type="future"),)
    assert menu.text == "您对本次服务是否满意呢？\n欢迎再次光临"


def test_merged_msg_text_keeps_only_decodable_text_messages() -> None:
    item = parsed("merged_msg")
    assert isinstance(item, KfMergedMsg)
    assert item.title == "李四和张三的聊天记录"
    assert item.items[0] == KfMergedItem(
        send_time=1615454355, msgtype="text", sender_name="张三", msg_content=MERGED_TEXT
    )
    assert [i.text for i in item.items] == ["这是一条文本消息", "", ""]
    assert item.text == "李四和张三的聊天记录\n这是一条文本消息"


@pytest.mark.parametrize(
    "content",
    ["", "null", "[]", '"text"', '{"text": "x"}', '{"text": {"content": 1}}', "[" * 100_000],
)
def test_merged_item_text_is_defensive(content: str) -> None:
    assert KfMergedItem(msgtype="text", msg_content=content).text == ""


def test_channels_is_kept_as_unknown() -> None:
    item = parsed("channels")
    assert type(item) is KfUnknown
    assert item.msgtype == "channels"
    assert item.raw["channels"]["nickname"] == "视频号名称"
    assert item.text == ""


def test_enter_session_takes_ids_from_the_event() -> None:
    item = parsed("enter_session")
    assert isinstance(item, KfEnterSession)
    assert isinstance(item, KfEvent)
    assert "open_kfid" not in item.raw
    assert "external_userid" not in item.raw
    assert item.open_kfid == KFID
    assert item.external_userid == USER
    assert item.author is KfAuthor.SYSTEM
    assert item.event_type == "enter_session"
    assert (item.scene, item.scene_param, item.welcome_code) == ("123", "abc", "aaaaaa")
    assert item.text == ""
    assert "aaaaaa" not in repr(item)  # single-use code, kept out of logs


def test_top_level_ids_win_over_the_event() -> None:
    item = sample("enter_session")
    item["open_kfid"] = "wk_top"
    assert parse_kf_item(item).open_kfid == "wk_top"


def test_msg_send_fail() -> None:
    item = parsed("msg_send_fail")
    assert isinstance(item, KfMsgSendFail)
    assert (item.fail_msgid, item.fail_type) == ("FAIL_MSGID", 4)
    assert item.external_userid == USER


def test_servicer_status_change() -> None:
    item = parsed("servicer_status_change")
    assert isinstance(item, KfServicerStatusChange)
    assert item.servicer_userid == "zhangsan"
    assert (item.status, item.stop_type) == (2, 1)
    assert item.open_kfid == KFID
    assert item.external_userid == ""


def test_session_status_change() -> None:
    item = parsed("session_status_change")
    assert isinstance(item, KfSessionStatusChange)
    assert item.change_type == 2
    assert (item.old_servicer_userid, item.new_servicer_userid) == ("zhangsan", "lisi")
    assert item.msg_code == "MSG_CODE"
    assert "MSG_CODE" not in repr(item)


def test_recalls_share_a_model_and_keep_their_event_type() -> None:
    user, servicer = parsed("user_recall_msg"), parsed("servicer_recall_msg")
    assert isinstance(user, KfRecall)
    assert isinstance(servicer, KfRecall)
    assert (user.event_type, user.recall_msgid) == (
        "user_recall_msg",
        "from_msgid_4622416642169452483",
    )
    assert (servicer.event_type, servicer.recall_msgid) == ("servicer_recall_msg", "from_msgid_9")
    assert servicer.servicer_userid == "zhangsan"
    assert user.servicer_userid == ""


def test_unknown_event_is_kept_raw() -> None:
    item = parse_kf_item(
        {
            "msgid": "m1",
            "msgtype": "event",
            "origin": 4,
            "event": {"event_type": "reject_customer_msg_switch_change", "open_kfid": KFID},
        }
    )
    assert type(item) is KfUnknownEvent
    assert item.event_type == "reject_customer_msg_switch_change"
    assert item.open_kfid == KFID
    assert item.raw["event"]["event_type"] == "reject_customer_msg_switch_change"


def test_event_without_event_body() -> None:
    item = parse_kf_item({"msgid": "m1", "msgtype": "event"})
    assert type(item) is KfUnknownEvent
    assert (item.event_type, item.open_kfid) == ("", "")


def test_unknown_msgtype_is_kept_raw_whatever_its_body() -> None:
    raw = {"msgid": "m1", "msgtype": "hologram", "hologram": ["不", "是", "对象"], "origin": 3}
    item = parse_kf_item(raw)
    assert type(item) is KfUnknown
    assert item.raw is raw
    assert item.text == ""


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_has_a_model_and_round_trips_through_raw_json(name: str) -> None:
    item = parsed(name)
    assert not isinstance(item, KfUnknown | KfUnknownEvent) or name == "channels"
    assert item.msgid.startswith("from_msgid_")
    assert item.dedupe_key == f"kf:{item.msgid}"
    assert json.loads(item.raw_json) == sample(name)
    assert item.raw_json == json.dumps(
        sample(name), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )


def test_raw_json_keeps_utf8() -> None:
    assert "广州国际媒体港" in parsed("location").raw_json  # kept as UTF-8, not ASCII escapes


@pytest.mark.parametrize(
    ("origin", "author"),
    [
        (3, KfAuthor.CUSTOMER),
        (4, KfAuthor.SYSTEM),
        (5, KfAuthor.STAFF),
        (0, KfAuthor.UNKNOWN),
        (6, KfAuthor.UNKNOWN),
        (-1, KfAuthor.UNKNOWN),
    ],
)
def test_origin_maps_to_author(origin: int, author: KfAuthor) -> None:
    item = parse_kf_item({"msgid": "m1", "msgtype": "text", "origin": origin})
    assert item.author is author
    assert str(author) == author.value


def test_missing_optional_fields_take_defaults() -> None:
    item = parse_kf_item({"msgid": "m1", "msgtype": "location", "open_kfid": None})
    assert isinstance(item, KfLocation)
    assert (item.open_kfid, item.external_userid, item.servicer_userid) == ("", "", "")
    assert (item.send_time, item.origin) == (0, 0)
    assert (item.latitude, item.longitude, item.name, item.address) == (0.0, 0.0, "", "")
    assert item.text == ""
    menu = parse_kf_item({"msgid": "m2", "msgtype": "msgmenu", "msgmenu": {}})
    assert isinstance(menu, KfMsgMenu)
    assert menu.items == ()
    assert menu.text == ""
    link = parse_kf_item({"msgid": "m3", "msgtype": "link", "link": {"desc": "只有描述"}})
    assert link.text == "只有描述"


def test_missing_msgtype_is_unknown() -> None:
    item = parse_kf_item({"msgid": "m1"})
    assert type(item) is KfUnknown
    assert item.msgtype == ""


@pytest.mark.parametrize(
    ("msgid", "key"),
    [
        ("from_msgid_4622416642169452483", "kf:from_msgid_4622416642169452483"),
        ("a" * 64, "kf:" + "a" * 64),
        ("!~", "kf:!~"),
    ],
)
def test_dedupe_key_uses_a_plain_msgid(msgid: str, key: str) -> None:
    assert parse_kf_item({"msgid": msgid, "msgtype": "text"}).dedupe_key == key


@pytest.mark.parametrize(
    "msgid",
    ["a" * 65, "9" * 10_000, "有 空格", "a b", "tab\there", "new\nline", "消息", "\ud800", "\x7f"],
)
def test_dedupe_key_hashes_any_other_msgid(msgid: str) -> None:
    key = parse_kf_item({"msgid": msgid, "msgtype": "text"}).dedupe_key
    assert key.startswith("kfh:")
    assert len(key) == 4 + 64
    assert key == parse_kf_item({"msgid": msgid, "msgtype": "image"}).dedupe_key  # msgid only
    assert key != parse_kf_item({"msgid": msgid + "x", "msgtype": "text"}).dedupe_key


def test_dedupe_key_without_msgid_hashes_the_canonical_raw() -> None:
    # Only possible by direct construction: the parser requires a msgid.
    one = KfText(msgid="", msgtype="text", raw={"b": 1, "a": "文"}).dedupe_key
    same = KfText(msgid="", msgtype="text", raw={"a": "文", "b": 1}).dedupe_key
    other = KfText(msgid="", msgtype="text", raw={"a": "文", "b": 2}).dedupe_key
    assert one == same != other
    assert one.startswith("kfh:")


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"msgtype": "text"}, "msgid"),
        ({"msgid": "", "msgtype": "text"}, "msgid"),
        ({"msgid": None, "msgtype": "text"}, "msgid"),
        ({"msgid": 123, "msgtype": "text"}, "msgid"),
        ({"msgid": "m", "msgtype": 1}, "msgtype"),
        ({"msgid": "m", "msgtype": "text", "send_time": "1615478585"}, "send_time"),
        ({"msgid": "m", "msgtype": "text", "send_time": 1615478585.0}, "send_time"),
        ({"msgid": "m", "msgtype": "text", "send_time": True}, "send_time"),
        ({"msgid": "m", "msgtype": "text", "send_time": 2**63}, "send_time"),
        ({"msgid": "m", "msgtype": "text", "origin": False}, "origin"),
        ({"msgid": "m", "msgtype": "text", "open_kfid": ["wk"]}, "open_kfid"),
        ({"msgid": "m", "msgtype": "text", "servicer_userid": 5}, "servicer_userid"),
        ({"msgid": "m", "msgtype": "text", "text": "不是对象"}, "text"),
        ({"msgid": "m", "msgtype": "text", "text": {"content": 1}}, "text.content"),
        ({"msgid": "m", "msgtype": "text", "text": {"content": ["a"]}}, "text.content"),
        ({"msgid": "m", "msgtype": "image", "image": {"media_id": {}}}, "image.media_id"),
        (
            {"msgid": "m", "msgtype": "location", "location": {"latitude": "23.1"}},
            "location.latitude",
        ),
        (
            {"msgid": "m", "msgtype": "location", "location": {"longitude": True}},
            "location.longitude",
        ),
        (
            {"msgid": "m", "msgtype": "location", "location": {"latitude": 10**400}},
            "location.latitude",
        ),
        ({"msgid": "m", "msgtype": "msgmenu", "msgmenu": {"list": {}}}, "msgmenu.list"),
        ({"msgid": "m", "msgtype": "msgmenu", "msgmenu": {"list": ["满意"]}}, "msgmenu.list[0]"),
        (
            {
                "msgid": "m",
                "msgtype": "msgmenu",
                "msgmenu": {"list": [{"type": "click", "click": []}]},
            },
            "msgmenu.list[0].click",
        ),
        (
            {
                "msgid": "m",
                "msgtype": "msgmenu",
                "msgmenu": {"list": [{"type": "click", "click": {"content": 1}}]},
            },
            "msgmenu.list[0].click.content",
        ),
        (
            {"msgid": "m", "msgtype": "merged_msg", "merged_msg": {"item": [None]}},
            "merged_msg.item[0]",
        ),
        (
            {"msgid": "m", "msgtype": "merged_msg", "merged_msg": {"item": [{"msg_content": {}}]}},
            "merged_msg.item[0].msg_content",
        ),
        ({"msgid": "m", "msgtype": "event", "event": "enter_session"}, "event"),
        ({"msgid": "m", "msgtype": "event", "event": {"event_type": 1}}, "event.event_type"),
        (
            {
                "msgid": "m",
                "msgtype": "event",
                "event": {"event_type": "msg_send_fail", "fail_type": "4"},
            },
            "event.fail_type",
        ),
        (
            {
                "msgid": "m",
                "msgtype": "event",
                "event": {"event_type": "enter_session", "open_kfid": 1},
            },
            "event.open_kfid",
        ),
    ],
)
def test_wrong_json_types_raise_kf_item_error(item: dict[str, Any], field: str) -> None:
    with pytest.raises(KfItemError) as info:
        parse_kf_item(item)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    "item",
    [None, "{}", b"{}", 1, [], [{"msgid": "m"}], {1: "m"}, {"msgid": "m", "x": float("nan")}],
    ids=["null", "str", "bytes", "int", "list", "list-of-objects", "int-key", "nan"],
)
def test_non_objects_raise_kf_item_error(item: object) -> None:
    with pytest.raises(KfItemError):
        parse_kf_item(item)


def test_error_messages_name_the_field_not_the_value() -> None:
    with pytest.raises(KfItemError) as info:
        parse_kf_item({"msgid": "m", "msgtype": "text", "text": {"content": ["银行卡密码123456"]}})
    assert "123456" not in str(info.value)
    assert isinstance(info.value, WeComError)
    assert info.value.errcode is None


def test_kf_item_error_pickles_with_its_field() -> None:
    error = pickle.loads(
        pickle.dumps(KfItemError("text.content should be a string", field="text.content"))
    )
    assert (error.field, error.message) == ("text.content", "text.content should be a string")


def test_parse_kf_items_keeps_the_good_items_of_a_page() -> None:
    page: list[object] = [sample("text"), {"msgid": 1}, "junk", sample("enter_session")]
    good, bad = parse_kf_items(page)
    assert [type(i) for i in good] == [KfText, KfEnterSession]
    assert [index for index, _ in bad] == [1, 2]
    assert all(isinstance(error, KfItemError) for _, error in bad)
    assert parse_kf_items([]) == ([], [])


def test_models_are_frozen_and_hashable() -> None:
    item = parsed("msgmenu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.msgid = "x"  # type: ignore[misc]
    assert hash(item) == hash(parsed("msgmenu"))
    assert item == parsed("msgmenu")


def test_models_can_be_built_directly() -> None:
    item: KfItem = KfText(msgid="m1", msgtype="text", content="你好", origin=3)
    assert item.text == "你好"
    assert item.author is KfAuthor.CUSTOMER
    assert item.raw == {}
    assert item.raw_json == "{}"


def test_mapping_that_is_not_a_dict_is_accepted() -> None:
    from types import MappingProxyType

    item = parse_kf_item(
        MappingProxyType({"msgid": "m1", "msgtype": "text", "text": {"content": "嗨"}})
    )
    assert item.text == "嗨"
    assert json.loads(item.raw_json)["text"] == {"content": "嗨"}


# --- property: any JSON-like value parses or raises KfItemError, never anything else ---

MSGTYPES = [
    "text",
    "image",
    "voice",
    "video",
    "file",
    "location",
    "link",
    "business_card",
    "miniprogram",
    "msgmenu",
    "merged_msg",
    "channels",
    "event",
    "",
]
EVENT_TYPES = [
    "enter_session",
    "msg_send_fail",
    "servicer_status_change",
    "session_status_change",
    "user_recall_msg",
    "servicer_recall_msg",
    "other",
]
BODY_KEYS = [
    "content",
    "menu_id",
    "media_id",
    "latitude",
    "longitude",
    "name",
    "address",
    "title",
    "desc",
    "url",
    "pic_url",
    "userid",
    "appid",
    "thumb_media_id",
    "pagepath",
    "head_content",
    "list",
    "tail_content",
    "item",
    "type",
    "click",
    "view",
    "miniprogram",
    "text",
    "id",
    "send_time",
    "msgtype",
    "sender_name",
    "msg_content",
    "event_type",
    "open_kfid",
    "external_userid",
    "servicer_userid",
    "scene",
    "scene_param",
    "welcome_code",
    "fail_msgid",
    "fail_type",
    "status",
    "stop_type",
    "change_type",
    "old_servicer_userid",
    "new_servicer_userid",
    "msg_code",
    "recall_msgid",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(MSGTYPES + EVENT_TYPES + [MERGED_TEXT, "[", '{"text":1}'])
)
keys = st.sampled_from(BODY_KEYS + MSGTYPES + ["msgid", "origin", "event"]) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=30,
)


def mostly(good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` about three times in four, so most drawn items get past the early checks.

    (``good | good | good | other`` would not do: equal branches are not weighted.)
    """
    return st.integers(min_value=0, max_value=3).flatmap(lambda i: other if i == 0 else good)


plausible = (
    st.text(max_size=10)
    | st.integers(min_value=0, max_value=2**31)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.dictionaries(st.sampled_from(BODY_KEYS), st.text(max_size=10)), max_size=3)
)
field_values = mostly(plausible, json_values)


@st.composite
def item_like(draw: st.DrawFn) -> dict[str, Any]:
    """Objects shaped like real items, so the typed readers run, not just the early checks."""
    msgtype = draw(mostly(st.sampled_from(MSGTYPES), json_values))
    item = draw(
        st.fixed_dictionaries(
            {"msgid": mostly(st.text(min_size=1, max_size=70), scalars)},
            optional={
                "open_kfid": mostly(st.text(max_size=5), scalars),
                "external_userid": mostly(st.text(max_size=5), scalars),
                "servicer_userid": mostly(st.text(max_size=5), scalars),
                "send_time": mostly(st.integers(min_value=0, max_value=2**32), scalars),
                "origin": mostly(st.sampled_from([3, 4, 5]), scalars),
            },
        )
    )
    item["msgtype"] = msgtype
    if isinstance(msgtype, str) and msgtype:
        body = draw(st.dictionaries(st.sampled_from(BODY_KEYS), field_values, max_size=6))
        if msgtype == "event" and draw(st.booleans()):
            body["event_type"] = draw(st.sampled_from(EVENT_TYPES))
        item[msgtype] = draw(mostly(st.just(body), json_values))
    return item


def check_any_value(value: object) -> None:
    try:
        item = parse_kf_item(value)
    except KfItemError:
        return
    assert isinstance(item, KfItem)
    assert item.msgid
    key = item.dedupe_key
    assert 0 < len(key) <= 128
    assert isinstance(item.text, str)
    assert item.author in KfAuthor
    assert json.loads(item.raw_json) == json.loads(json.dumps(value))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_parses_or_raises_kf_item_error(value: object) -> None:
    check_any_value(value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(item_like())
def test_any_item_like_object_parses_or_raises_kf_item_error(value: dict[str, Any]) -> None:
    check_any_value(value)


@given(st.sampled_from(sorted(SAMPLES)), st.sampled_from(BODY_KEYS), json_values)
def test_any_field_of_a_real_sample_may_be_replaced(name: str, key: str, value: object) -> None:
    item = sample(name)
    item[item["msgtype"]][key] = value  # the event body sits under "event", its msgtype
    check_any_value(item)
