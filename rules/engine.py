"""RuleEngine: the current compiled rules, hot reload, and the time-of-day reply gate.

One message is always inspected with one rule version: the engine keeps an immutable ``_Loaded``
(rule set + compiled :class:`~rules.matcher.Matcher`) in a single attribute, ``inspect`` reads that
attribute once, and a reload replaces it with one assignment. A broken edit never takes effect: the
previous rules keep running and the problems are logged (logger ``sentinel.rules``).

``inspect`` is a pure function of (text, author, time) and the rules in force. It applies
``active_hours``: a reply rule outside its windows (local time of the injected clock) does not
answer, and the next matching rule by priority that is active answers instead. A rule's
``cooldown_s`` is per customer and shared by every worker, so the bot applies it to the chosen
rule (:mod:`bot.inbound.cooldowns`), not this engine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from rules.conversation import ConversationHit, split_hits
from rules.errors import RuleFileError
from rules.hit_filters import token_bounds
from rules.loader import load_rules, rule_files
from rules.log import rules_log
from rules.matcher import Matcher, compile_rules
from rules.models import Audience, Inspection, ReplyRule, RuleSet
from rules.normalize import fold_chars

__all__ = ["RuleEngine"]

_Stamp = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One loaded rule version; replaced as a whole, never mutated (except its private cache)."""

    rules: RuleSet
    matcher: Matcher
    #: Reply-only matchers over the rules active at some hour, keyed by the active rules' names.
    reply_matchers: dict[frozenset[str], Matcher] = field(default_factory=dict)


class RuleEngine:
    """Holds the compiled rules of ``paths`` and answers :meth:`inspect` for the pipeline.

    Args:
        paths: rule files and folders (``[rules] paths``).
        clock: seconds since the epoch; injected so tests control active hours.
        poll_interval_s: how often :meth:`watch` looks at the files.

    Raises:
        RuleFileError: the initial rules are invalid (a server must not start without rules).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        clock: Callable[[], float] = time.time,
        poll_interval_s: float = 2.0,
    ) -> None:
        self._paths = tuple(paths)
        self._clock = clock
        self._poll_interval_s = poll_interval_s
        # Serialises reloads and compiles: two reloads (watch + a manual one) never interleave.
        self._compile_lock = threading.Lock()
        # Stamp before loading: a change made during the load is seen by the next poll.
        self._stamp = self._fingerprint()
        self._loaded = self._load()
        # jieba's dictionary and the fold table are built on first use (~1 s each): do it now,
        # not inside the first message's 5-second WeCom deadline.
        token_bounds("预热")
        fold_chars("预热")

    @property
    def version(self) -> str:
        """Version of the rules currently in force (content hash)."""
        return self._loaded.matcher.version

    @property
    def rules(self) -> RuleSet:
        """The rule set currently in force."""
        return self._loaded.rules

    def _load(self) -> _Loaded:
        rules = load_rules(self._paths)
        return _Loaded(rules, compile_rules(rules))

    def _fingerprint(self) -> _Stamp:
        """Names, mtimes and sizes of the rule files (a folder's listing is part of it)."""
        files, problems = rule_files(self._paths)
        stamp: list[tuple[str, int, int]] = []
        for path in files:
            try:
                st = path.stat()
            except OSError:  # vanished between listing and stat: a change all the same
                stamp.append((str(path), -1, -1))
            else:
                stamp.append((str(path), st.st_mtime_ns, st.st_size))
        stamp.extend((p.file, -1, -1) for p in problems)
        return tuple(stamp)

    def reload(self) -> bool:
        """Re-read the rule files; swap them in if valid, else keep the current rules.

        Returns:
            True when the new rules are in force, False when they were rejected (reason logged).
        """
        with self._compile_lock:
            stamp = self._fingerprint()
            old = self._loaded.matcher.version
            try:
                loaded = self._load()
            except RuleFileError as exc:
                self._stamp = stamp  # do not re-log the same broken files on every poll
                rules_log.error("rule files rejected, keeping version %s:\n%s", old, exc)
                return False
            except Exception:  # a watcher must survive any compile failure; keep serving
                self._stamp = stamp
                rules_log.exception("rule compile failed, keeping version %s", old)
                return False
            self._stamp = stamp
            self._loaded = loaded  # the atomic swap
        if loaded.matcher.version != old:
            rules_log.info("rules reloaded: version %s -> %s", old, loaded.matcher.version)
        return True

    def changed(self) -> bool:
        """Whether the files' names, mtimes or sizes differ from the last (re)load."""
        return self._fingerprint() != self._stamp

    async def watch(self) -> None:
        """Poll the rule files every ``poll_interval_s`` and reload on change; runs until cancelled."""
        while True:
            await asyncio.sleep(self._poll_interval_s)
            if self.changed():
                # Compiling may take a while on a big rule set: keep the event loop free.
                await asyncio.to_thread(self.reload)

    def inspect(
        self,
        text: str,
        author: Audience = Audience.ANY,
        *,
        now: float | None = None,
    ) -> Inspection:
        """Hits and the reply rule chosen for one message, all from one rule version.

        Args:
            text: the message text.
            author: who wrote it (selects the groups by audience).
            now: epoch seconds (default: the clock); active hours use its local time.
        """
        loaded = self._loaded  # read once: the whole inspection uses this version
        result = loaded.matcher.inspect(text, author)
        if result.reply is None:
            return result
        moment = self._clock() if now is None else now
        if _active(result.reply, moment):
            return result
        return replace(result, reply=self._active_matcher(loaded, moment).match_reply(text))

    def split_hits(
        self, fragments: Sequence[tuple[int, str]], author: Audience = Audience.ANY
    ) -> list[ConversationHit]:
        """Words split over one sender's recent messages and completed by the newest one.

        Args:
            fragments: ``(index, text)`` of the sender's messages, oldest first, the newest last;
                the caller holds them (the live window, :mod:`bot.inbound.split_window`).
            author: who wrote them (selects the groups by audience).
        """
        return split_hits(self._loaded.matcher, fragments, author)

    def _active_matcher(self, loaded: _Loaded, moment: float) -> Matcher:
        active = tuple(r for r in loaded.rules.replies if _active(r, moment))
        key = frozenset(r.name for r in active)
        matcher = loaded.reply_matchers.get(key)
        if matcher is None:
            with self._compile_lock:
                matcher = loaded.reply_matchers.get(key)
                if matcher is None:
                    sub = RuleSet(groups=(), replies=active, version=loaded.rules.version)
                    matcher = loaded.reply_matchers[key] = compile_rules(sub)
        return matcher


def _active(rule: ReplyRule, moment: float) -> bool:
    if not rule.active_hours:
        return True
    local = datetime.fromtimestamp(moment).time()
    return any(window.contains(local) for window in rule.active_hours)
