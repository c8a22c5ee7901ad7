"""Routers: per-kind observers, composable filters, first match wins (aiogram's model, async only).

```python
router = Router("faq")

@router.text(Keyword("发货"))
async def shipping(msg: TextMessage, ctx: Context) -> str:
    return "一般 48 小时内发货。"
```
A handler returns a reply (``Reply`` or ``str``) or ``None``. Included routers are searched depth-first
in inclusion order, after the including router's own handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from bot.handlers.filters import And, EventIs, Filter, MsgType
from bot.inbound.context import Context, Inbound
from wecom_sdk.replies import Reply

__all__ = ["UNHANDLED", "Handler", "HandlerResult", "Router"]

HandlerResult: TypeAlias = Reply | str | None
Handler: TypeAlias = Callable[[Any, Context], Awaitable[HandlerResult]]


class _Unhandled:
    """Sentinel: no handler matched (different from a handler that chose not to reply)."""

    def __repr__(self) -> str:
        return "UNHANDLED"


UNHANDLED: Final = _Unhandled()


@dataclass(frozen=True, slots=True)
class _HandlerObject:
    callback: Handler
    #: All of the handler's filters, combined with ``And`` (which merges their dicts).
    filter: And


class Router:
    """A named set of handlers; feature modules each own one and the root includes them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[_HandlerObject] = []
        self._children: list[Router] = []

    def include(self, router: Router) -> Router:
        """Add a child router (searched after this router's own handlers)."""
        if router is self or self in router.walk():
            raise ValueError(f"including router {router.name!r} would make a cycle")
        self._children.append(router)
        return router

    def walk(self) -> list[Router]:
        """This router and every router included below it, depth first."""
        found = [self]
        for child in self._children:
            found.extend(child.walk())
        return found

    def register(self, callback: Handler, *filters: Filter) -> Handler:
        """Register ``callback`` for messages passing every filter."""
        self._handlers.append(_HandlerObject(callback, And(*filters)))
        return callback

    def message(self, *filters: Filter) -> Callable[[Handler], Handler]:
        """Decorator: any message or event."""
        return lambda fn: self.register(fn, *filters)

    def text(self, *filters: Filter) -> Callable[[Handler], Handler]:
        """Decorator: text messages."""
        return lambda fn: self.register(fn, MsgType("text"), *filters)

    def event(self, *names: str, filters: tuple[Filter, ...] = ()) -> Callable[[Handler], Handler]:
        """Decorator: events, optionally only the named ones (``router.event("enter_agent")``)."""
        kind: Filter = EventIs(*names) if names else MsgType("event")
        return lambda fn: self.register(fn, kind, *filters)

    async def dispatch(self, msg: Inbound, ctx: Context) -> HandlerResult | _Unhandled:
        """Run the first handler whose filters pass; ``UNHANDLED`` when none does."""
        for handler in self._handlers:
            passed = await handler.filter(msg, ctx)
            if passed:
                if isinstance(passed, dict):
                    ctx.data.update(passed)
                return await handler.callback(msg, ctx)
        for child in self._children:
            result = await child.dispatch(msg, ctx)
            if result is not UNHANDLED:
                return result
        return UNHANDLED
