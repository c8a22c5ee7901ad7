"""The kf benchmark's queue: customers writing to one kf account, as ``sync_msg`` returns them.

Each customer has five messages, written at random moments of the last ``span_s`` seconds, so
the queue (ordered by ``send_time``, as WeCom's is) interleaves the customers and most of them
span more than one 1,000-item ``sync_msg`` page. What the bot should do with each kind, under
the shipped sample rules (``rules/samples``) and the default ``[kf]`` settings:

- ``faq``: a question a reply rule answers (发货物流 text, 退换货 menu, 价格优惠 link, the 问候
  greeting; the night-only 夜间留言 rule is avoided so the run does not depend on the hour);
- ``human``: asks for 人工 (the 转人工 rule: reply + transfer to the pool);
- ``chat``: chit-chat no rule answers (three in a row hand the customer over);
- ``risk``: a high or critical risk word (alert + hand-off) or a medium one (alert only);
- ``staff``: a servicer's message (origin 5) in one of the few sessions a human already serves
  (state 3 at the fake), where the bot answers nothing;
- ``chatty``: one customer in a hundred writes 10 after-sales questions instead of 5 (the 退换货
  rule, no cooldown), so WeCom's 5-message budget is really at stake, across pages too.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OPEN_KFID", "SERVICER", "Workload", "build_workload"]

OPEN_KFID = "wkBENCH0000000000000000000000001"
SERVICER = "kfservicer01"
MESSAGES_PER_CUSTOMER = 5

_FAQ = (
    "你们什么时候发货啊", "我的快递到哪了", "物流信息一直没更新", "昨天下的单，什么时候发",
    "我想退货，怎么操作", "尺码不合适可以换货吗", "支持七天无理由吗", "这个多少钱",
    "现在有优惠券吗", "价格能再便宜点吗", "双十一打折吗", "你好", "您好", "菜单",
)  # fmt: skip
_HUMAN = ("转人工", "我要人工客服", "找个真人客服", "人工")
_CHAT = (
    "好的", "谢谢", "嗯嗯", "我再看看", "这个颜色挺好看的", "收到了，质量不错", "明白了",
    "那我等等吧", "行吧", "麻烦你了", "我明天再问问", "好的，辛苦", "哈哈", "OK",
)  # fmt: skip
_RISK_HIGH = (
    "再不处理我就去12315投诉", "我要维权", "你们这是虚假宣传", "我已经在黑猫投诉了",
    "我要找律师起诉你们", "收到的是假货",
)  # fmt: skip
_RISK_MEDIUM = ("不给退款我就给差评", "赶紧退钱")
_CHATTY = (
    "我想退货，怎么操作", "尺码不合适可以换货吗", "支持七天无理由吗", "退货地址是哪里",
    "换货要多久", "退换的运费谁出",
)  # fmt: skip
_STAFF = ("您好，我是客服小王，正在为您查询", "已经帮您催促仓库了", "请提供一下订单号", "已登记")

#: Kinds of a customer message in a session the bot serves, and their weights.
_KINDS = ("faq", "chat", "risk", "human")
_WEIGHTS = (44, 40, 10, 6)


@dataclass(frozen=True, slots=True)
class Workload:
    """The queued ``sync_msg`` items and what they are."""

    items: list[dict[str, Any]]
    customers: int
    #: Customers whose session a servicer holds (state 3) before the run.
    with_servicer: list[str]
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def keys(self) -> set[str]:
        """The archive keys the items must end up under (``kf:<msgid>``)."""
        return {f"kf:{item['msgid']}" for item in self.items}


def _text(
    msgid: str, user: str, content: str, send_time: int, *, staff: bool = False
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "msgid": msgid,
        "open_kfid": OPEN_KFID,
        "external_userid": user,
        "send_time": send_time,
        "origin": 5 if staff else 3,
        "msgtype": "text",
        "text": {"content": content},
    }
    if staff:
        item["servicer_userid"] = SERVICER
    return item


def _customer_kind(rng: random.Random) -> str:
    return rng.choices(_KINDS, _WEIGHTS)[0]


def _content(kind: str, rng: random.Random) -> str:
    if kind == "risk":
        return rng.choice(_RISK_HIGH if rng.random() < 0.8 else _RISK_MEDIUM)
    pool = {"faq": _FAQ, "human": _HUMAN, "chat": _CHAT, "staff": _STAFF, "chatty": _CHATTY}[kind]
    return rng.choice(pool)


def build_workload(
    messages: int,
    *,
    now: int,
    span_s: int = 1200,
    servicer_share: float = 0.03,
    chatty_share: float = 0.01,
    seed: int = 6,
) -> Workload:
    """``messages`` text items, sorted by send time, from customers writing 5 each (``chatty``
    ones 10), about ``messages // 5`` of them.

    A ``servicer_share`` of the customers are already with a servicer: their five messages
    alternate customer / staff / customer / staff / customer.
    """
    per = MESSAGES_PER_CUSTOMER
    if messages < 2 * per or messages % per:
        raise ValueError(f"messages must be a multiple of {per}, at least {2 * per}")
    rng = random.Random(seed)
    chatty = max(1, round(messages // per * chatty_share)) if chatty_share > 0 else 0
    customers = chatty + (messages - 2 * per * chatty) // per
    staffed = max(1, round(customers * servicer_share))
    users = [f"wmBench{n:05d}" for n in range(customers)]
    # Spread over the customer numbers; the chatty ones are the last.
    plain = customers - chatty
    with_servicer = users[: plain : max(1, plain // staffed)][:staffed]
    served = set(with_servicer)
    rows: list[tuple[int, int, int, str, str]] = []
    kinds: Counter[str] = Counter()
    for n, user in enumerate(users):
        talkative = n >= plain
        count = 2 * per if talkative else per
        times = sorted(rng.randint(now - span_s, now - 1) for _ in range(count))
        for i, at in enumerate(times):
            if talkative:
                kind = "chatty"
            elif user in served:
                kind = "staff" if i % 2 else rng.choice(("faq", "chat"))
            else:
                kind = _customer_kind(rng)
            kinds[kind] += 1
            rows.append((at, n, i, kind, _content(kind, rng)))
    rows.sort()  # WeCom's queue is in send order; ties by customer, then the customer's order
    items = [
        _text(f"bench{seq:07d}", users[n], content, at, staff=kind == "staff")
        for seq, (at, n, _i, kind, content) in enumerate(rows)
    ]
    return Workload(items, customers, with_servicer, kinds)
