"""WeCom payloads for alerts: template card shape and limits, robot markdown, digest."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import AlertsConfig
from monitor.alerts.cards import (
    build_alert_card,
    build_digest,
    build_escalation_card,
    build_robot_markdown,
    excerpt,
    make_task_id,
    truncate,
)
from monitor.alerts.policy import AlertPolicy, AlertSubject, OpenAlert
from rules.models import Audience, Hit, SensitiveGroup, Severity, Word

T0 = datetime(2026, 11, 23, 10, 2, tzinfo=UTC)
GROUPS = {
    "customer_risk": SensitiveGroup(
        "customer_risk", Severity.HIGH, Audience.CUSTOMER, (Word("维权"),)
    ),
    "staff_misconduct": SensitiveGroup(
        "staff_misconduct", Severity.HIGH, Audience.STAFF, (Word("红包"),)
    ),
}
POLICY = AlertPolicy(AlertsConfig(managers=("mgr1",)), GROUPS)
URL = "https://sentinel.example.com/review/conversations/c1"


def subject(text: str, word: str, author: Audience = Audience.CUSTOMER) -> AlertSubject:
    group = "customer_risk" if author is Audience.CUSTOMER else "staff_misconduct"
    start = text.index(word)
    hit = Hit(word, start, start + len(word), group, Severity.HIGH)
    return AlertSubject("c1", "wmCUST01", "张三", "lisi", author, text, (hit,), T0)


def alert_of(s: AlertSubject) -> OpenAlert:
    return POLICY.on_hits(s, None).alert


CUSTOMER = subject("你们这个质量太差了，我电话13812345678，再不退款我就去维权，找消协！", "维权")


def test_alert_card_shape() -> None:
    alert = alert_of(CUSTOMER)
    card = build_alert_card(
        alert, CUSTOMER, review_url=URL, task_id=make_task_id(alert.alert_id, 1)
    )
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["title"] == "客户维权风险"
    assert "维权" in card["main_title"]["desc"]
    assert "【维权】" in card["sub_title_text"]
    assert "138****5678" in card["sub_title_text"]
    assert "13812345678" not in json.dumps(card, ensure_ascii=False)
    rows = {r["keyname"]: r["value"] for r in card["horizontal_content_list"]}
    assert rows == {
        "客户": "张三（wmCUST01）",
        "员工": "lisi",
        "命中词": "维权",
        "时间": "11-23 10:02",
    }
    assert card["card_action"] == {"type": 1, "url": URL}
    assert [b["text"] for b in card["button_list"]] == ["认领", "已处理", "误报"]
    keys = [b["key"] for b in card["button_list"]]
    assert keys == [f"{a}:{alert.alert_id}" for a in ("claim", "resolve", "false_positive")]
    assert all(1 <= b["style"] <= 4 for b in card["button_list"])


def test_staff_card_title_and_count_row() -> None:
    s = subject("加我微信发个红包给你优惠", "红包", Audience.STAFF)
    alert = replace(alert_of(s), count=4, first_at=T0 - timedelta(minutes=5))
    card = build_alert_card(alert, s, review_url=URL, task_id="t1")
    assert card["main_title"]["title"] == "员工违规风险"
    assert card["sub_title_text"].startswith("员工：")
    rows = {r["keyname"]: r["value"] for r in card["horizontal_content_list"]}
    assert rows["累计"] == "4 次（自 09:57 起）"


def test_escalation_card_says_so() -> None:
    alert = alert_of(CUSTOMER)
    card = build_escalation_card(alert, CUSTOMER, waited_s=1830, review_url=URL, task_id="t-e")
    assert card["main_title"]["title"].startswith("【升级】")
    assert card["main_title"]["desc"] == "超过 30 分钟无人认领，已升级"


@pytest.mark.parametrize("bad", ["", "has space", "中文", "x" * 129, "a/b"])
def test_invalid_task_id_rejected(bad: str) -> None:
    alert = alert_of(CUSTOMER)
    with pytest.raises(ValueError, match="task_id"):
        build_alert_card(alert, CUSTOMER, review_url=URL, task_id=bad)


def test_make_task_id_is_valid_and_distinct() -> None:
    ids = {make_task_id("a20261123-ab/cd 中", n) for n in range(3)}
    assert len(ids) == 3
    assert all(re.fullmatch(r"[0-9A-Za-z_\-@]{1,128}", i) for i in ids)
    assert len(make_task_id("x" * 300, 1).encode()) <= 128


_chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=400)


@given(_chinese, _chinese, st.text(max_size=60))
def test_card_limits_hold_for_long_chinese(before: str, after: str, name: str) -> None:
    text = before + "维权" + after
    s = replace(subject(text, "维权"), customer_name=name)
    alert = replace(alert_of(s), words=("维权", *(before[i : i + 4] for i in range(0, 80, 4))))
    card = build_alert_card(alert, s, review_url=URL, task_id="t1")
    assert len(card["main_title"]["title"]) <= 36
    assert len(card["main_title"]["desc"]) <= 44
    assert len(card["sub_title_text"]) <= 112
    assert len(card["horizontal_content_list"]) <= 6
    for row in card["horizontal_content_list"]:
        assert len(row["keyname"]) <= 5 and len(row["value"]) <= 26
    assert all(len(b["key"].encode()) <= 1024 for b in card["button_list"])
    assert "【维权】" in card["sub_title_text"]  # the matched span stays visible
    md = build_robot_markdown(alert, s, URL)
    assert len(md.encode("utf-8")) <= 4096
    assert md.endswith(f"[查看会话]({URL})")


def test_excerpt_window_and_lines() -> None:
    text = "前" * 200 + "维权" + "后" * 200
    out = excerpt(subject(text, "维权"), width=40)
    assert out.startswith("…") and out.endswith("…")
    assert "【维权】" in out
    many = excerpt(subject("一\n二\n三\n四\n我要维权", "维权"))
    assert many.count("\n") == 2 and "【维权】" in many


def test_robot_markdown_is_safe_and_masked() -> None:
    s = subject("[点我](http://evil) <font>身份证11010519491231002X 我要维权", "维权")
    md = build_robot_markdown(alert_of(s), s, URL)
    assert "](http://evil)" not in md and "<font>" not in md
    assert "11010519491231002X" not in md
    assert md.startswith('## <font color="warning">客户维权风险</font>')


def test_digest_lists_alerts_within_2048_bytes() -> None:
    alerts = [replace(alert_of(CUSTOMER), count=i + 1) for i in range(3)]
    text = build_digest(alerts, review_url=URL)
    assert text.splitlines()[0] == "风险提醒汇总：发送过于频繁，以下 3 条已合并"
    assert "1. 客户维权风险 · 张三（wmCUST01） · 「维权」×1 · 11-23 10:02" in text
    assert URL in text
    many = build_digest([replace(alerts[0], customer_name="客" * 40)] * 200)
    assert len(many.encode("utf-8")) <= 2048
    assert re.search(r"……另有 \d+ 条", many)


def test_truncate_by_characters() -> None:
    assert truncate("客户维权风险", 6) == "客户维权风险"
    assert truncate("客户维权风险提醒", 6) == "客户维权风…"
