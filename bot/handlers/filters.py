"""Composable handler filters (aiogram style): ``Keyword("人工") & ~FromUser("bot")``.

A filter is awaited with ``(msg, ctx)`` and returns ``False`` (no match), ``True`` (match) or a dict
(match, and the dict's items are added to ``ctx.data`` for the handler).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from bot.inbound.context import Context, Inbound
from wecom_sdk.messages.callback import TextMessage

__all__ = [
    "And",
    "EventIs",
    "Filter",
    "FilterResult",
    "Func",
    "Invert",
    "Keyword",
    "MsgType",
    "Or",
    "Regex",
]

FilterResult = bool | dict[str, Any]


class Filter(ABC):
    """Base of every filter; supports ``&``, ``|`` and ``~``."""

    @abstractmethod
    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        """Decide whether the handler applies to ``msg``."""

    def __and__(self, other: Filter) -> Filter:
        return And(self, other)

    def __or__(self, other: Filter) -> Filter:
        return Or(self, other)

    def __invert__(self) -> Filter:
        return Invert(self)


class And(Filter):
    """Every part must match; their dicts are merged."""

    def __init__(self, *parts: Filter) -> None:
        self.parts = parts

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        merged: dict[str, Any] = {}
        for part in self.parts:
            result = await part(msg, ctx)
            if not result:
                return False
            if isinstance(result, dict):
                merged.update(result)
        return merged or True


class Or(Filter):
    """The first part that matches decides."""

    def __init__(self, *parts: Filter) -> None:
        self.parts = parts

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        for part in self.parts:
            result = await part(msg, ctx)
            if result:
                return result
        return False


class Invert(Filter):
    """Match when the inner filter does not."""

    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        return not await self.inner(msg, ctx)


class Func(Filter):
    """Wrap a plain predicate, sync or async."""

    def __init__(
        self, predicate: Callable[[Inbound, Context], FilterResult | Awaitable[FilterResult]]
    ) -> None:
        self.predicate = predicate

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        result = self.predicate(msg, ctx)
        if isinstance(result, Awaitable):
            return await result
        return result


class MsgType(Filter):
    """Match messages of the given ``MsgType`` values (``text``, ``image``, ``event``...)."""

    def __init__(self, *types: str) -> None:
        self.types = frozenset(t.lower() for t in types)

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        return msg.msg_type.lower() in self.types


class EventIs(Filter):
    """Match events by name, case-insensitively (WeCom writes ``LOCATION`` but ``enter_agent``)."""

    def __init__(self, *names: str) -> None:
        self.names = frozenset(n.lower() for n in names)

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        return msg.event is not None and msg.event.lower() in self.names


class Keyword(Filter):
    """Match text messages by keyword: ``exact`` (whole message, trimmed) or ``contains``.

    On a match, ``ctx.data["keyword"]`` holds the keyword that matched.
    """

    def __init__(self, *words: str, exact: bool = False) -> None:
        if not words:
            raise ValueError("Keyword needs at least one word")
        self.words = tuple(words)
        self.exact = exact

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        if not isinstance(msg, TextMessage):
            return False
        text = msg.content.strip()
        for word in self.words:
            if (text == word) if self.exact else (word in text):
                return {"keyword": word}
        return False


class Regex(Filter):
    """Match text messages by regular expression; ``ctx.data["match"]`` holds the match."""

    def __init__(self, pattern: str | re.Pattern[str]) -> None:
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern

    async def __call__(self, msg: Inbound, ctx: Context) -> FilterResult:
        if not isinstance(msg, TextMessage):
            return False
        found = self.pattern.search(msg.content)
        return {"match": found} if found else False
