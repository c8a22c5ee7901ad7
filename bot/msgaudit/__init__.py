"""The conversation archive puller (会话内容存档).

Modules: ``convert`` (record -> ChatMessage: audience, conversation), ``opening`` (RSA + DecryptData
+ parse, in a thread), ``page`` (archive one page through the pipeline), ``store`` (cursor, fence,
quarantine), ``puller`` (notices, pages, periodic pass, keys, quarantine retry), ``media``
(downloads), ``lag`` (metric and operator message), ``resource`` (the app's ``msgaudit_ctx``),
``cli`` (``run_bot.py msgaudit``). Nothing is imported here: ``resource`` and ``cli`` need
``bot.web``, which needs ``puller``.
"""

from __future__ import annotations

__all__: list[str] = []
