"""微信客服 (WeChat Customer Service, kf): pull, archive, auto-reply, hand-off, welcome.

Modules: ``convert`` (kf item -> ChatMessage), ``puller``
(notices, pages, periodic pass), ``page`` (archive + decide one page), ``plan`` / ``budget`` /
``handoff`` (pure decisions), ``replies`` (kf bodies, idempotent msgids), ``store`` / ``actions``
(the kf tables), ``sender`` (perform actions), ``welcome``, ``resource`` (the app's ``kf_ctx``;
not imported here, it needs ``bot.web.keys``, which needs this package).
"""

from __future__ import annotations

from bot.kf.puller import KfPuller
from bot.pull_lock import MemoryPullLocks, PullLocks, RedisPullLocks

__all__ = ["KfPuller", "MemoryPullLocks", "PullLocks", "RedisPullLocks"]
