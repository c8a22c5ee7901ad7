"""The kf pure core: budget slots, reply/hand-off planning, kf bodies and msgids, item
conversion, and the [kf] config section."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import ConfigError, KfConfig, load_config
from bot.kf.bodies import action_msgid, kf_body, plain_text
from bot.kf.budget import WINDOW_S, Budget, Value
from bot.kf.convert import conversation_id, from_item, from_unparsable, key_of_msgid
from bot.kf.handoff import handoff_reason, transfer_target
from bot.kf.plan import Action, CustomerView, Question, plan_customer
from bot.kf.welcome import welcome_body
from rules.models import (
    Audience,
    Hit,
    Inspection,
    LinkReply,
    MenuOption,
    MenuReply,
    ReplyRule,
    Severity,
    TextReplyContent,
)
from tests.support.app import write_config
from tests.support.paths import REPO
from wecom_sdk.messages.kf import parse_kf_item
from wecom_sdk.testing.fake_api import kf_event, kf_text

NOW = 1_800_000_000.0
KF = "wkUNIT"


# -- budget --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "last_allowed_slot"), [(Value.LOW, 3), (Value.NORMAL, 4), (Value.HANDOFF, 5)]
)
def test_budget_slots(value: Value, last_allowed_slot: int) -> None:
    for used in range(6):
        budget = Budget(window_start=int(NOW) - 10, used=used)
        assert budget.allows(value, NOW) == (used + 1 <= last_allowed_slot)


def test_budget_window_closes_after_48h_and_needs_a_customer_message() -> None:
    assert not Budget(0).allows(Value.HANDOFF, NOW)
    assert Budget(int(NOW - WINDOW_S + 1)).allows(Value.HANDOFF, NOW)
    assert not Budget(int(NOW - WINDOW_S)).allows(Value.HANDOFF, NOW)


# -- planning --------------------------------------------------------------------------------


def rule(name: str, *, priority: int = 50, handoff: bool = False, cooldown_s: int = 0) -> ReplyRule:
    return ReplyRule(
        name=name,
        keywords=(name,),
        match="contains",
        reply=TextReplyContent(f"答复：{name}"),
        priority=priority,
        handoff=handoff,
        cooldown_s=cooldown_s,
    )


def question(
    n: int,
    text: str,
    reply: ReplyRule | None = None,
    hits: tuple[Hit, ...] = (),
    *,
    age: float = 1,
    menu_id: str = "",
) -> Question:
    return Question(
        f"kf:m{n}",
        f"m{n}",
        int(NOW - age),
        text,
        Inspection(hits, reply, "v1"),
        menu_id,
    )


def view(
    *, state: int = 1, used: int = 0, unanswered: int = 0, sent: dict[str, float] | None = None
) -> CustomerView:
    return CustomerView(KF, "wmC", state, unanswered, Budget(int(NOW - 5), used), sent or {})


SETTINGS = KfConfig()


def kinds(plan_actions: list[Action]) -> list[str]:
    return [a.kind for a in plan_actions]


def test_a_matching_rule_is_answered_once_per_message() -> None:
    plan = plan_customer(view(), [question(1, "发货", rule("发货"))], SETTINGS, NOW)
    assert plan.decisions == [("kf:m1", "replied")]
    (action,) = plan.actions
    assert (action.kind, action.msgtype, action.body) == (
        "reply",
        "text",
        {"content": "答复：发货"},
    )
    assert action.msgid == action_msgid("reply", KF, "m1") and action.rule == "发货"


def test_handoff_rule_sends_its_answer_then_transfers_and_stops_replying() -> None:
    questions = [
        question(1, "转人工", rule("转人工", handoff=True)),
        question(2, "发货", rule("发货")),
    ]
    plan = plan_customer(view(), questions, SETTINGS, NOW)
    assert plan.decisions == [("kf:m1", "handoff:rule"), ("kf:m2", "with_human")]
    assert kinds(plan.actions) == ["handoff", "transfer"]
    assert plan.actions[0].body == {"content": "答复：转人工"}
    assert plan.actions[1].body == {"service_state": 2, "servicer_userid": ""}


def test_handoff_keyword_and_servicer() -> None:
    settings = replace(SETTINGS, handoff_servicer="zhangsan")
    plan = plan_customer(view(), [question(1, "我要找人工客服！")], settings, NOW)
    assert plan.decisions == [("kf:m1", "handoff:keyword")]
    assert plan.actions[0].body == {"content": settings.handoff_text}
    assert plan.actions[1].body == {"service_state": 3, "servicer_userid": "zhangsan"}
    assert transfer_target(SETTINGS) == (2, "")


def test_high_risk_hit_hands_off_unless_disabled() -> None:
    hit = Hit("投诉", 0, 2, "客户维权风险", Severity.HIGH)
    low = Hit("差评", 0, 2, "客户退款纠纷", Severity.MEDIUM)
    assert plan_customer(view(), [question(1, "投诉", None, (hit,))], SETTINGS, NOW).decisions == [
        ("kf:m1", "handoff:risk")
    ]
    assert handoff_reason("差评", Inspection((low,), None, "v"), SETTINGS) is None
    off = replace(SETTINGS, handoff_on_severity="")
    assert handoff_reason("投诉", Inspection((hit,), None, "v"), off) is None


def test_unanswered_questions_hand_off_at_the_configured_count() -> None:
    questions = [question(n, f"问题{n}") for n in range(1, 5)]
    plan = plan_customer(view(unanswered=0), questions, SETTINGS, NOW)
    assert [o for _, o in plan.decisions] == [
        "unanswered",
        "unanswered",
        "handoff:unanswered",
        "with_human",
    ]
    never = replace(SETTINGS, handoff_after_unanswered=0)
    plan = plan_customer(view(unanswered=10), questions, never, NOW)
    assert not plan.actions and plan.unanswered == 14


def test_a_reply_resets_the_unanswered_count() -> None:
    plan = plan_customer(
        view(unanswered=2), [question(1, "发货", rule("发货")), question(2, "嗯")], SETTINGS, NOW
    )
    assert [o for _, o in plan.decisions] == ["replied", "unanswered"]
    assert plan.unanswered == 1


def test_budget_keeps_slot_4_from_low_value_and_slot_5_for_handoff() -> None:
    greeting = rule("你好", priority=5)  # low-value (priority <= 10)
    plan = plan_customer(view(used=3), [question(1, "你好", greeting)], SETTINGS, NOW)
    assert plan.decisions == [("kf:m1", "budget")] and not plan.actions
    plan = plan_customer(view(used=3), [question(1, "发货", rule("发货"))], SETTINGS, NOW)
    assert plan.decisions == [("kf:m1", "replied")]
    plan = plan_customer(view(used=4), [question(1, "发货", rule("发货"))], SETTINGS, NOW)
    assert plan.decisions == [("kf:m1", "budget")]
    plan = plan_customer(view(used=4), [question(1, "转人工")], SETTINGS, NOW)
    assert kinds(plan.actions) == ["handoff", "transfer"]
    # All five spent: the customer is still transferred, without a message.
    plan = plan_customer(view(used=5), [question(1, "转人工")], SETTINGS, NOW)
    assert kinds(plan.actions) == ["transfer"]


def test_seven_questions_in_one_page_never_plan_a_sixth_message() -> None:
    questions = [question(n, f"q{n}", rule(f"q{n}")) for n in range(1, 8)]
    plan = plan_customer(view(), questions, SETTINGS, NOW)
    sends = [a for a in plan.actions if a.kind != "transfer"]
    assert len(sends) == 5
    assert kinds(plan.actions) == ["reply"] * 4 + ["handoff", "transfer"]
    assert [o for _, o in plan.decisions] == ["replied"] * 4 + [
        "budget",
        "budget",
        "handoff:unanswered",
    ]


def test_cooldown_old_messages_human_sessions_and_menu_repeats() -> None:
    cooling = rule("发货", cooldown_s=300)
    plan = plan_customer(
        view(sent={"发货": NOW - 10}), [question(1, "发货", cooling)], SETTINGS, NOW
    )
    assert plan.decisions == [("kf:m1", "cooldown")] and plan.unanswered == 0
    plan = plan_customer(view(), [question(1, "发货", rule("发货"), age=7200)], SETTINGS, NOW)
    assert plan.decisions == [("kf:m1", "too_old")]
    for state in (2, 3, 4):
        plan = plan_customer(view(state=state), [question(1, "人工")], SETTINGS, NOW)
        assert plan.decisions == [("kf:m1", "with_human")] and not plan.actions
    menu = ReplyRule(
        "退换货", ("退货",), "contains", MenuReply("选", (MenuOption("r", "申请退货"),))
    )
    clicked = question(1, "申请退货", menu, menu_id="r")
    assert plan_customer(view(), [clicked], SETTINGS, NOW).decisions == [("kf:m1", "unanswered")]


# -- bodies, ids, welcome ----------------------------------------------------------------------


def test_kf_bodies_and_plain_text() -> None:
    menu = MenuReply("请选择", (MenuOption("a", "退货"), MenuOption("b", "换货")), "或回复人工")
    msgtype, body = kf_body(menu)
    assert msgtype == "msgmenu"
    assert body == {
        "head_content": "请选择",
        "list": [
            {"type": "click", "click": {"id": "a", "content": "退货"}},
            {"type": "click", "click": {"id": "b", "content": "换货"}},
        ],
        "tail_content": "或回复人工",
    }
    assert plain_text(msgtype, body) == "请选择\n退货\n换货\n或回复人工"
    link = kf_body(LinkReply("优惠", "https://example.com/p", "看看"))
    assert link == ("text", {"content": "优惠\n看看\nhttps://example.com/p"})


def test_action_msgids_are_stable_distinct_and_valid() -> None:
    ids = {action_msgid(kind, KF, "m1") for kind in ("reply", "handoff", "transfer", "welcome")}
    assert len(ids) == 4
    assert all(re.fullmatch(r"[0-9a-zA-Z_-]{32}", i) for i in ids)
    assert action_msgid("reply", KF, "m1") == action_msgid("reply", KF, "m1")
    assert action_msgid("reply", KF, "m1") != action_msgid("reply", "wkOTHER", "m1")


def test_welcome_body_text_or_menu() -> None:
    assert welcome_body(replace(SETTINGS, welcome_menu=())) == (
        "text",
        {"content": SETTINGS.welcome_text},
    )
    msgtype, body = welcome_body(SETTINGS)
    assert msgtype == "msgmenu" and body["head_content"] == SETTINGS.welcome_text
    assert [i["click"] for i in body["list"]] == [
        {"id": "w1", "content": "查询物流"},
        {"id": "w2", "content": "退换货"},
        {"id": "w3", "content": "人工客服"},
    ]


# -- conversion -------------------------------------------------------------------------------


def test_customer_staff_and_system_items_convert_with_their_author() -> None:
    customer = from_item(parse_kf_item(kf_text("m1", "wmC", "你好", open_kfid=KF)), KF)
    assert (customer.author, customer.from_user, customer.customer_id) == (
        Audience.CUSTOMER,
        "wmC",
        "wmC",
    )
    assert customer.conversation_id == conversation_id(KF, "wmC") == f"kf:{KF}:wmC"
    assert (customer.channel, customer.dedupe_key, customer.text) == ("kf", "kf:m1", "你好")
    staff_item = kf_text("m2", "wmC", "加我微信", open_kfid=KF, origin=5, servicer="zhangsan")
    staff = from_item(parse_kf_item(staff_item), KF)
    assert (staff.author, staff.from_user, staff.staff_userid) == (
        Audience.STAFF,
        "zhangsan",
        "zhangsan",
    )
    event = from_item(parse_kf_item(kf_event("m3", "enter_session", open_kfid=KF, user="wmC")), KF)
    assert (event.author, event.event, event.msg_type, event.text) == (
        Audience.ANY,
        "enter_session",
        "event",
        "",
    )
    assert event.conversation_id == f"kf:{KF}:wmC"
    assert key_of_msgid("m1") == "kf:m1"


def test_unparsable_items_are_kept_raw_with_a_stable_key() -> None:
    raw = {"msgid": 7, "msgtype": "text", "text": "not an object", "external_userid": "wmC"}
    first, second = from_unparsable(raw, KF), from_unparsable(dict(raw), KF)
    assert first.dedupe_key == second.dedupe_key and first.dedupe_key.startswith("kfbad:")
    assert '"not an object"' in first.raw and first.conversation_id == f"kf:{KF}:wmC"


# -- config -------------------------------------------------------------------------------------


def test_kf_config_defaults_and_validation(tmp_path: Path, sqlite_url: str) -> None:
    assert load_config(write_config(tmp_path, sqlite_url), {}).kf == KfConfig()
    bad = {
        "handoff_on_severity": '"huge"',
        "handoff_after_unanswered": "-1",
        "welcome_menu": "[" + ", ".join(['"x"'] * 11) + "]",
        "handoff_keywords": '[""]',
        "enabled": '"yes"',
        "pull_interval_s": "0",
        "welcome_text": '""',
    }
    for key, value in bad.items():
        path = write_config(tmp_path, sqlite_url, extra=f"[kf]\n{key} = {value}\n")
        with pytest.raises(ConfigError, match=re.escape(f"[kf].{key}")):
            load_config(path, {})
    good = write_config(
        tmp_path, sqlite_url, extra='[kf]\nhandoff_servicer = "zhangsan"\nwelcome_menu = []\n'
    )
    kf = load_config(good, {}).kf
    assert kf.handoff_servicer == "zhangsan" and kf.welcome_menu == ()


def test_every_kf_key_is_documented_in_the_example() -> None:
    example = (REPO / "config.example.toml").read_text("utf-8")
    section = example.split("[kf]\n", 1)[1].split("\n[", 1)[0]
    for name in KfConfig.__dataclass_fields__:
        assert f"\n{name} = " in "\n" + section, name
    assert load_config(REPO / "config.example.toml", {}).kf == (KfConfig())
