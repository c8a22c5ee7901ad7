"""The kf tables' reads and writes, as units for the group-commit writer (``writer.run(fn)``).

The heart is :func:`commit_page`: once every item of a pulled page is archived, ONE transaction
checks the puller's fencing token, applies the page's flags (recalls, send failures), decides
every customer message not decided before (:mod:`bot.kf.plan`), records the resulting actions
as ``pending``, and moves the cursor. So either the page is decided and the cursor moved, or
neither: a crash before it re-reads the page (archive dedupe makes that harmless, and the
missing decisions are made then); a crash after it leaves pending actions, which are re-sent
with the same msgid.

The action rows' own reads and writes (pending, finished) are in :mod:`bot.kf.actions`.
Every function here runs on the writer thread inside a transaction and may run twice (the writer
retries a failed batch unit by unit): no side effects outside the connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, or_, select, update

from bot.config import KfConfig
from bot.kf.budget import Budget
from bot.kf.plan import CustomerPlan, CustomerView, Question, plan_customer
from bot.pull_lock import FencedOut
from monitor.archive.flags import NewFlag, record_flags
from monitor.archive.kf_models import (
    ActionKind,
    ActionStatus,
    KfActionRecord,
    KfCursorRecord,
    KfCustomerRecord,
    KfDecisionRecord,
)
from monitor.archive.upsert import insert_ignore, upsert

__all__ = [
    "CustomerPage",
    "Flag",
    "PageCommit",
    "claim_fence",
    "commit_page",
    "decided_keys",
    "known_accounts",
]

_CURSOR: Table = KfCursorRecord.__table__
_CUSTOMER: Table = KfCustomerRecord.__table__
_ACTION: Table = KfActionRecord.__table__
_DECISION: Table = KfDecisionRecord.__table__


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def claim_fence(conn: Connection, open_kfid: str, now: float) -> tuple[int, str]:
    """Take the next fencing token for ``open_kfid``; returns it and the stored cursor."""
    stmt = (
        upsert(conn.dialect, _CURSOR, ["open_kfid"], {"fence": _CURSOR.c.fence + 1})
        .values(open_kfid=open_kfid, cursor="", fence=1, updated_at=_at(now))
        .returning(_CURSOR.c.fence, _CURSOR.c.cursor)
    )
    fence, cursor = conn.execute(stmt).one()
    return int(fence), str(cursor)


def decided_keys(conn: Connection, keys: list[str]) -> set[str]:
    """Which of these customer messages were decided before."""
    query = select(_DECISION.c.dedupe_key).where(_DECISION.c.dedupe_key.in_(keys))
    return {str(row[0]) for row in conn.execute(query)}


def known_accounts(conn: Connection) -> list[str]:
    """Every kf account pulled so far (for the periodic pull)."""
    return [str(row[0]) for row in conn.execute(select(_CURSOR.c.open_kfid))]


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag a system event puts on an archived message (recall, send failure)."""

    dedupe_key: str
    flag: str
    detail: str
    source_key: str
    #: For a send failure: our msgid, whose action row records the failure too.
    failed_msgid: str = ""
    fail_type: int | None = None


@dataclass(frozen=True, slots=True)
class CustomerPage:
    """One customer's part of a page: its newest message time and the messages to decide."""

    external_userid: str
    latest_customer_at: int
    questions: list[Question]
    service_state: int = 1


@dataclass(frozen=True, slots=True)
class PageCommit:
    """Everything :func:`commit_page` writes for one page."""

    open_kfid: str
    fence: int
    cursor: str
    now: float
    flags: list[Flag] = field(default_factory=list)
    customers: list[CustomerPage] = field(default_factory=list)


def commit_page(conn: Connection, page: PageCommit, settings: KfConfig) -> int:
    """Decide, record and move the cursor in one transaction; returns the actions recorded.

    Raises:
        FencedOut: the stored fence is not ``page.fence`` (a newer puller took over).
    """
    moved = conn.execute(
        update(_CURSOR)
        .where(_CURSOR.c.open_kfid == page.open_kfid, _CURSOR.c.fence == page.fence)
        .values(cursor=page.cursor, updated_at=_at(page.now))
    )
    if moved.rowcount != 1:
        raise FencedOut(page.open_kfid)
    _apply_flags(conn, page)
    return sum(_decide_customer(conn, page, customer, settings) for customer in page.customers)


def _apply_flags(conn: Connection, page: PageCommit) -> None:
    now = _at(page.now)
    record_flags(
        conn, [NewFlag(f.dedupe_key, f.flag, f.detail, f.source_key, now) for f in page.flags]
    )
    for f in page.flags:
        if f.failed_msgid:
            conn.execute(
                update(_ACTION)
                .where(_ACTION.c.msgid == f.failed_msgid)
                .values(status=ActionStatus.SEND_FAILED_EVENT, fail_type=f.fail_type)
            )


def _decide_customer(
    conn: Connection, page: PageCommit, customer: CustomerPage, settings: KfConfig
) -> int:
    kfid, user = page.open_kfid, customer.external_userid
    decided = decided_keys(conn, [q.dedupe_key for q in customer.questions])
    questions = [q for q in customer.questions if q.dedupe_key not in decided]
    mine = (_CUSTOMER.c.open_kfid == kfid, _CUSTOMER.c.external_userid == user)
    row = conn.execute(
        select(_CUSTOMER.c.last_customer_at, _CUSTOMER.c.unanswered).where(*mine)
    ).first()
    stored_at, unanswered = (int(row[0]), int(row[1])) if row is not None else (0, 0)
    window_start = max(stored_at, customer.latest_customer_at)
    plan = CustomerPlan([], [], unanswered)  # a re-read: all decided before
    if questions:
        view = CustomerView(
            open_kfid=kfid,
            external_userid=user,
            # A transfer decided earlier and not yet performed (WeCom still says "with the
            # bot"): the customer is already on the way to a human.
            service_state=2 if _transfer_pending(conn, kfid, user) else customer.service_state,
            unanswered=unanswered,
            budget=Budget(window_start, _used(conn, kfid, user, window_start)),
            last_sent=_last_sent(conn, kfid, user),
        )
        plan = plan_customer(view, questions, settings, page.now)
    now = _at(page.now)
    if plan.decisions:
        conn.execute(
            insert(_DECISION),
            [
                {
                    "dedupe_key": key,
                    "open_kfid": kfid,
                    "external_userid": user,
                    "outcome": outcome,
                    "decided_at": now,
                }
                for key, outcome in plan.decisions
            ],
        )
    actions = [
        {
            "msgid": a.msgid,
            "open_kfid": kfid,
            "external_userid": user,
            "in_reply_to": a.in_reply_to,
            "kind": a.kind,
            "rule": a.rule,
            "msgtype": a.msgtype,
            "body": json.dumps(a.body, ensure_ascii=False),
            "window_start": window_start,
            "status": ActionStatus.PENDING,
            "created_at": now,
        }
        for a in plan.actions
    ]
    if actions:
        conn.execute(insert_ignore(conn.dialect, _ACTION, ["msgid"]), actions)
    values = {"last_customer_at": window_start, "unanswered": plan.unanswered, "updated_at": now}
    conn.execute(
        upsert(conn.dialect, _CUSTOMER, ["open_kfid", "external_userid"], values).values(
            open_kfid=kfid, external_userid=user, **values
        )
    )
    return len(actions)


def _customer_actions(kfid: str, user: str) -> tuple[Any, ...]:
    return (
        _ACTION.c.open_kfid == kfid,
        _ACTION.c.external_userid == user,
        _ACTION.c.status != ActionStatus.FAILED,
    )


def _transfer_pending(conn: Connection, kfid: str, user: str) -> bool:
    query = select(_ACTION.c.id).where(
        *_customer_actions(kfid, user),
        _ACTION.c.kind == ActionKind.TRANSFER,
        _ACTION.c.status == ActionStatus.PENDING,
    )
    return conn.execute(query.limit(1)).first() is not None


def _used(conn: Connection, kfid: str, user: str, window_start: int) -> int:
    # WeCom counts every bot message sent after the newest customer message, whenever it was
    # decided: a customer's messages may span pages (all written before our first answer), so a
    # reply decided for an earlier page, and sent after window_start, uses this window's slots.
    # Decided-at is a safe stand-in for sent-at (sending only follows deciding); a pending
    # action will be sent after window_start in any case.
    query = (
        select(func.count())
        .select_from(_ACTION)
        .where(
            *_customer_actions(kfid, user),
            _ACTION.c.kind.in_(ActionKind.BUDGETED),
            or_(
                _ACTION.c.window_start >= window_start,
                _ACTION.c.created_at >= _at(window_start),
                _ACTION.c.status == ActionStatus.PENDING,
            ),
        )
    )
    return int(conn.execute(query).scalar_one())


def _last_sent(conn: Connection, kfid: str, user: str) -> dict[str, float]:
    query = (
        select(_ACTION.c.rule, func.max(_ACTION.c.created_at))
        .where(*_customer_actions(kfid, user), _ACTION.c.rule != "")
        .group_by(_ACTION.c.rule)
    )
    # max() keeps the column's type, so the UTC datetime type converts the result as usual.
    return {str(rule): created.timestamp() for rule, created in conn.execute(query)}
