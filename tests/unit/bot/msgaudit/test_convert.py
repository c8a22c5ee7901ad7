"""Who a record is between and how the pipeline sees it: the sender decides the audience, a 1:1
chat is the same conversation whichever side writes, a group chat is its own conversation."""

from __future__ import annotations

import json
from typing import Any

from bot.msgaudit.convert import parties_of, to_chat_message
from rules.models import Audience
from wecom_sdk.messages import parse_archive_record


def record(sender: str, tolist: list[str], msgtype: str = "text", **body: Any) -> Any:
    message = {
        "msgid": f"m-{sender}-{msgtype}",
        "action": "send",
        "from": sender,
        "tolist": tolist,
        "roomid": body.pop("roomid", ""),
        "msgtime": 1_780_000_000_123,
        "msgtype": msgtype,
        msgtype: body or {"content": "你好"},
    }
    return parse_archive_record(json.dumps(message, ensure_ascii=False))


def test_a_one_to_one_chat_is_one_conversation_whoever_writes() -> None:
    staff_says = parties_of(record("zhangsan", ["wmCUST"]))
    customer_says = parties_of(record("wmCUST", ["zhangsan"]))
    assert staff_says == customer_says
    assert (staff_says.conversation_id, staff_says.staff_userid, staff_says.customer_id) == (
        "ma:zhangsan:wmCUST",
        "zhangsan",
        "wmCUST",
    )


def test_the_sender_decides_the_audience() -> None:
    staff = to_chat_message(record("zhangsan", ["woOTHER"]), customer_name="王", staff_name="张三")
    customer = to_chat_message(record("wmCUST", ["zhangsan"]))
    assert (staff.author, staff.from_user, staff.customer_id) == (
        Audience.STAFF,
        "zhangsan",
        "woOTHER",
    )
    assert (staff.customer_name, staff.staff_name, staff.channel) == ("王", "张三", "msgaudit")
    assert customer.author is Audience.CUSTOMER and customer.text == "你好"
    assert customer.create_time == 1_780_000_000  # msgtime is in ms
    assert customer.dedupe_key == "ma:m-wmCUST-text"


def test_group_chats_and_chats_between_members() -> None:
    group = parties_of(record("wmCUST", ["zhangsan", "lisi"], roomid="wrROOM"))
    assert group.conversation_id == "ma:room:wrROOM"
    assert (group.customer_id, group.staff_userid) == ("wmCUST", "")
    in_group = parties_of(record("lisi", ["zhangsan", "wmCUST"], roomid="wrROOM"))
    assert in_group.conversation_id == "ma:room:wrROOM" and in_group.staff_userid == "lisi"
    members = parties_of(record("zhangsan", ["lisi"]))
    reply = parties_of(record("lisi", ["zhangsan"]))
    assert members.conversation_id == reply.conversation_id == "ma:lisi:zhangsan"
    assert (members.staff_userid, reply.staff_userid, members.customer_id) == (
        "zhangsan",
        "lisi",
        "",
    )


def test_system_records_carry_no_words_to_inspect() -> None:
    agree = to_chat_message(record("wmCUST", [], "agree", userid="wmCUST", agree_time=1))
    assert agree.author is Audience.ANY and agree.text == ""
    revoke = to_chat_message(record("zhangsan", ["wmCUST"], "revoke", pre_msgid="m0"))
    assert revoke.text == "" and revoke.msg_type == "revoke"
