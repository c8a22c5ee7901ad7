"""The root router: every feature router is included here, in priority order."""

from __future__ import annotations

from bot.handlers.kf_notices import router as kf_notices_router
from bot.handlers.msgaudit_notices import router as msgaudit_notices_router
from bot.handlers.reply_rules import router as reply_rules_router
from bot.handlers.router import Router

__all__ = ["build_root_router"]


def build_root_router() -> Router:
    """A fresh root router (one per app, so nothing is shared between workers or tests)."""
    root = Router("root")
    root.include(reply_rules_router())
    root.include(kf_notices_router())
    root.include(msgaudit_notices_router())
    return root
