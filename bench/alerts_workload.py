"""The alerts benchmark's scenario: rule groups, people, and hit messages on a simulated timeline.

Each conversation (a 微信客服 chat between one customer and one servicer) gets ``hits`` messages
with hits, in a few *episodes*: inside an episode the gaps are 2-180 s, well inside the 10-minute
aggregation window, so its messages join one alert; between episodes the gap is longer than the
window, so the next one opens a new alert. An episode is one of three moods: customer risk (high),
customer refund (medium), or *rising* (refund words first, then risk words: the alert is notified
once more when the severity rises). About one message in seven is the servicer's own (staff
misconduct, a separate alert kind with its own recipients). Same seed, same scenario.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from rules.models import Audience, Hit, SensitiveGroup, Severity, Word

__all__ = [
    "ESCALATE_TO",
    "GROUPS",
    "MANAGERS",
    "OPEN_KFID",
    "RULES_VERSION",
    "ScenarioMessage",
    "generate",
]

MANAGERS = ("mgr_zhang", "mgr_li", "mgr_wang", "mgr_zhao", "mgr_chen")
ESCALATE_TO = ("director_liu",)
COMPLIANCE = ("compliance_sun", "compliance_zhou")
OPEN_KFID = "wkBench0000001"
RULES_VERSION = "bench-alerts"

RISK = SensitiveGroup(
    name="客户维权风险",
    severity=Severity.HIGH,
    audience=Audience.CUSTOMER,
    words=tuple(Word(w) for w in ("维权", "投诉", "12315", "曝光", "起诉")),
)
REFUND = SensitiveGroup(
    name="客户退款",
    severity=Severity.MEDIUM,
    audience=Audience.CUSTOMER,
    words=tuple(Word(w) for w in ("退款", "退货", "差评")),
)
MISCONDUCT = SensitiveGroup(
    name="员工违规",
    severity=Severity.HIGH,
    audience=Audience.STAFF,
    words=tuple(Word(w) for w in ("加我微信", "私下转账", "返现")),
    recipients=COMPLIANCE,
)
GROUPS = (RISK, REFUND, MISCONDUCT)

_STAFF_SHARE = 1 / 7
_BURST_GAP_S = (2.0, 180.0)
_SERVICERS = 40
_CUSTOMER_SAYS = (
    "你们这个质量太差了，我要{w}",
    "再不处理我就去{w}",
    "说好的三天发货，现在都一周了，{w}！",
    "客服一直不回，我要{w}，你们看着办",
    "{w}这事没完，把你们经理叫来",
)
_STAFF_SAYS = (
    "亲，您{w}我这边给您单独处理",
    "这个不走平台，{w}就行",
    "可以{w}，别在这里说",
)


@dataclass(frozen=True, slots=True)
class ScenarioMessage:
    """One hit message: who wrote what in which conversation, and when (simulated)."""

    seq: int
    at: datetime
    conversation_id: str
    customer_id: str
    customer_name: str
    staff_userid: str
    author: Audience
    text: str
    hits: tuple[Hit, ...]

    @property
    def dedupe_key(self) -> str:
        """As the kf puller keys a message: channel and WeCom's msgid."""
        return f"kf:bench{self.seq:08d}"

    @property
    def from_user(self) -> str:
        return self.customer_id if self.author is Audience.CUSTOMER else self.staff_userid

    def raw(self) -> str:
        """The ``kf/sync_msg`` item as WeCom sends it (what the archive keeps verbatim)."""
        origin = 3 if self.author is Audience.CUSTOMER else 5  # 3 customer, 5 servicer
        item = {
            "msgid": self.dedupe_key.removeprefix("kf:"),
            "open_kfid": OPEN_KFID,
            "external_userid": self.customer_id,
            "send_time": int(self.at.timestamp()),
            "origin": origin,
            "servicer_userid": self.staff_userid if origin == 5 else "",
            "msgtype": "text",
            "text": {"content": self.text},
        }
        return json.dumps(item, ensure_ascii=False)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` messages over ``parts`` episodes, each at least one."""
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _say(author: Audience, group: SensitiveGroup, rng: random.Random) -> tuple[str, Hit]:
    word = rng.choice(group.words).text
    template = rng.choice(_STAFF_SAYS if author is Audience.STAFF else _CUSTOMER_SAYS)
    head, _, tail = template.partition("{w}")
    return head + word + tail, Hit(
        word, len(head), len(head) + len(word), group.name, group.severity
    )


def _conversation(
    hits: int,
    start: datetime,
    duration_s: float,
    window_s: float,
    rng: random.Random,
) -> list[tuple[datetime, Audience, str, Hit]]:
    episodes = min(hits, rng.choice((1, 2, 2, 3, 3, 4)))
    sizes = _split(hits, episodes, rng)
    bursts = [[rng.uniform(*_BURST_GAP_S) for _ in range(n - 1)] for n in sizes]
    lengths = [sum(b) for b in bursts]
    spacing = window_s + 1.0  # the least gap that still opens a new alert
    while episodes > 1 and sum(lengths) + (episodes - 1) * spacing > duration_s:
        # Does not fit: merge the last two episodes into one longer burst.
        last = bursts.pop()
        bursts[-1] += [rng.uniform(*_BURST_GAP_S), *last]
        lengths = [sum(b) for b in bursts]
        episodes -= 1
    free = max(0.0, duration_s - sum(lengths) - (episodes - 1) * spacing)
    # Random spacing: episodes + 1 stretches of idle time that add up to ``free``.
    marks = sorted(rng.uniform(0, free) for _ in range(episodes))
    out: list[tuple[datetime, Audience, str, Hit]] = []
    t = 0.0
    previous_mark = 0.0
    for number, (mark, gaps) in enumerate(zip(marks, bursts, strict=True)):
        t += mark - previous_mark + (spacing if number else 0.0)
        previous_mark = mark
        mood = rng.choice(("risk", "refund", "rising"))
        n = len(gaps) + 1
        for k in range(n):
            if k:
                t += gaps[k - 1]
            author = Audience.STAFF if rng.random() < _STAFF_SHARE else Audience.CUSTOMER
            if author is Audience.STAFF:
                group = MISCONDUCT
            elif mood == "risk" or (mood == "rising" and k >= n // 2):
                group = RISK
            else:
                group = REFUND
            text, hit = _say(author, group, rng)
            out.append((start + timedelta(seconds=t), author, text, hit))
    return out


def generate(
    *,
    conversations: int,
    hits_per_conversation: int,
    start: datetime,
    duration_s: float,
    window_s: float,
    seed: int,
) -> list[ScenarioMessage]:
    """Every hit message of the scenario, in simulated-time order (ties by conversation)."""
    rng = random.Random(seed)
    timed: list[tuple[datetime, int, Audience, str, Hit]] = []
    for index in range(conversations):
        for at, author, text, hit in _conversation(
            hits_per_conversation, start, duration_s, window_s, rng
        ):
            timed.append((at, index, author, text, hit))
    timed.sort(key=lambda t: (t[0], t[1]))
    out = []
    for seq, (at, index, author, text, hit) in enumerate(timed):
        customer = f"wmBench{index:05d}"
        out.append(
            ScenarioMessage(
                seq=seq,
                at=at,
                conversation_id=f"kf:{OPEN_KFID}:{customer}",
                customer_id=customer,
                customer_name=f"客户{index:03d}",
                staff_userid=f"servicer{index % _SERVICERS:02d}",
                author=author,
                text=text,
                hits=(hit,),
            )
        )
    return out
