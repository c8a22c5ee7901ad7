"""One pulled ``sync_msg`` page: archive every item, then decide and commit in one transaction.

Order of work (the no-data-loss rule, then the "never answer twice" rule):

1. every item goes through the pipeline (:func:`bot.inbound.chat.feed`: dedupe, rules with the real
   author, alerts, durable archive); one conversation's items in order, conversations side by
   side so their stores share group commits. Unparsable items are archived raw. A fresh
   ``enter_session`` gets its welcome as soon as it is stored (its code lives 20 s);
2. recalls and send failures become flags; customer messages become questions;
3. the session state of each customer with recent undecided messages (``kf/service_state/get``);
4. :func:`bot.kf.store.commit_page`: fence check, flags, decisions, pending actions, cursor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from bot.config import Config
from bot.inbound.chat import feed, per_conversation
from bot.inbound.chat_message import ChatMessage
from bot.inbound.pipeline import Pipeline
from bot.kf.convert import from_item, from_unparsable, key_of_msgid
from bot.kf.log import kf_log
from bot.kf.plan import Question
from bot.kf.store import CustomerPage, Flag, PageCommit, commit_page, decided_keys
from bot.kf.welcome import Welcomer
from bot.web.metrics import BotMetrics
from monitor.archive import GroupCommitWriter
from monitor.archive.kf_models import MessageFlag
from rules.engine import RuleEngine
from rules.models import Audience
from wecom_sdk.client import WeComClient
from wecom_sdk.errors import KfItemError, WeComError
from wecom_sdk.messages.kf import (
    KfAuthor,
    KfEnterSession,
    KfEvent,
    KfItem,
    KfMsgSendFail,
    KfRecall,
    KfText,
    parse_kf_item,
)

__all__ = ["PageWork"]

_Entry = tuple[ChatMessage, KfItem | None]


@dataclass(frozen=True, slots=True)
class PageWork:
    """What processing a page needs (built once per puller)."""

    client: WeComClient
    pipeline: Pipeline
    config: Config
    writer: GroupCommitWriter
    rules: RuleEngine
    welcomer: Welcomer
    clock: Callable[[], float]
    metrics: BotMetrics | None = None

    async def process(
        self, open_kfid: str, fence: int, next_cursor: str, items: list[dict[str, Any]]
    ) -> int:
        """Archive, decide and commit one page; returns the actions recorded.

        Raises:
            monitor.errors.StorageError: archiving or the commit failed (cursor not moved).
            bot.kf.store.FencedOut: a newer puller owns the account.
        """
        entries = [_entry(raw, open_kfid) for raw in items]
        welcomes: list[asyncio.Task[bool]] = []
        try:
            await self._archive(entries, open_kfid, welcomes)
            flags, questions = self._collect(entries)
            states = await self._states(open_kfid, await self._answerable(questions))
            customers = [
                CustomerPage(user, max(q.send_time for q in qs), qs, states.get(user, 1))
                for user, qs in questions.items()
            ]
            page = PageCommit(open_kfid, fence, next_cursor, self.clock(), flags, customers)
            settings = self.config.kf
            recorded = await self.writer.run(lambda conn: commit_page(conn, page, settings))
            self._count(entries)
            return recorded
        finally:
            if welcomes:  # never left running past the page (shutdown, errors)
                await asyncio.gather(*welcomes, return_exceptions=True)

    def _count(self, entries: list[_Entry]) -> None:
        if self.metrics is None:
            return
        self.metrics.kf_pages.inc()
        for msg, _item in entries:
            self.metrics.kf_items.labels(msg.author.value).inc()

    async def _archive(
        self, entries: list[_Entry], open_kfid: str, welcomes: list[asyncio.Task[bool]]
    ) -> None:
        async def archive(entry: _Entry) -> None:
            msg, item = entry
            outcome = await feed(self.pipeline, self.config, msg)
            if outcome.stored and isinstance(item, KfEnterSession) and self.welcomer.wanted(item):
                welcomes.append(asyncio.create_task(self.welcomer.send(item, open_kfid)))

        await per_conversation(entries, lambda entry: entry[0].conversation_id, archive)

    def _collect(self, entries: list[_Entry]) -> tuple[list[Flag], dict[str, list[Question]]]:
        """Flags from recalls and send failures; customer messages by customer, in order."""
        flags: list[Flag] = []
        questions: dict[str, list[Question]] = {}
        seen: set[str] = set()  # WeCom may repeat an item within a page: decide it once
        for msg, item in entries:
            if msg.dedupe_key in seen:
                continue
            seen.add(msg.dedupe_key)
            if isinstance(item, KfRecall) and item.recall_msgid:
                key = key_of_msgid(item.recall_msgid)
                flags.append(Flag(key, MessageFlag.RECALLED, item.event_type, msg.dedupe_key))
            elif isinstance(item, KfMsgSendFail) and item.fail_msgid:
                flags.append(
                    Flag(
                        f"kfbot:{item.fail_msgid}",
                        MessageFlag.SEND_FAILED,
                        str(item.fail_type),
                        msg.dedupe_key,
                        failed_msgid=item.fail_msgid,
                        fail_type=item.fail_type,
                    )
                )
            elif _from_customer(item):
                questions.setdefault(item.external_userid, []).append(self._question(msg, item))
        return flags, questions

    def _question(self, msg: ChatMessage, item: KfItem) -> Question:
        # Inspected again for the decision: a repeat dropped by the pipeline's dedupe was not
        # inspected there. The plan applies the kf cooldowns (kf_reply's last-sent times).
        text = item.text
        return Question(
            msg.dedupe_key,
            item.msgid,
            item.send_time,
            text,
            self.rules.inspect(text, Audience.CUSTOMER) if text else None,
            item.menu_id if isinstance(item, KfText) else "",
        )

    async def _answerable(self, questions: Mapping[str, list[Question]]) -> set[str]:
        """Customers with a message that is recent and was not decided before: only their
        session state matters (a re-read after a crash, or days of history, ask for none)."""
        oldest = self.clock() - self.config.kf.reply_max_age_s
        keys = [q.dedupe_key for qs in questions.values() for q in qs if q.send_time >= oldest]
        if not keys:
            return set()
        decided = await self.writer.run(lambda conn: decided_keys(conn, keys))
        return {
            user
            for user, qs in questions.items()
            if any(q.dedupe_key not in decided and q.send_time >= oldest for q in qs)
        }

    async def _states(self, open_kfid: str, users: set[str]) -> dict[str, int]:
        """Session state per customer; 1 (with the bot) when WeCom cannot say: it refuses a send
        to a session that is not, so guessing wrong costs a refused call, never a wrong reply."""
        slots = asyncio.Semaphore(8)

        async def state(user: str) -> tuple[str, int]:
            async with slots:
                try:
                    got = await self.client.kf.service_state_get(open_kfid, user)
                except WeComError as exc:
                    kf_log.warning("kf service_state/get failed (%s); assuming the bot serves", exc)
                    return user, 1
                return user, got.state

        return dict(await asyncio.gather(*(state(u) for u in users)))


def _from_customer(item: KfItem | None) -> TypeGuard[KfItem]:
    return (
        item is not None
        and item.author is KfAuthor.CUSTOMER
        and not isinstance(item, KfEvent)
        and bool(item.external_userid)
    )


def _entry(raw: dict[str, Any], open_kfid: str) -> _Entry:
    try:
        item = parse_kf_item(raw)
    except KfItemError as exc:
        kf_log.warning("kf item refused by the parser (%s); archived raw", exc)
        return from_unparsable(raw, open_kfid), None
    return from_item(item, open_kfid), item
