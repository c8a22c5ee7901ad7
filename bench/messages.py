"""Sealed WeCom text-message callbacks for the load tests, built up front.

Each callback is what WeCom POSTs to a self-built app (wecom-protocol.md §1.2, §3): the inner
text-message XML is sealed with AES-256-CBC under the EncodingAESKey (16 random bytes ‖ 4-byte
big-endian length ‖ msg ‖ corp_id, PKCS#7 to 32 bytes), wrapped in the
``<xml><ToUserName/><Encrypt/><AgentID/></xml>`` envelope and signed with
``sha1(sorted([token, timestamp, nonce, encrypt]))`` in the query string.

The sealing is ``wecom_sdk.testing``'s callback sealer (``wecom_sdk.crypto``), not wechatpy: the
smoke test decrypts the output with wechatpy, so the two implementations check each other. Content,
users, nonces, the random prefixes and MsgIds come from a seeded RNG, so the same ``seed`` gives the
same messages whatever the timestamp: every server in one run gets the same callbacks, re-sealed
right before its turn so the timestamps stay inside the server's ±300 s window.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.sealer import CallbackSealer

__all__ = [
    "CALLBACK_PATH",
    "RISK_EVERY",
    "RISK_PHRASES",
    "SAMPLE_AES_KEY",
    "SAMPLE_AGENT_ID",
    "SAMPLE_CORP_ID",
    "SAMPLE_TOKEN",
    "SealedCallback",
    "generate_callbacks",
]

# WeCom's published sample credentials (doc 90968, wecom-protocol.md §1.6 set B); the shipped
# config.example.toml has the same ones, so the bench needs no secrets.
SAMPLE_TOKEN = "QDG6eK"
SAMPLE_CORP_ID = "wx5823bf96d3bd56c7"
SAMPLE_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_AGENT_ID = "1000002"
CALLBACK_PATH = "/wecom/callback"

# One message in RISK_EVERY carries a risk phrase: enough for the matcher and the alert outbox to do
# real work under load, few enough that the mix still looks like ordinary chat.
RISK_EVERY = 20
CONTENT_MIN, CONTENT_MAX = 20, 60

_CHAT = (
    "你好，我上周买的空气炸锅到现在还没发货",
    "请问我的订单什么时候能到",
    "快递显示已经签收了但是我没收到",
    "麻烦帮我查一下物流信息",
    "这个颜色现在还有货吗",
    "可以开增值税专用发票吗",
    "我想改一下收货地址",
    "优惠券为什么用不了",
    "这款鞋子尺码偏大还是偏小",
    "收到的杯子有一道裂痕",
    "在吗",
    "退货的运费是谁出",
    "你们周末有人值班吗",
    "会员积分怎么兑换礼品",
    "下单的时候忘了备注生日贺卡",
    "能不能帮我换成顺丰发货",
    "昨天咨询的那个问题还没有回复",
    "说明书上写的保修期是多久",
    "充电器插上以后指示灯不亮",
    "我妈妈说味道有点淡",
    "下午三点的会议改到四点了",
    "周报我已经发到群里了，大家看一下",
    "这个客户明天记得回访一下",
    "仓库那边说今天下午能补货",
    "活动页面的价格好像标错了",
    "发票抬头写公司全称就可以",
    "好的，我知道了",
    "辛苦了",
    "那我再等两天看看",
    "方便的话给我打个电话",
    "上次买的还不错，这次多买几盒",
    "有没有更便宜一点的套餐",
)
_FILLERS = ("谢谢", "麻烦尽快回复一下", "好的", "辛苦了", "急用", "在线等")
RISK_PHRASES = (
    "再不处理我就去12315投诉",
    "我要维权，你们这是虚假宣传",
    "我已经打过12315了",
    "我要投诉你们客服的态度",
    "不给退款我就去消协维权",
)
_SURNAMES = ("Zhang", "Wang", "Li", "Zhao", "Liu", "Chen", "Yang", "Huang", "Zhou", "Wu", "Xu")
_GIVEN = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Qiang", "Jun", "Yang", "Yan", "Jie", "Tao")


@dataclass(frozen=True, slots=True)
class SealedCallback:
    """One callback as WeCom sends it.

    Attributes:
        target: request target, ``path?msg_signature=..&timestamp=..&nonce=..``.
        body: the envelope XML (UTF-8).
        msg_id: the inner message's MsgId, unique within a batch.
        inner_xml: the plaintext sealed inside ``body``, kept for checks.
    """

    target: str
    body: bytes
    msg_id: str
    inner_xml: str


def _content(rng: random.Random, risky: bool) -> str:
    """Chat text of CONTENT_MIN..CONTENT_MAX characters, made of whole phrases."""
    target = rng.randint(CONTENT_MIN, CONTENT_MAX)
    risk = rng.choice(RISK_PHRASES) if risky else ""
    budget = CONTENT_MAX - (len(risk) + 1 if risky else 0)
    parts: list[str] = []
    length = -1  # each phrase after the first also costs one separator
    # Phrases drawn without repeats; one that would overshoot the budget is skipped, never cut.
    for phrase in rng.sample(_CHAT, 12):
        if length >= target:
            break
        if length + 1 + len(phrase) <= budget:
            parts.append(phrase)
            length += 1 + len(phrase)
    if risky:
        # Customers put the threat anywhere in the message, not only at the front.
        parts.insert(rng.randint(0, len(parts)), risk)
    while len(text := "，".join(parts)) < CONTENT_MIN:
        parts.append(rng.choice(_FILLERS))
    return text


def generate_callbacks(
    count: int,
    *,
    seed: int = 20_000,
    timestamp: int | None = None,
    path: str = CALLBACK_PATH,
    token: str = SAMPLE_TOKEN,
    encoding_aes_key: str = SAMPLE_AES_KEY,
    corp_id: str = SAMPLE_CORP_ID,
    agent_id: str = SAMPLE_AGENT_ID,
) -> list[SealedCallback]:
    """Build ``count`` distinct sealed text-message callbacks.

    Args:
        count: number of callbacks; MsgIds are consecutive from a seeded base, so all are distinct.
        seed: fixes content, users, nonces and MsgIds; only ``timestamp`` differs between two calls.
        timestamp: CreateTime and the signed timestamp (unix seconds); defaults to now.
        path: callback path the query string is appended to.
        token, encoding_aes_key, corp_id, agent_id: the app's callback credentials.
    """
    rng = random.Random(seed)
    # The RNG also draws each message's 16 random bytes, right after its nonce.
    crypto = MsgCrypto(token, encoding_aes_key, corp_id, random_bytes=rng.randbytes)
    sealer = CallbackSealer(crypto, corp_id, agent_id)
    stamp = int(time.time()) if timestamp is None else timestamp
    users = [f"{s}{g}" for s in _SURNAMES for g in _GIVEN]
    # Real MsgIds are 64-bit; staying below 2**63 keeps them valid for a signed BIGINT column.
    base_id = rng.randrange(10**18, 9 * 10**18)
    out: list[SealedCallback] = []
    for i in range(count):
        msg_id = base_id + i
        content = _content(rng, risky=i % RISK_EVERY == RISK_EVERY // 2)
        user = rng.choice(users)
        inner = sealer.text_xml(content, msg_id, user, create_time=stamp)
        nonce = str(rng.randrange(10**9, 10**10))
        sealed = sealer.seal(inner, timestamp=str(stamp), nonce=nonce)
        out.append(SealedCallback(sealed.target(path), sealed.body, str(msg_id), inner.decode()))
    return out
