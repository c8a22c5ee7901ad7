"""Render alerts as WeCom payloads (pure): template cards, robot markdown, rate-limit digests.

Field limits follow WeCom's template_card docs (doc 90236; "建议不超过" = longer text is cut off on the
phone): main title 36 chars, its desc 44, ``sub_title_text`` 112, ``horizontal_content_list`` ≤ 6 rows
with keyname ≤ 5 and value ≤ 26 chars, button text ≤ 10, ``task_id`` ``[0-9A-Za-z_-@]`` ≤ 128 bytes,
button ``key`` ≤ 1024 bytes. We cut by characters and end with "…" so Chinese text is never split mid
code point. All customer and staff text is masked (``monitor.alerts.masking``) before it leaves the archive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.alerts.masking import mask_sensitive
from monitor.alerts.policy import AlertKind, AlertSubject, ClickAction, OpenAlert, button_key
from rules.models import Severity

__all__ = [
    "AlertWording",
    "build_alert_card",
    "build_digest",
    "build_escalation_card",
    "build_robot_markdown",
    "excerpt",
    "make_task_id",
    "truncate",
]

TITLE_MAX = 36
DESC_MAX = 44
SUB_TITLE_MAX = 112
KEYNAME_MAX = 5
VALUE_MAX = 26
TASK_ID_MAX_BYTES = 128
KEY_MAX_BYTES = 1024
ROBOT_MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048

_TASK_ID_RE = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
_BUTTONS = ((ClickAction.CLAIM, "认领", 1), (ClickAction.RESOLVE, "已处理", 2))
_FALSE_POSITIVE = (ClickAction.FALSE_POSITIVE, "误报", 3)


@dataclass(frozen=True, slots=True)
class AlertWording:
    """Titles per (kind, severity); configurable, good Chinese by default."""

    customer: Mapping[Severity, str] = field(
        default_factory=lambda: {
            Severity.CRITICAL: "紧急：客户维权风险",
            Severity.HIGH: "客户维权风险",
            Severity.MEDIUM: "客户不满提醒",
            Severity.LOW: "客户情绪提醒",
        }
    )
    staff: Mapping[Severity, str] = field(
        default_factory=lambda: {
            Severity.CRITICAL: "紧急：员工严重违规",
            Severity.HIGH: "员工违规风险",
            Severity.MEDIUM: "员工违规提醒",
            Severity.LOW: "员工用语提醒",
        }
    )

    def title(self, kind: AlertKind, severity: Severity) -> str:
        """The card's main title, e.g. ``客户维权风险``."""
        table = self.customer if kind is AlertKind.CUSTOMER_RISK else self.staff
        fallback = "客户风险提醒" if kind is AlertKind.CUSTOMER_RISK else "员工违规提醒"
        return table.get(severity, fallback)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with "…" when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _truncate_bytes(text: str, limit: int) -> str:
    if len(text.encode("utf-8")) <= limit:
        return text
    cut = text.encode("utf-8")[: limit - len("…".encode())].decode("utf-8", "ignore")
    return cut + "…"


def make_task_id(alert_id: str, send_no: int) -> str:
    """A ``task_id`` per sent card (WeCom wants it unique per app; each re-send is a new card)."""
    task_id = re.sub(r"[^0-9A-Za-z_\-@]", "_", f"{alert_id}-{send_no}")
    return task_id[-TASK_ID_MAX_BYTES:]


def excerpt(subject: AlertSubject, width: int = 80) -> str:
    """Masked text around the first hit, hits marked 【】 (cards cannot highlight), ≤ 3 lines."""
    text = mask_sensitive(subject.text)  # length-preserving, so hit spans still line up
    spans = sorted(
        (max(0, h.start), min(len(text), h.end)) for h in subject.hits if h.start < h.end
    )
    first = spans[0][0] if spans else 0
    lo = max(0, first - width // 3)
    hi = min(len(text), lo + width)
    lo = max(0, hi - width)
    parts: list[str] = ["…"] if lo > 0 else []
    pos = lo
    for start, end in spans:
        if start < pos or end > hi:
            continue  # overlapping or outside the window: one mark per visible word is enough
        parts += [text[pos:start], "【", text[start:end], "】"]
        pos = end
    parts.append(text[pos:hi])
    if hi < len(text):
        parts.append("…")
    lines = "".join(parts).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # Keep at most three lines; the rest joins the third so no matched word is dropped.
    return "\n".join([*lines[:2], " ".join(lines[2:])] if len(lines) > 3 else lines)


def _who(alert: OpenAlert) -> str:
    name = mask_sensitive(alert.customer_name)
    if name and alert.customer_id:
        return f"{name}（{alert.customer_id}）"
    return name or alert.customer_id or "未知客户"


def _staff(alert: OpenAlert) -> str:
    if alert.staff_name and alert.staff_userid:
        return f"{alert.staff_name}（{alert.staff_userid}）"
    return alert.staff_userid or "—"


def _time(at: datetime) -> str:
    return f"{at:%m-%d %H:%M}"


def _rows(alert: OpenAlert, subject: AlertSubject) -> list[dict[str, str]]:
    rows = [
        ("客户", _who(alert)),
        ("员工", _staff(alert)),
        ("命中词", "、".join(alert.words)),
        ("时间", _time(subject.at)),
    ]
    if alert.count > 1:
        rows.append(("累计", f"{alert.count} 次（自 {alert.first_at:%H:%M} 起）"))
    return [
        {"keyname": truncate(k, KEYNAME_MAX), "value": truncate(v, VALUE_MAX)} for k, v in rows[:6]
    ]


def _buttons(alert_id: str) -> list[dict[str, Any]]:
    out = []
    for action, text, style in (*_BUTTONS, _FALSE_POSITIVE):
        key = button_key(action, alert_id)
        if len(key.encode("utf-8")) > KEY_MAX_BYTES:
            raise ValueError("alert id too long for a button key")
        out.append({"text": text, "style": style, "key": key})
    return out


def build_alert_card(
    alert: OpenAlert,
    subject: AlertSubject,
    *,
    review_url: str,
    task_id: str,
    wording: AlertWording | None = None,
    title_prefix: str = "",
    desc: str = "",
) -> dict[str, Any]:
    """The ``template_card`` object (button_interaction) for ``message/send``.

    The caller wraps it: ``{"touser": "a|b", "msgtype": "template_card", "agentid": ..., "template_card":
    card}``. ``subject`` is the message to show (usually the latest one of the alert).
    """
    if not _TASK_ID_RE.fullmatch(task_id):
        raise ValueError("task_id must be 1-128 of [0-9A-Za-z_-@]")
    title = (wording or AlertWording()).title(alert.kind, alert.severity)
    speaker = "客户" if alert.kind is AlertKind.CUSTOMER_RISK else "员工"
    desc = desc or f"{alert.severity.label}风险 · {speaker}提到「{'、'.join(alert.words)}」"
    return {
        "card_type": "button_interaction",
        "main_title": {
            "title": truncate(title_prefix + title, TITLE_MAX),
            "desc": truncate(desc, DESC_MAX),
        },
        "sub_title_text": truncate(f"{speaker}：{excerpt(subject)}", SUB_TITLE_MAX),
        "horizontal_content_list": _rows(alert, subject),
        "card_action": {"type": 1, "url": review_url},
        "task_id": task_id,
        "button_list": _buttons(alert.alert_id),
    }


def build_escalation_card(
    alert: OpenAlert,
    subject: AlertSubject,
    *,
    waited_s: int,
    review_url: str,
    task_id: str,
    wording: AlertWording | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """The card for ``[alerts].escalate_to``: says the alert waited and was escalated.

    ``reason`` replaces the description for an escalation a reviewer made (who and why).
    """
    minutes = max(1, waited_s // 60)
    return build_alert_card(
        alert,
        subject,
        review_url=review_url,
        task_id=task_id,
        wording=wording,
        title_prefix="【升级】",
        desc=reason or f"超过 {minutes} 分钟无人认领，已升级",
    )


def _md_safe(text: str) -> str:
    # Customer text must not inject links, fonts or @-mentions into the team room.
    return text.translate(str.maketrans("[]<>`", "［］＜＞｀"))


def build_robot_markdown(
    alert: OpenAlert,
    subject: AlertSubject,
    review_url: str,
    *,
    wording: AlertWording | None = None,
) -> str:
    """Markdown for the group robot webhook (≤ 4096 bytes UTF-8)."""
    title = (wording or AlertWording()).title(alert.kind, alert.severity)
    speaker = "客户" if alert.kind is AlertKind.CUSTOMER_RISK else "员工"
    head = [
        f'## <font color="warning">{_md_safe(title)}</font>',
        f"> 客户：{_md_safe(_who(alert))}",
        f"> 员工：{_md_safe(_staff(alert))}",
        f"> 命中词：{_md_safe('、'.join(alert.words))}（{alert.severity.label}）",
        f"> 时间：{_time(subject.at)}" + (f"，累计 {alert.count} 次" if alert.count > 1 else ""),
    ]
    tail = f"[查看会话]({review_url})"
    body = f"{speaker}说：{_md_safe(excerpt(subject, width=300))}"
    fixed = "\n".join(head) + "\n\n" + "\n\n" + tail
    room = ROBOT_MARKDOWN_MAX_BYTES - len(fixed.encode("utf-8"))
    return "\n".join(head) + "\n\n" + _truncate_bytes(body, max(room, 0)) + "\n\n" + tail


def build_digest(
    alerts: Sequence[OpenAlert],
    *,
    review_url: str = "",
    wording: AlertWording | None = None,
    max_bytes: int = TEXT_MAX_BYTES,
) -> str:
    """Plain-text summary of alerts held back by the rate limit (``message/send`` text ≤ 2048 B)."""
    words = wording or AlertWording()
    head = f"风险提醒汇总：发送过于频繁，以下 {len(alerts)} 条已合并"
    foot = f"请到审核后台查看：{review_url}" if review_url else "请到审核后台查看详情"
    lines = [
        f"{i}. {words.title(a.kind, a.severity)} · {_who(a)} · "
        f"「{truncate('、'.join(a.words), 20)}」×{a.count} · {_time(a.last_at)}"
        for i, a in enumerate(alerts, 1)
    ]
    for shown in range(len(lines), -1, -1):
        more = [f"……另有 {len(lines) - shown} 条"] if shown < len(lines) else []
        text = "\n".join([head, *lines[:shown], *more, foot])
        if len(text.encode("utf-8")) <= max_bytes:
            return text
    return _truncate_bytes(head, max_bytes)
