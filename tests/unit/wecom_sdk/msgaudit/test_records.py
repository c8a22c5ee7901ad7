"""Decrypted archive records become typed models (wecom-protocol.md §7); records that cannot be
read raise the archive's 10002, naming the field and never its value."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from wecom_sdk.errors import RecordUndecryptable
from wecom_sdk.messages import (
    ARCHIVE_MODELS,
    ArchiveAgree,
    ArchiveCard,
    ArchiveChatRecord,
    ArchiveLink,
    ArchiveLocation,
    ArchiveMarkdown,
    ArchiveMedia,
    ArchiveMixed,
    ArchivePart,
    ArchiveRecord,
    ArchiveRevoke,
    ArchiveSwitch,
    ArchiveText,
    ArchiveUnknown,
    ArchiveWeapp,
    MediaRef,
    ParsedMessage,
    is_external_id,
    media_parts,
    parse_archive_record,
)

STAFF = "zhangsan"
CUSTOMER = "wmGAgeDQAAsgQetTQGqRbMxrkodpM3fA"
ROOM = "wrbIZ5Fw4Aw8sAyIcuRj6rgu0GStk0Rg"
FILEID = (
    "CtYBMzA2OTAyMDEwMjA0NjIzMDYwMDIwMTAwMDIwNDc5YjA4ZjBiMDIwMzBmNDI0MDAyMDQ3ODEzZTE2ZjAyMDQ1ZjlmYTk"
    "3ZDA0MjQzOTM5MzYzMTM2NjUzNzJkNjMzMTY2MzEyZDM0MzIzNDM4MmQ2MTMzMzQ2MzJkMzc2MjY1MzYzMTM4MzMzNzM4"
)


def _record(msgid: str, msgtype: str, body: dict[str, Any], **top: Any) -> str:
    record = {
        "msgid": msgid,
        "action": "send",
        "from": CUSTOMER,
        "tolist": [STAFF],
        "roomid": "",
        "msgtime": 1603875610123,
        "msgtype": msgtype,
        msgtype: body,
        **top,
    }
    return json.dumps(record, ensure_ascii=False)


def _part(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "content": json.dumps(body, ensure_ascii=False)}


# Shapes from doc 91774 (获取会话内容), as the SDK's DecryptData returns them.
SAMPLES: dict[str, str] = {
    "text": _record("CAQQluDa4QUY0On2rYSAgAMgzPrShAE=", "text", {"content": "我要退款，否则投诉"}),
    "image": _record(
        "CAQQvPnc4QUY0On2rYSAgAMgooLa0Q8=",
        "image",
        {"md5sum": "50de8e5ae8ffe4f1df7a93841f71993a", "filesize": 70961, "sdkfileid": FILEID},
    ),
    "voice": _record(
        "10958372969718811103_1603875609",
        "voice",
        {
            "md5sum": "9db09c7fa627c9e53f17736c786a74d5",
            "voice_size": 6810,
            "play_length": 10,
            "sdkfileid": FILEID + "v",
        },
    ),
    "video": _record(
        "17955920891003447432_1603875627",
        "video",
        {
            "md5sum": "d06fc80c01d6fbffcca3b229ba41eac6",
            "filesize": 15169724,
            "play_length": 108,
            "sdkfileid": FILEID + "vi",
        },
    ),
    "file": _record(
        "18039699423706571225_1603875608",
        "file",
        {
            "md5sum": "ff893900f24e55e216e617a40e5c4648",
            "filename": "[E仁堂]数据需求文档.docx",
            "fileext": "docx",
            "filesize": 18245,
            "sdkfileid": FILEID + "f",
        },
    ),
    "emotion": _record(
        "6623217619416669654_1603875612",
        "emotion",
        {
            "type": 1,
            "width": 290,
            "height": 290,
            "imagesize": 962604,
            "md5sum": "b26f9fe2a8c5acbc2ec1e4c6d6c1f2c7",
            "sdkfileid": FILEID + "e",
        },
    ),
    "revoke": _record(
        "15348804182286313346_1603875648",
        "revoke",
        {"pre_msgid": "14822339130656386894_1603875600"},
        action="recall",
        **{"from": STAFF, "tolist": [CUSTOMER]},
    ),
    "agree": _record(
        "8891446340739254950_1603875826",
        "agree",
        {"userid": CUSTOMER, "agree_time": 1603875826656},
    ),
    "disagree": _record(
        "17952229780246929345_1594197637",
        "disagree",
        {"userid": "wo2rIjDAAAFYfy2bOZf4qrk-5FhTmm3Q", "disagree_time": 1594197581203},
    ),
    "card": _record(
        "13714216591700685997_1603875680",
        "card",
        {"corpname": "北京易企秀科技有限公司", "userid": CUSTOMER},
    ),
    "location": _record(
        "2641513858500683770_1603876152",
        "location",
        {
            "longitude": 116.586285899,
            "latitude": 39.911125799,
            "address": "北京市北京市朝阳区房地产交易中心(建外SOHO东区)",
            "title": "房地产交易中心(建外SOHO东区)",
            "zoom": 15,
        },
    ),
    "link": _record(
        "11788441727514772650_1603875624",
        "link",
        {
            "title": "邀请你加入群聊",
            "description": "技术支持群，进入可查看详情",
            "link_url": "https://work.weixin.qq.com/wework_admin/external_room/join/exceed",
            "image_url": "https://wework.qpic.cn/wwpic/972052_m_2fXSqbTBuXzTn_1603875624/",
        },
    ),
    "weapp": _record(
        "11930598857592605935_1603875608",
        "weapp",
        {
            "title": "开始聊天前请仔细阅读服务须知事项",
            "description": "客户需同意存档聊天记录",
            "username": "xxx@app",
            "displayname": "服务须知",
        },
    ),
    "markdown": json.dumps(
        {
            "msgid": "9285353096541734405_1607413339",
            "action": "send",
            "from": "wbgPmZCAAAjyAm1g3DzaPgSEsdSJxS3Q",
            "tolist": [STAFF],
            "roomid": ROOM,
            "msgtime": 1607413339000,
            "msgtype": "markdown",
            "info": {"content": "请前往系统查看，谢谢。"},
        },
        ensure_ascii=False,
    ),
    "mixed": _record(
        "DAQQluDa4QUY0On4kYSABAMgzPrShAE=",
        "mixed",
        {
            "item": [
                _part("text", {"content": "你好[微笑]\n"}),
                _part(
                    "image",
                    {
                        "md5sum": "368b6c18c82e6441bfd89b343e9d2429",
                        "filesize": 13177,
                        "sdkfileid": "MX1",
                    },
                ),
                _part("text", {"content": "加我私人微信"}),
            ]
        },
        roomid=ROOM,
    ),
    "chatrecord": _record(
        "11354299838102555191_1603875659",
        "chatrecord",
        {
            "title": "群聊",
            "item": [
                {
                    "type": "ChatRecordText",
                    "msgtime": 1603875610,
                    "content": '{"content":"test"}',
                    "from_chatroom": False,
                },
                {
                    "type": "ChatRecordImage",
                    "msgtime": 1603875611,
                    "content": json.dumps(
                        {
                            "md5sum": "5e5fa48e8c2d0a8e1a7b3c1b7b0a0c55",
                            "filesize": 1024,
                            "sdkfileid": "CR1",
                        }
                    ),
                    "from_chatroom": True,
                },
                {
                    "type": "ChatRecordMixed",
                    "msgtime": 1603875612,
                    "content": json.dumps(
                        {
                            "item": [
                                _part("text", {"content": "嵌套的文字"}),
                                _part(
                                    "file", {"filename": "a.pdf", "filesize": 9, "sdkfileid": "CR2"}
                                ),
                            ]
                        },
                        ensure_ascii=False,
                    ),
                    "from_chatroom": False,
                },
            ],
        },
    ),
    "switch": json.dumps(
        {"msgid": "125289002219525886280", "action": "switch", "time": 1554119421840, "user": STAFF}
    ),
    "todo": _record(
        "todo_1", "todo", {"title": "测试待办", "content": "明天回访客户"}, roomid=ROOM
    ),
    "vote": _record(
        "vote_1",
        "vote",
        {
            "votetitle": "周末团建去哪",
            "voteitem": ["爬山", "唱歌"],
            "votetype": 101,
            "voteid": "v1",
        },
        roomid=ROOM,
    ),
    "redpacket": _record(
        "rp_1",
        "redpacket",
        {"type": 1, "wish": "恭喜发财，大吉大利", "totalcnt": 1, "totalamount": 3000},
    ),
    # Its body is under "redpacket", not under its msgtype.
    "external_redpacket": json.dumps(
        {
            "msgid": "rp_2",
            "action": "send",
            "from": STAFF,
            "tolist": [CUSTOMER],
            "roomid": "",
            "msgtime": 1603875610000,
            "msgtype": "external_redpacket",
            "redpacket": {"type": 1, "wish": "感谢惠顾", "totalcnt": 1, "totalamount": 100},
        },
        ensure_ascii=False,
    ),
    "news": json.dumps(
        {
            "msgid": "news_1",
            "action": "send",
            "from": "wbROBOT",
            "tolist": [STAFF],
            "roomid": ROOM,
            "msgtime": 1603875610000,
            "msgtype": "news",
            "info": {
                "item": [
                    {
                        "title": "服务通知",
                        "description": "本周优惠",
                        "url": "https://x",
                        "picurl": "",
                    },
                    {"title": "第二条", "url": "https://y"},
                ]
            },
        },
        ensure_ascii=False,
    ),
    "docmsg": json.dumps(
        {
            "msgid": "doc_1",
            "action": "send",
            "from": STAFF,
            "tolist": [CUSTOMER],
            "roomid": "",
            "msgtime": 1603875610000,
            "msgtype": "docmsg",
            "doc": {
                "title": "报价单",
                "doc_creator": STAFF,
                "link_url": "https://doc.weixin.qq.com/x",
            },
        },
        ensure_ascii=False,
    ),
    "meeting": _record(
        "meeting_1",
        "meeting",
        {"topic": "夕会", "starttime": 1603877328, "endtime": 1603880928, "meetingid": 1306387059},
    ),
    "calendar": _record("cal_1", "calendar", {"title": "客户拜访", "remarks": "带合同"}),
    "sphfeed": _record("sph_1", "sphfeed", {"feed_type": 4, "sph_name": "号", "feed_desc": "新品"}),
    "collect": _record("col_1", "collect", {"room_name": "群", "title": "报名表", "details": []}),
    "meeting_voice_call": _record(
        "mvc_1", "meeting_voice_call", {"endtime": 1603875680, "sdkfileid": "MVC"}, voiceid="v1"
    ),
    "brand_new": _record("new_1", "brand_new", {"whatever": [1, {"x": None}]}),
}

EXPECTED: dict[str, tuple[type[ArchiveRecord], str]] = {
    "text": (ArchiveText, "我要退款，否则投诉"),
    "image": (ArchiveMedia, ""),
    "voice": (ArchiveMedia, ""),
    "video": (ArchiveMedia, ""),
    "file": (ArchiveMedia, ""),
    "emotion": (ArchiveMedia, ""),
    "revoke": (ArchiveRevoke, ""),
    "agree": (ArchiveAgree, ""),
    "disagree": (ArchiveAgree, ""),
    "card": (ArchiveCard, ""),
    "location": (
        ArchiveLocation,
        "房地产交易中心(建外SOHO东区) 北京市北京市朝阳区房地产交易中心(建外SOHO东区)",
    ),
    "link": (ArchiveLink, "邀请你加入群聊\n技术支持群，进入可查看详情"),
    "weapp": (ArchiveWeapp, "开始聊天前请仔细阅读服务须知事项\n客户需同意存档聊天记录"),
    "markdown": (ArchiveMarkdown, "请前往系统查看，谢谢。"),
    "mixed": (ArchiveMixed, "你好[微笑]\n\n加我私人微信"),
    "chatrecord": (ArchiveChatRecord, "test\n嵌套的文字"),
    "switch": (ArchiveSwitch, ""),
    "todo": (ArchiveUnknown, "测试待办\n明天回访客户"),
    "vote": (ArchiveUnknown, "周末团建去哪"),
    "redpacket": (ArchiveUnknown, "恭喜发财，大吉大利"),
    "external_redpacket": (ArchiveUnknown, "感谢惠顾"),
    "news": (ArchiveUnknown, "服务通知\n本周优惠\n第二条"),
    "docmsg": (ArchiveUnknown, "报价单"),
    "meeting": (ArchiveUnknown, "夕会"),
    "calendar": (ArchiveUnknown, "客户拜访\n带合同"),
    "sphfeed": (ArchiveUnknown, "新品"),
    "collect": (ArchiveUnknown, "报名表"),
    "meeting_voice_call": (ArchiveUnknown, ""),
    "brand_new": (ArchiveUnknown, ""),
}


def parsed(name: str) -> ArchiveRecord:
    return parse_archive_record(SAMPLES[name])


def test_every_sample_has_an_expectation() -> None:
    assert set(SAMPLES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_model_and_text(name: str) -> None:
    model, text = EXPECTED[name]
    record = parsed(name)
    assert type(record) is model
    assert record.text == text
    assert isinstance(record, ParsedMessage)
    assert record.event is None
    # Every record keeps its raw JSON, whatever its type.
    assert json.loads(record.raw_json) == json.loads(SAMPLES[name])
    assert record.raw == json.loads(SAMPLES[name])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_bytes_parse_alike(name: str) -> None:
    assert parse_archive_record(SAMPLES[name].encode()) == parsed(name)


def test_common_fields() -> None:
    record = parsed("text")
    assert record.msgid == "CAQQluDa4QUY0On2rYSAgAMgzPrShAE="
    assert (record.action, record.from_user, record.tolist, record.roomid) == (
        "send",
        CUSTOMER,
        (STAFF,),
        "",
    )
    assert (record.msgtime, record.create_time) == (1603875610123, 1603875610)
    assert record.msgtype == record.msg_type == "text"
    assert parsed("mixed").roomid == ROOM


def test_media_fields() -> None:
    image, voice, file, emotion = (parsed(n) for n in ("image", "voice", "file", "emotion"))
    assert isinstance(image, ArchiveMedia) and isinstance(voice, ArchiveMedia)
    assert isinstance(file, ArchiveMedia) and isinstance(emotion, ArchiveMedia)
    assert (image.kind, image.sdkfileid, image.md5sum, image.filesize, image.filename) == (
        "image",
        FILEID,
        "50de8e5ae8ffe4f1df7a93841f71993a",
        70961,
        "",
    )
    assert (voice.kind, voice.filesize) == ("voice", 6810)
    assert (emotion.kind, emotion.filesize) == ("emotion", 962604)
    assert (file.filename, file.filesize) == ("[E仁堂]数据需求文档.docx", 18245)
    assert media_parts(file) == (
        MediaRef(
            "file",
            FILEID + "f",
            "ff893900f24e55e216e617a40e5c4648",
            18245,
            "[E仁堂]数据需求文档.docx",
        ),
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("image", [("image", FILEID, 70961, "")]),
        ("voice", [("voice", FILEID + "v", 6810, "")]),
        ("video", [("video", FILEID + "vi", 15169724, "")]),
        ("emotion", [("emotion", FILEID + "e", 962604, "")]),
        ("mixed", [("image", "MX1", 13177, "")]),
        ("chatrecord", [("image", "CR1", 1024, ""), ("file", "CR2", 9, "a.pdf")]),
        ("text", []),
        ("revoke", []),
        ("meeting_voice_call", []),
    ],
)
def test_media_parts(name: str, expected: list[tuple[str, str, int, str]]) -> None:
    refs = media_parts(parsed(name))
    assert [(r.kind, r.sdkfileid, r.size, r.filename) for r in refs] == expected


def test_media_without_fileid_names_no_file() -> None:
    record = parse_archive_record(_record("m1", "image", {"md5sum": "x"}))
    assert isinstance(record, ArchiveMedia) and media_parts(record) == ()


def test_revoke_agree_disagree_switch() -> None:
    revoke, agree, disagree, switch = (parsed(n) for n in ("revoke", "agree", "disagree", "switch"))
    assert isinstance(revoke, ArchiveRevoke)
    assert (revoke.action, revoke.pre_msgid) == ("recall", "14822339130656386894_1603875600")
    assert isinstance(agree, ArchiveAgree) and isinstance(disagree, ArchiveAgree)
    assert (agree.agreed, agree.userid, agree.agree_time) == (True, CUSTOMER, 1603875826656)
    assert (disagree.agreed, disagree.agree_time) == (False, 1594197581203)
    assert disagree.userid == "wo2rIjDAAAFYfy2bOZf4qrk-5FhTmm3Q"
    assert isinstance(switch, ArchiveSwitch)
    assert (switch.action, switch.msgtype, switch.user, switch.time) == (
        "switch",
        "switch",
        STAFF,
        1554119421840,
    )
    assert (switch.from_user, switch.msgtime, switch.create_time) == (
        STAFF,
        1554119421840,
        1554119421,
    )
    assert switch.tolist == () and switch.dedupe_key == "ma:125289002219525886280"


def test_card_location_link_weapp_fields() -> None:
    card, location, link, weapp = (parsed(n) for n in ("card", "location", "link", "weapp"))
    assert isinstance(card, ArchiveCard) and (card.corpname, card.userid) == (
        "北京易企秀科技有限公司",
        CUSTOMER,
    )
    assert isinstance(location, ArchiveLocation)
    assert (location.latitude, location.longitude, location.zoom) == (
        39.911125799,
        116.586285899,
        15,
    )
    assert isinstance(link, ArchiveLink) and link.link_url.startswith("https://work.weixin")
    assert isinstance(weapp, ArchiveWeapp) and (weapp.username, weapp.displayname) == (
        "xxx@app",
        "服务须知",
    )


def test_mixed_parts() -> None:
    mixed = parsed("mixed")
    assert isinstance(mixed, ArchiveMixed)
    assert [p.kind for p in mixed.parts] == ["text", "image", "text"]
    assert mixed.parts[0].body == {"content": "你好[微笑]\n"}
    assert mixed.parts[1].text == ""


def test_chatrecord_parts() -> None:
    record = parsed("chatrecord")
    assert isinstance(record, ArchiveChatRecord)
    assert record.title == "群聊"
    first, image, nested = record.parts
    assert (first.type, first.kind, first.msgtime, first.from_chatroom) == (
        "ChatRecordText",
        "text",
        1603875610,
        False,
    )
    assert image.from_chatroom is True and image.media[0].sdkfileid == "CR1"
    assert nested.kind == "mixed" and nested.text == "嵌套的文字"


def test_markdown_under_its_own_key_too() -> None:
    record = parse_archive_record(_record("md_2", "markdown", {"content": "**加粗**"}))
    assert isinstance(record, ArchiveMarkdown) and record.text == "**加粗**"


def test_parts_that_cannot_be_read_give_nothing() -> None:
    record = parse_archive_record(
        _record(
            "mixed_bad",
            "mixed",
            {
                "item": [
                    {"type": "text", "content": '{"content": "截断的'},
                    {"type": "text", "content": "[1, 2]"},
                    {"type": "text", "content": '{"content": 5}'},
                    {"type": "image", "content": '{"sdkfileid": 7}'},
                    {"type": "text", "content": {"content": "an object, not a string"}},
                    {"type": "mixed", "content": '{"item": "nope"}'},
                    {"type": "text"},
                ]
            },
        )
    )
    assert isinstance(record, ArchiveMixed)
    assert record.text == "an object, not a string"
    assert media_parts(record) == ()


def test_nesting_is_bounded() -> None:
    content: dict[str, Any] = {"content": "deep"}
    kind = "text"
    # Each level escapes the one inside: 12 levels are 4 KB, well past the 8 that are read.
    for _ in range(12):
        content = {"item": [{"type": kind, "content": json.dumps(content)}]}
        kind = "mixed"
    record = parse_archive_record(_record("deep", "mixed", content))
    assert record.text == "" and media_parts(record) == ()
    shallow = parse_archive_record(
        _record(
            "shallow",
            "mixed",
            {
                "item": [
                    {
                        "type": "mixed",
                        "content": json.dumps(
                            {"item": [{"type": "text", "content": '{"content": "two down"}'}]}
                        ),
                    }
                ]
            },
        )
    )
    assert shallow.text == "two down"


# ---- dedupe keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msgid", "plain"),
    [
        ("CAQQluDa4QUY0On2rYSAgAMgzPrShAE=", True),
        ("17952229780246929345_1594197637_external", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("with space", False),
        ("中文id", False),
        ("tab\tid", False),
    ],
)
def test_dedupe_key_bounds(msgid: str, plain: bool) -> None:
    key = parse_archive_record(_record(msgid, "text", {"content": "x"})).dedupe_key
    if plain:
        assert key == f"ma:{msgid}"
    else:
        assert key.startswith("mah:") and len(key) == 68
    assert len(key) <= 68 and key.isascii() and key.isprintable()


def test_dedupe_key_is_stable_and_distinct() -> None:
    a = parse_archive_record(_record("中文id", "text", {"content": "x"})).dedupe_key
    b = parse_archive_record(_record("中文id", "text", {"content": "different"})).dedupe_key
    c = parse_archive_record(_record("中文id2", "text", {"content": "x"})).dedupe_key
    assert a == b != c


def test_dedupe_key_of_a_lone_surrogate() -> None:
    record = parse_archive_record('{"msgid": "\\ud800", "msgtype": "text"}')
    assert record.dedupe_key.startswith("mah:")


def test_direct_construction_without_msgid_hashes_raw() -> None:
    record = ArchiveText(msgid="", msgtype="text", raw={"a": 1}, content="x")
    assert record.dedupe_key.startswith("mah:") and record.text == "x"


# ---- lenient JSON, strict types -----------------------------------------------------------------


def test_raw_control_characters_are_read() -> None:
    text = '{"msgid":"c1","msgtype":"text","text":{"content":"a\x00b\x07c\x1bd"}}'
    assert parse_archive_record(text).text == "a\x00b\x07c\x1bd"


def test_missing_fields_take_defaults() -> None:
    record = parse_archive_record('{"msgid": "only", "tolist": null, "text": null}')
    assert type(record) is ArchiveUnknown
    assert (record.action, record.from_user, record.tolist, record.msgtime, record.msgtype) == (
        "",
        "",
        (),
        0,
        "",
    )
    assert parse_archive_record('{"msgid": "t", "msgtype": "text"}').text == ""


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"text"', "not a JSON object"),
        ('{"msgid": NaN}', "not JSON"),
        ('{"msgid": 1e999, "x": Infinity}', "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
        ('{"action": "send"}', "msgid is missing"),
        ('{"msgid": ""}', "msgid is missing"),
        ('{"msgid": 12}', "msgid should be a string"),
        ('{"msgid": "m", "msgtime": "1603875610"}', "msgtime should be an integer"),
        ('{"msgid": "m", "msgtime": true}', "msgtime should be an integer"),
        ('{"msgid": "m", "msgtime": 9223372036854775808}', "msgtime is out of range"),
        ('{"msgid": "m", "tolist": "zhangsan"}', "tolist should be an array"),
        ('{"msgid": "m", "tolist": ["a", 2]}', "tolist[1] should be a string"),
        ('{"msgid": "m", "from": ["a"]}', "from should be a string"),
        ('{"msgid": "m", "msgtype": "text", "text": "hi"}', "text should be an object"),
        (
            '{"msgid": "m", "msgtype": "text", "text": {"content": 5}}',
            "text.content should be a string",
        ),
        ('{"msgid": "m", "msgtype": "image", "image": {"filesize": "9"}}', "image.filesize"),
        (
            '{"msgid": "m", "msgtype": "mixed", "mixed": {"item": [1]}}',
            "mixed.item[0] should be an object",
        ),
        (
            '{"msgid": "m", "msgtype": "chatrecord", "chatrecord": {"item": [{"type": "t", "from_chatroom": "no"}]}}',
            "chatrecord.item[0].from_chatroom should be a boolean",
        ),
        ('{"msgid": "m", "action": "switch", "time": "x"}', "time should be an integer"),
    ],
)
def test_unreadable_records_are_10002(text: str | bytes, field: str) -> None:
    with pytest.raises(RecordUndecryptable) as caught:
        parse_archive_record(text)
    assert caught.value.errcode == 10002
    assert field in str(caught.value)
    # No value travels with the error, not even as its context.
    assert caught.value.__context__ is None or not isinstance(
        caught.value.__context__, json.JSONDecodeError
    )


def test_error_names_no_value() -> None:
    with pytest.raises(RecordUndecryptable) as caught:
        parse_archive_record('{"msgid": "m", "msgtype": "text", "text": {"content": ["机密内容"]}}')
    assert "机密内容" not in str(caught.value)
    with pytest.raises(RecordUndecryptable) as caught:
        parse_archive_record('{"msgid": "m", "text": "机密内容')
    assert "机密内容" not in repr(caught.value) and caught.value.__context__ is None


def test_unknown_types_keep_any_body_shape() -> None:
    record = parse_archive_record(
        '{"msgid": "m", "msgtype": "voiptext", "voiptext": "not an object"}'
    )
    assert type(record) is ArchiveUnknown and record.text == ""
    odd = parse_archive_record('{"msgid": "m", "msgtype": "todo", "todo": ["x"]}')
    assert odd.text == ""
    news = parse_archive_record('{"msgid": "m", "msgtype": "news", "info": {"item": "x"}}')
    assert news.text == ""


# ---- the registry and the models ---------------------------------------------------------------


def test_registry_keys() -> None:
    keys = {t for t, _ in ARCHIVE_MODELS.models}
    assert keys == {
        "text",
        "markdown",
        "image",
        "voice",
        "video",
        "file",
        "emotion",
        "link",
        "weapp",
        "location",
        "card",
        "revoke",
        "agree",
        "disagree",
        "switch",
        "mixed",
        "chatrecord",
    }
    assert ARCHIVE_MODELS.lookup("nothing") is ArchiveUnknown


def test_models_are_frozen_and_hashable() -> None:
    record = parsed("mixed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.msgid = "other"  # type: ignore[misc]
    assert isinstance(hash(dataclasses.replace(record, raw={})), int)
    assert ArchivePart(type="text", content='{"content":"x"}').text == "x"
    assert "raw" not in repr(record)


def test_same_record_twice_is_equal() -> None:
    assert parsed("chatrecord") == parsed("chatrecord")


# ---- audience ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("userid", "external"),
    [
        (CUSTOMER, True),
        ("wo2rIjDAAAFYfy2bOZf4qrk-5FhTmm3Q", True),
        ("wbgPmZCAAAjyAm1g3DzaPgSEsdSJxS3Q", True),
        ("zhangsan", False),
        ("XuJinSheng", False),
        ("", False),
        ("WMupper", False),
    ],
)
def test_is_external_id(userid: str, external: bool) -> None:
    assert is_external_id(userid) is external
