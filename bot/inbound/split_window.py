"""The live cross-message window: a word split over a sender's messages (维 / 权) is one hit.

Per (conversation, sender) the window holds the last few messages with text (their archive
dedupe keys, the tail of their text, their create time). The :class:`SplitStage` runs after the
inspect stage: it adds the message to its window and matches the earlier messages plus this one
with the pure matcher of ``rules.conversation``. A hit that starts in an earlier message and ends
in this one (``via = "split"``) becomes a hit of THIS message: its span is this message's piece,
the other pieces go with it (``hit.parts``), and it is alerted and archived with this message.
The fragments on their own hold no word, so an evasion raises one alert, not one per fragment;
a later repeat joins the conversation's open alert like any hit.

:class:`RedisSplitWindow` (several workers): one Redis list per window under
``prefix + "split:<sender>:<conversation>"`` (senders hold no ``:``), TTL = the window's seconds,
changed only by one Lua script, so every read-and-append is atomic. :class:`MemorySplitWindow` is
the one-process fallback (no Redis: one worker only): a bounded LRU of windows.

Ordering: a message sees the messages added to its window before it, in the order they reached
the store; that is the order the sender wrote them, since a person splitting a word sends the
pieces seconds apart while WeCom delivers each callback within moments. Two pieces arriving at
once on two workers may be seen in either order (and the split then missed); the window's time
bound uses WeCom's create times, so a backlog pulled late (kf) is windowed by when it was sent.

Retries: an entry is keyed by the message's dedupe key. Adding a key already in the window adds
nothing and answers the entries before it, so a WeCom retry (or a message whose store failed and
comes again) sees the same window and finds the same hit, never a doubled fragment.

A window store never fails a message: when Redis does not answer, the message is matched on its
own (single-message hits only) and the outage is logged once (and its end once).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Protocol

import redis.asyncio as aioredis

from bot.handlers.router import HandlerResult
from bot.inbound.context import Context, Inbound
from bot.inbound.pipeline import NextHandler
from bot.log import pipeline_log
from monitor.archive.models import HitPart
from rules.engine import RuleEngine
from rules.models import Hit

__all__ = [
    "DEFAULT_CAPACITY",
    "TAIL_CHARS",
    "Fragment",
    "MemorySplitWindow",
    "RedisSplitWindow",
    "SplitStage",
    "SplitWindow",
    "WindowKey",
]

#: Windows the in-process store keeps before forgetting the least recently used.
DEFAULT_CAPACITY = 100_000
#: Characters of an earlier message kept in the window: its end, where a split word starts.
TAIL_CHARS = 64


@dataclass(frozen=True, slots=True)
class WindowKey:
    """Whose window: one sender in one conversation."""

    conversation: str
    sender: str


@dataclass(frozen=True, slots=True)
class Fragment:
    """One message in a window: ``text`` is its text from ``offset`` on (the tail kept)."""

    dedupe_key: str
    text: str
    offset: int
    #: WeCom's create time of the message (epoch seconds).
    at: int

    @classmethod
    def of(cls, dedupe_key: str, text: str, at: int) -> Fragment:
        """The window entry for a message: the last :data:`TAIL_CHARS` characters of ``text``."""
        tail = text[-TAIL_CHARS:]
        return cls(dedupe_key, tail, len(text) - len(tail), at)

    def dumps(self) -> str:
        """JSON as the Redis list holds it."""
        return json.dumps(
            {"k": self.dedupe_key, "t": self.text, "o": self.offset, "at": self.at},
            ensure_ascii=False,
        )

    @classmethod
    def loads(cls, raw: str | bytes) -> Fragment:
        """Inverse of :meth:`dumps`."""
        data = json.loads(raw)
        return cls(str(data["k"]), str(data["t"]), int(data["o"]), int(data["at"]))


class SplitWindow(Protocol):
    """The recent messages of each (conversation, sender)."""

    async def add(self, key: WindowKey, fragment: Fragment) -> list[Fragment]:
        """Append ``fragment`` to the window (once per dedupe key) and answer the entries before
        it, oldest first. Never raises: a store that cannot tell answers ``[]``."""
        ...


class MemorySplitWindow:
    """In-process windows: at most ``capacity`` of them, least recently used dropped first.

    Only for a single worker (another process would not see them); lost on restart.
    """

    def __init__(self, *, messages: int, capacity: int = DEFAULT_CAPACITY) -> None:
        if messages < 1 or capacity < 1:
            raise ValueError("messages and capacity must be at least 1")
        self._messages = messages
        self._capacity = capacity
        self._windows: OrderedDict[WindowKey, list[Fragment]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    async def add(self, key: WindowKey, fragment: Fragment) -> list[Fragment]:
        """Append ``fragment`` (once per dedupe key); the entries before it, oldest first."""
        window = self._windows.setdefault(key, [])
        self._windows.move_to_end(key)
        for index, entry in enumerate(window):
            if entry.dedupe_key == fragment.dedupe_key:
                return window[:index]
        before = list(window)
        window.append(fragment)
        del window[: -self._messages]
        while len(self._windows) > self._capacity:
            self._windows.popitem(last=False)
        return before


# KEYS[1] the window; ARGV: dedupe key, entry JSON, entries kept, TTL seconds. Answers the entries
# before this dedupe key's (all of them when it is new, after appending it).
_ADD = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, item in ipairs(items) do
  if cjson.decode(item)['k'] == ARGV[1] then
    local before = {}
    for j = 1, i - 1 do before[j] = items[j] end
    return before
  end
end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return items
"""


class RedisSplitWindow:
    """Windows in Redis, shared by every worker and host (keys under ``prefix``).

    The Redis client is the caller's (the app creates and closes it).
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str, messages: int, ttl_s: int) -> None:
        if messages < 1 or ttl_s < 1:
            raise ValueError("messages and ttl_s must be at least 1")
        self._redis = redis
        self._prefix = f"{prefix}split:"
        self._messages = messages
        self._ttl_s = ttl_s
        self._failing = False

    def key(self, key: WindowKey) -> str:
        """The Redis key of a window; sender ids hold no ``:``, so it is unambiguous."""
        return f"{self._prefix}{key.sender}:{key.conversation}"

    async def add(self, key: WindowKey, fragment: Fragment) -> list[Fragment]:
        """Append ``fragment`` (once per dedupe key); the entries before it, oldest first."""
        try:
            raw: list[bytes] = await self._redis.eval(
                _ADD,
                1,
                self.key(key),
                fragment.dedupe_key,
                fragment.dumps(),
                self._messages,
                self._ttl_s,
            )
            before = [Fragment.loads(item) for item in raw]
        except Exception as exc:  # Redis away (or a damaged entry): match the message alone
            if not self._failing:
                self._failing = True
                pipeline_log.warning(
                    "split-message window unavailable (%s); matching messages one by one", exc
                )
            return []
        if self._failing:
            self._failing = False
            pipeline_log.info("split-message window available again")
        return before


@dataclass(slots=True)
class SplitStage:
    """Match the sender's recent messages plus this one; add the split hits this one completes.

    Args:
        window: where the recent messages are kept.
        rules: the engine whose current rules match them.
        messages: messages matched together, this one included (``[rules].split_window_messages``).
        window_s: how far apart (create times) the first and the last may be (``split_window_s``).
    """

    window: SplitWindow
    rules: RuleEngine
    messages: int
    window_s: int

    async def __call__(self, handler: NextHandler, msg: Inbound, ctx: Context) -> HandlerResult:
        text = msg.text
        if text and ctx.inspection is not None:
            await self._inspect(msg, text, ctx)
        return await handler(msg, ctx)

    async def _inspect(self, msg: Inbound, text: str, ctx: Context) -> None:
        facts = ctx.facts
        key = WindowKey(facts.conversation_id or f"{facts.channel}:{msg.from_user}", msg.from_user)
        at = msg.create_time
        earlier = await self.window.add(key, Fragment.of(msg.dedupe_key, text, at))
        recent = [f for f in earlier if abs(at - f.at) <= self.window_s][-(self.messages - 1) :]
        if not recent:
            return
        fragments = [*recent, Fragment(msg.dedupe_key, text, 0, at)]
        try:
            found = self.rules.split_hits(list(enumerate(f.text for f in fragments)), facts.author)
        except Exception:  # a rules bug must not lose the message: keep its own hits
            pipeline_log.exception("split-message matching failed for %s", msg.dedupe_key)
            return
        if not found:
            return
        newest = len(fragments) - 1
        added: list[Hit] = []
        for split in found:
            own = split.parts[-1]
            if own.message != newest:  # split_hits only answers hits ending in the newest
                continue
            hit = Hit(split.word, own.start, own.end, split.group, split.severity, via="split")
            ctx.hit_parts[hit] = tuple(
                HitPart(
                    fragments[p.message].dedupe_key,
                    fragments[p.message].offset + p.start,
                    fragments[p.message].offset + p.end,
                )
                for p in split.parts
            )
            added.append(hit)
        if added and ctx.inspection is not None:
            inspection = ctx.inspection
            ctx.inspection = replace(
                inspection,
                hits=(*inspection.hits, *added),
                recipients=_recipients(inspection.recipients, self.rules, added),
            )
            pipeline_log.debug(
                "split-message hit in %s: %s", msg.dedupe_key, ", ".join(h.word for h in added)
            )


def _recipients(current: tuple[str, ...], rules: RuleEngine, added: list[Hit]) -> tuple[str, ...]:
    """The inspection's recipients with those of the groups the split hits belong to."""
    groups = {g.name: g for g in rules.rules.groups}
    out = list(current)
    for hit in added:
        group = groups.get(hit.group)
        for userid in group.recipients if group is not None else ():
            if userid not in out:
                out.append(userid)
    return tuple(out)
