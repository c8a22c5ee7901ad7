"""The root router: every feature router is included here, in priority order."""

from __future__ import annotations

from bot.handlers.greeting import router as greeting_router
from bot.handlers.handoff import router as handoff_router
from bot.router import Router

__all__ = ["build_root_router"]


def build_root_router() -> Router:
    """A fresh root router (one per app, so nothing is shared between workers or tests)."""
    root = Router("root")
    root.include(handoff_router())
    root.include(greeting_router())
    return root
