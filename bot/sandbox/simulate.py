"""``run_bot.py simulate``: play WeCom on a laptop.

Encrypts a text message exactly as WeCom does (inner XML, WXBizMsgCrypt envelope, signed query), POSTs it
to the callback, then verifies and decrypts the passive reply.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Config
from monitor.archive import MonitorError, hits_of_message
from monitor.archive.queries import AlertDelivery, alert_deliveries
from rules.models import Severity
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.messages.callback import TextMessage, parse
from wecom_sdk.testing.sealer import CallbackSealer
from wecom_sdk.xmlsafe import parse_xml

__all__ = [
    "SimulationResult",
    "default_url",
    "describe_alerts",
    "describe_hits",
    "simulate",
]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What the callback answered."""

    status: int
    #: The decrypted passive reply XML, or None for an empty answer.
    reply_xml: str | None
    #: The reply's text content when it is a text reply.
    reply_text: str | None
    #: The body as sent when the answer was not a reply envelope (errors).
    body: str
    #: The MsgId of the simulated message (its archive key is ``msg:<id>``).
    msg_id: int = 0


def default_url(config: Config) -> str:
    """The callback URL of a server started with this config on this machine."""
    host = "127.0.0.1" if config.server.host in ("0.0.0.0", "::", "") else config.server.host
    return f"http://{host}:{config.server.port}{config.server.callback_path}"


def _open_reply(crypto: MsgCrypto, body: bytes) -> tuple[str, str | None]:
    envelope = parse_xml(body)
    plain = crypto.open(
        str(envelope["MsgSignature"]),
        str(envelope["TimeStamp"]),
        str(envelope["Nonce"]),
        str(envelope["Encrypt"]),
    )
    reply = parse(plain)
    return plain.decode("utf-8"), reply.content if isinstance(reply, TextMessage) else None


async def simulate(config: Config, text: str, *, from_user: str, url: str) -> SimulationResult:
    """Send one sealed text message to ``url`` and decode the answer.

    Raises:
        aiohttp.ClientError: the server could not be reached.
        wecom_sdk.errors.WeComError: the reply envelope did not verify or decrypt.
    """
    crypto = MsgCrypto(config.wecom.token, config.wecom.encoding_aes_key, config.wecom.corp_id)
    msg_id = secrets.randbits(63)
    sealer = CallbackSealer(crypto, config.wecom.corp_id, config.wecom.agent_id or None)
    request = sealer.text(text, msg_id, from_user)
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            url, params=request.query, data=request.body, headers={"Content-Type": "text/xml"}
        ) as resp,
    ):
        answer = await resp.read()
        status = resp.status
    if status == 200 and answer:
        reply_xml, reply_text = _open_reply(crypto, answer)
        body_text = answer.decode("utf-8", "replace")
        return SimulationResult(status, reply_xml, reply_text, body_text, msg_id)
    return SimulationResult(status, None, None, answer.decode("utf-8", "replace"), msg_id)


def describe_hits(config: Config, result: SimulationResult) -> list[str]:
    """Lines showing what the rules found in the simulated message, read back from the archive.

    Empty when the archive is not reachable from here (a server on another machine) or the
    message is not in it; the simulation itself never depends on this.
    """
    try:
        found = hits_of_message(config.storage.database_url, f"msg:{result.msg_id}")
    except (MonitorError, SQLAlchemyError, OSError, ValueError):
        return []
    if found is None:
        return []
    if not found.hits:
        return [f"archived (rules {found.rules_version}): no sensitive words"]
    lines = [f"archived (rules {found.rules_version}) with {len(found.hits)} hit(s):"]
    text = found.content or ""
    for hit in found.hits:
        span = text[hit.span_start : hit.span_end]
        level = Severity(hit.severity).label
        lines.append(f"  命中「{hit.word}」 原文「{span}」 {hit.rule_group}（{level}）")
    return lines


_STATUS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "skipped": "未发送"}
_KIND = {"card": "卡片", "escalation": "升级卡片", "robot": "群机器人", "digest": "汇总"}


def describe_alerts(config: Config, result: SimulationResult, *, wait_s: float = 3.0) -> list[str]:
    """Lines showing the alerts the simulated message raised and the card a manager would get.

    Waits up to ``wait_s`` for the outbox to deliver, so the lines say "sent" when it did. Empty
    when the archive is not reachable from here or the message raised no alert.
    """
    key = f"msg:{result.msg_id}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            found = alert_deliveries(config.storage.database_url, key)
        except (MonitorError, SQLAlchemyError, OSError, ValueError):
            return []
        waiting = any(row.status == "pending" for d in found for row in d.outbox)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    lines: list[str] = []
    for delivery in found:
        lines += _describe(delivery, config)
    return lines


def _describe(delivery: AlertDelivery, config: Config) -> list[str]:
    alert = delivery.alert
    level = Severity(alert.severity).label
    lines = [f"alert {alert.alert_id}: {level}风险，第 {alert.count} 次命中，状态 {alert.status}"]
    for row in delivery.outbox:
        if row.kind not in _KIND:
            continue
        who = "、".join(json.loads(row.recipients)) or "团队群"
        lines.append(f"  {_KIND[row.kind]} → {who}：{_STATUS.get(row.status, row.status)}")
        if row.kind in ("card", "escalation"):
            lines += ["    " + line for line in _card_lines(json.loads(row.payload))]
    if not config.wecom.secret and any(row.kind in _KIND for row in delivery.outbox):
        host = "127.0.0.1" if config.server.host in ("0.0.0.0", "::", "") else config.server.host
        lines.append(
            f"  (sandbox: no message left this machine; see http://{host}:{config.server.port}/sandbox/)"
        )
    return lines


def _card_lines(card: dict[str, Any]) -> list[str]:
    """A template card as a manager would read it, in plain text."""
    title = card.get("main_title", {})
    lines = [f"┌ {title.get('title', '')}", f"│ {title.get('desc', '')}"]
    lines += [f"│ {line}" for line in str(card.get("sub_title_text", "")).splitlines()]
    lines += [
        f"│ {row.get('keyname', '')}：{row.get('value', '')}"
        for row in card.get("horizontal_content_list", [])
    ]
    buttons = "  ".join(f"[{b.get('text', '')}]" for b in card.get("button_list", []))
    lines.append(f"└ {buttons}")
    return lines
