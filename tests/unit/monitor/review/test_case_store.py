"""The review web's reads and writes on both backends: queue, thread, cases, actions, notes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, insert, select

from monitor.alerts import store
from monitor.alerts.intake import CardStyle
from monitor.alerts.models import OutboxKind, OutboxStatus
from monitor.alerts.policy import AlertKind, AlertStatus, OpenAlert
from monitor.archive import Archive, ArchivedHit, GroupCommitWriter, InboundRecord, make_engine
from monitor.archive.audit import AUDIT
from monitor.archive.kf_models import MessageFlag, MessageFlagRecord
from monitor.archive.schema import create_schema
from monitor.review.case_actions import ActionRequest, add_note, record_view, run_action
from monitor.review.case_view import load_cases
from monitor.review.models import ReviewerRecord
from monitor.review.queue import QueueFilter, load_queue
from monitor.review.thread import Gap, ThreadMessage, load_thread
from monitor.review.transitions import ActionRefused, CaseAction, Transition
from rules.models import Severity

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONV = "kf:wk1:wmCustomer"
STYLE = CardStyle(review_base="https://sentinel.example.com/review")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def _message(
    n: int, text: str, direction: str, hits: tuple[ArchivedHit, ...] = ()
) -> InboundRecord:
    return InboundRecord(
        dedupe_key=f"kf:m{n}",
        channel="kf",
        msg_type="text",
        from_user="wmCustomer" if direction == "customer" else "zhangsan",
        to_user="wk1",
        create_time=int(T0.timestamp()) + n,
        raw="{}",
        content=text,
        conversation_id=CONV,
        direction=direction,
        rules_version="r1",
        hits=hits,
    )


def _alert(alert_id: str, **changes: object) -> OpenAlert:
    values: dict[str, object] = {
        "alert_id": alert_id,
        "conversation_id": CONV,
        "kind": AlertKind.CUSTOMER_RISK,
        "severity": Severity.HIGH,
        "words": ("维权",),
        "count": 1,
        "first_at": T0,
        "last_at": T0,
        "latest_text": "我要维权",
        "recipients": ("mgr1",),
        "customer_id": "wmCustomer",
        "staff_userid": "zhangsan",
    }
    values.update(changes)
    return OpenAlert(**values)


async def _seed(writer: GroupCommitWriter) -> int:
    """30 messages; message 20 says 我要维权 (a hit); alert a1 holds it, with one sent card."""
    archive = Archive(writer, clock=lambda: T0)
    hit_id = 0
    for n in range(30):
        if n == 20:
            hit = ArchivedHit(word="维权", group="customer_risk", severity=3, start=2, end=4)
            hit_id = (
                await archive.store_inbound(_message(n, "我要维权<script>", "customer", (hit,)))
            ).message_id
        else:
            who = "customer" if n % 2 else "staff"
            await archive.store_inbound(_message(n, f"第{n}条", who))

    def alert_rows(c: Connection) -> None:
        store.insert_alert(
            c, _alert("a1"), latest_message_id=hit_id, cards_sent=1, rules_version="r1"
        )
        store.link_message(c, "a1", hit_id)
        store.insert_alert(
            c,
            _alert(
                "a2",
                conversation_id="kf:wk1:wmOther",
                severity=Severity.CRITICAL,
                kind=AlertKind.STAFF_MISCONDUCT,
                words=("红包",),
                first_at=T0 + timedelta(hours=1),
                customer_id="wmOther",
                staff_userid="lisi",
            ),
            latest_message_id=None,
            cards_sent=0,
            rules_version="r1",
        )
        store.insert_alert(
            c,
            _alert(
                "a3",
                conversation_id="kf:wk1:wmThird",
                first_at=T0 - timedelta(days=1),
                status=AlertStatus.RESOLVED,
            ),
            latest_message_id=None,
            cards_sent=0,
            rules_version="r1",
        )
        c.execute(
            insert(store.OUTBOX).values(
                alert_id="a1",
                kind=OutboxKind.CARD,
                recipients='["mgr1"]',
                payload="{}",
                task_id="a1-1",
                status=OutboxStatus.SENT,
                attempts=1,
                created_at=T0,
                next_at=T0,
                sent_at=T0,
                delivered_to='["mgr1"]',
                response_code="rc-send",
                response_code_used=False,
            )
        )
        for name in ("li", "wang"):
            c.execute(
                insert(ReviewerRecord.__table__).values(
                    username=name, role="reviewer", password_hash="x", disabled=False, created_at=T0
                )
            )
        c.execute(
            insert(MessageFlagRecord.__table__).values(
                dedupe_key="kf:m21", flag=MessageFlag.RECALLED, created_at=T0
            )
        )

    await writer.run(alert_rows)
    return hit_id


def _read(engine: Engine, work):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return work(conn)


async def test_queue_orders_filters_and_counts(engine: Engine, writer: GroupCommitWriter) -> None:
    await _seed(writer)
    page = _read(engine, lambda c: load_queue(c, QueueFilter(), page_size=50))
    # Most severe first, then oldest; the resolved case is not in the open queue.
    assert [r.alert_id for r in page.rows] == ["a2", "a1"]
    assert page.counts[AlertStatus.OPEN] == 2 and page.counts[AlertStatus.RESOLVED] == 1
    assert page.total == 2
    staff = _read(engine, lambda c: load_queue(c, QueueFilter(audience="staff"), page_size=50))
    assert [r.alert_id for r in staff.rows] == ["a2"]
    word = _read(engine, lambda c: load_queue(c, QueueFilter(word="维"), page_size=50))
    assert word.rows == []  # a whole word, never a fragment
    word = _read(
        engine, lambda c: load_queue(c, QueueFilter(word="维权", state="all"), page_size=50)
    )
    assert [r.alert_id for r in word.rows] == ["a3", "a1"]  # same level: oldest first
    dated = QueueFilter(state="all", since=date(2026, 12, 1), until=date(2026, 12, 1))
    assert [
        r.alert_id for r in _read(engine, lambda c: load_queue(c, dated, page_size=50)).rows
    ] == ["a2", "a1"]
    paged = _read(engine, lambda c: load_queue(c, QueueFilter(page=2), page_size=1))
    assert ([r.alert_id for r in paged.rows], paged.pages) == (["a1"], 2)
    assert QueueFilter.from_query({"severity": "9", "state": "bogus", "page": "x"}) == QueueFilter()


async def test_thread_shows_context_around_hits(engine: Engine, writer: GroupCommitWriter) -> None:
    await _seed(writer)
    thread = _read(engine, lambda c: load_thread(c, CONV, context=2))
    kinds = [type(item).__name__ for item in thread.items]
    assert kinds == ["Gap", *["ThreadMessage"] * 5, "Gap"]
    assert isinstance(thread.items[0], Gap) and thread.items[0].count == 18
    messages = [i for i in thread.items if isinstance(i, ThreadMessage)]
    hit = messages[2]
    assert [(s.text, s.marked) for s in hit.segments] == [
        ("我要", False),
        ("维权", True),
        ("<script>", False),
    ]
    assert messages[3].recalled and not hit.recalled
    assert (thread.total, thread.hit_messages, thread.complete) == (30, 1, False)
    everything = _read(engine, lambda c: load_thread(c, CONV, context=100))
    assert everything.complete and everything.shown == 30


async def test_resolve_updates_every_card_and_audits(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    await _seed(writer)
    request = ActionRequest(
        "a1",
        CaseAction.RESOLVE,
        "li",
        False,
        T0 + timedelta(minutes=5),
        comment="已回访",
        address="10.0.0.7",
    )
    result = await writer.run(lambda c: run_action(c, request, card_style=STYLE, escalate_to=()))
    assert isinstance(result, Transition)
    (case,) = _read(engine, lambda c: load_cases(c, CONV))
    assert (case.status, case.closed_by, case.claimed_by) == (AlertStatus.RESOLVED, "li", "li")
    updates = _read(
        engine,
        lambda c: list(
            c.execute(select(store.OUTBOX).where(store.OUTBOX.c.kind == OutboxKind.CARD_UPDATE))
        ),
    )
    assert [json.loads(u.payload) for u in updates] == [
        {"userids": ["mgr1"], "response_code": "rc-send", "replace_name": "已由 li 处理"}
    ]
    audit = _read(engine, lambda c: list(c.execute(select(AUDIT).order_by(AUDIT.c.id))))
    assert [(a.actor, a.action, a.target, a.address, json.loads(a.detail)) for a in audit] == [
        (
            "li",
            "resolve",
            "a1",
            "10.0.0.7",
            {"after": "resolved", "before": "open", "comment": "已回访"},
        )
    ]
    assert any(event.comment == "已回访" for event in case.history)
    # A second action on the closed case is refused and writes nothing.
    again = await writer.run(lambda c: run_action(c, request, card_style=STYLE, escalate_to=()))
    assert isinstance(again, ActionRefused) and again.code == "closed"
    assert len(_read(engine, lambda c: list(c.execute(select(AUDIT))))) == 1


async def test_claim_conflict_between_two_reviewers(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    await _seed(writer)
    now = T0 + timedelta(minutes=1)
    li = ActionRequest("a1", CaseAction.CLAIM, "li", False, now)
    wang = ActionRequest("a1", CaseAction.CLAIM, "wang", False, now)
    first = await writer.run(lambda c: run_action(c, li, card_style=STYLE, escalate_to=()))
    second = await writer.run(lambda c: run_action(c, wang, card_style=STYLE, escalate_to=()))
    assert isinstance(first, Transition)
    assert isinstance(second, ActionRefused) and second.code == "claimed_by_other"
    assert "li" in second.message

    def ids(wanted: QueueFilter) -> list[str]:
        return [
            r.alert_id for r in _read(engine, lambda c: load_queue(c, wanted, page_size=9)).rows
        ]

    assert ids(QueueFilter(state="open")) == ["a2"]  # the status, not every active case
    assert ids(QueueFilter(state="claimed")) == ids(QueueFilter(assignee="li")) == ["a1"]
    assert ids(QueueFilter(assignee="-")) == ["a2"]
    assert ids(QueueFilter()) == ["a2", "a1"]
    assign = ActionRequest("a1", CaseAction.ASSIGN, "li", False, now, assignee="nobody")
    refused = await writer.run(lambda c: run_action(c, assign, card_style=STYLE, escalate_to=()))
    assert isinstance(refused, ActionRefused) and refused.code == "unknown_assignee"
    assign = ActionRequest("a1", CaseAction.ASSIGN, "li", False, now, assignee="wang")
    moved = await writer.run(lambda c: run_action(c, assign, card_style=STYLE, escalate_to=()))
    assert isinstance(moved, Transition) and moved.alert.claimed_by == "wang"


async def test_escalate_sends_an_escalation_card(engine: Engine, writer: GroupCommitWriter) -> None:
    await _seed(writer)
    request = ActionRequest(
        "a1", CaseAction.ESCALATE, "li", False, T0 + timedelta(minutes=9), comment="金额较大"
    )
    result = await writer.run(
        lambda c: run_action(c, request, card_style=STYLE, escalate_to=("boss",))
    )
    assert isinstance(result, Transition)
    (card,) = _read(
        engine,
        lambda c: list(
            c.execute(select(store.OUTBOX).where(store.OUTBOX.c.kind == OutboxKind.ESCALATION))
        ),
    )
    assert json.loads(card.recipients) == ["boss"]
    body = json.loads(card.payload)
    assert body["main_title"]["desc"] == "审核员 li 升级：金额较大"
    assert (
        body["card_action"]["url"]
        == "https://sentinel.example.com/review/conversations/kf%3Awk1%3AwmCustomer"
    )
    (case,) = _read(engine, lambda c: load_cases(c, CONV))
    assert case.status is AlertStatus.ESCALATED


async def test_notes_and_views_are_audited(engine: Engine, writer: GroupCommitWriter) -> None:
    await _seed(writer)
    now = T0 + timedelta(minutes=2)
    assert (
        await writer.run(lambda c: add_note(c, "a1", author="li", body="  ", now=now)) is not None
    )
    assert (
        await writer.run(lambda c: add_note(c, "nope", author="li", body="x", now=now)) is not None
    )
    assert (
        await writer.run(lambda c: add_note(c, "a1", author="li", body="已致电客户", now=now))
        is None
    )
    await writer.run(lambda c: record_view(c, CONV, actor="wang", now=now, address="10.0.0.8"))
    (case,) = _read(engine, lambda c: load_cases(c, CONV))
    assert [(n.author, n.body) for n in case.notes] == [("li", "已致电客户")]
    audit = _read(
        engine,
        lambda c: [
            (a.actor, a.action, a.target) for a in c.execute(select(AUDIT).order_by(AUDIT.c.id))
        ],
    )
    assert audit == [("li", "note", "a1"), ("wang", "view", CONV)]
