"""Sampling (抽检): the pure draw, and one seeded week on both backends, run twice."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from monitor.alerts import store
from monitor.alerts.intake import CardStyle
from monitor.alerts.outbox_txn import escalate_due
from monitor.alerts.policy import AlertKind, AlertPolicy, AlertStatus, OpenAlert
from monitor.archive import Archive, ArchivedHit, GroupCommitWriter, InboundRecord, make_engine
from monitor.archive.audit import AUDIT
from monitor.archive.schema import create_schema
from monitor.review.queue import QueueFilter, load_queue
from monitor.review.review_secrets import SECRETS
from monitor.review.sampling import (
    Candidate,
    IsoWeek,
    Sampler,
    pick,
    run_sampling,
    sample_id,
    sample_size,
)
from rules.models import Severity

WEEK = IsoWeek(2026, 48)  # Monday 2026-11-23 .. Sunday 2026-11-29 (UTC)
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RATE = 0.1


# ---- the pure draw -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "rate", "size"),
    [
        (0, 0.5, 0),
        (10, 0.0, 0),
        (1, 0.02, 1),  # at least one
        (49, 0.02, 1),
        (100, 0.02, 2),
        (100, 0.07, 7),
        (18, 0.1, 2),
        (5, 0.1, 1),
        (15, 0.1, 2),  # 1.5 rounds half up
        (3, 1.0, 3),
    ],
)
def test_sample_size(n: int, rate: float, size: int) -> None:
    assert sample_size(n, rate) == size


def test_iso_week_parse_and_bounds() -> None:
    week = IsoWeek.parse("2026-W48")
    assert week == WEEK and str(week) == "2026-W48"
    assert week.start == datetime(2026, 11, 23, tzinfo=UTC)
    assert week.end == datetime(2026, 11, 30, tzinfo=UTC)
    assert IsoWeek.of(datetime(2026, 11, 29, 23, 59, tzinfo=UTC)) == week
    assert IsoWeek.of(datetime(2026, 11, 30, 0, 0, tzinfo=UTC)).previous() == week
    assert IsoWeek.parse("2027-W01").previous() == IsoWeek(2026, 53)
    for bad in ("2026-48", "2026-W5", "2025-W53", "2026-W00", "week"):
        with pytest.raises(ValueError):
            IsoWeek.parse(bad)


def _candidates(staff: str, n: int) -> list[Candidate]:
    return [Candidate(f"kf:wk:{staff}{i:04d}", staff, "", MONDAY, MONDAY) for i in range(n)]


def test_pick_is_deterministic_and_takes_the_share() -> None:
    by_staff = {"a": _candidates("a", 1000), "b": _candidates("b", 37), "c": _candidates("c", 1)}
    first = pick(by_staff, 0.05, b"k" * 32, WEEK)
    # A fresh, reordered input (another worker's read) draws the very same conversations.
    again = pick(
        {s: list(reversed(c)) for s, c in reversed(by_staff.items())}, 0.05, b"k" * 32, WEEK
    )
    assert sorted(c.conversation_id for c in first) == sorted(c.conversation_id for c in again)
    per_staff = {s: sum(1 for c in first if c.staff_userid == s) for s in by_staff}
    assert per_staff == {"a": 50, "b": 2, "c": 1}
    # Another key or another week draws others.
    other_key = pick(by_staff, 0.05, b"x" * 32, WEEK)
    other_week = pick(by_staff, 0.05, b"k" * 32, WEEK.previous())
    chosen = {c.conversation_id for c in first if c.staff_userid == "a"}
    assert chosen != {c.conversation_id for c in other_key if c.staff_userid == "a"}
    assert chosen != {c.conversation_id for c in other_week if c.staff_userid == "a"}


def test_a_conversation_drawn_for_two_staff_members_is_one_case() -> None:
    shared = Candidate("kf:wk:shared", "a", "wmX", MONDAY, MONDAY)
    by_staff = {"a": [shared], "b": [Candidate("kf:wk:shared", "b", "wmX", MONDAY, MONDAY)]}
    drawn = pick(by_staff, 1.0, b"k" * 32, WEEK)
    assert [(c.conversation_id, c.staff_userid) for c in drawn] == [("kf:wk:shared", "a")]


def test_sample_ids_are_short_url_safe_and_hide_the_customer() -> None:
    case_id = sample_id(WEEK, "kf:wk1:wmSecretCustomer")
    assert case_id.startswith("sample:2026-W48:") and len(case_id) == len("sample:2026-W48:") + 16
    assert "wmSecret" not in case_id and "/" not in case_id
    assert case_id == sample_id(WEEK, "kf:wk1:wmSecretCustomer")


@dataclass(frozen=True)
class _Escalating:
    managers: tuple[str, ...] = ("mgr",)
    aggregate_window_s: int = 600
    escalate_after_s: int = 60
    escalate_to: tuple[str, ...] = ("boss",)


def test_policy_never_escalates_a_sampled_case() -> None:
    policy = AlertPolicy(_Escalating(), {})
    base = OpenAlert("x", "kf:wk:c", AlertKind.SAMPLE, Severity.LOW, (), 0, MONDAY, MONDAY, "", ())
    later = MONDAY + timedelta(hours=5)
    assert policy.due_escalations([base], later) == []
    risk = OpenAlert(
        "y", "kf:wk:c", AlertKind.CUSTOMER_RISK, Severity.HIGH, ("维权",), 1, MONDAY, MONDAY, "", ()
    )
    assert [e.alert.alert_id for e in policy.due_escalations([base, risk], later)] == ["y"]


# ---- one week on both backends ---------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


class _Clock:
    def __init__(self) -> None:
        self.now = MONDAY

    def __call__(self) -> datetime:
        return self.now


def _record(n: int, conversation: str, direction: str, author: str, **kw: Any) -> InboundRecord:
    return InboundRecord(
        dedupe_key=f"m{n}",
        channel=conversation.split(":", maxsplit=1)[0]
        if conversation.startswith(("kf", "ma"))
        else "app",
        msg_type="text",
        from_user=author,
        to_user="x",
        create_time=int(MONDAY.timestamp()) + n,
        raw="{}",
        content=f"消息{n}",
        conversation_id=conversation,
        direction=direction,
        rules_version="r1",
        **kw,
    )


# Staff zhangsan (kf): 20 conversations this week, 3 of them with a hit; lisi (会话内容存档): 5,
# one with a hit; both wrote in kf:wk1:wmShared. Not candidates: a conversation of last week, the
# app channel (no staff side). A conversation with a hit only last week is one this week.
ZHANG = [f"kf:wk1:wmZ{i:02d}" for i in range(20)]
ZHANG_HITS = {ZHANG[2], ZHANG[7], ZHANG[11]}
LI = [f"ma:lisi:wmL{i}" for i in range(5)]
LI_HITS = {LI[3]}
SHARED = "kf:wk1:wmShared"
OLD_HIT = "kf:wk1:wmOldHit"


async def _seed(writer: GroupCommitWriter) -> None:
    clock = _Clock()
    archive = Archive(writer, clock=clock)
    hit = ArchivedHit(word="维权", group="customer_risk", severity=3, start=0, end=2)
    n = 0

    async def put(at: datetime, conversation: str, direction: str, author: str, **kw: Any) -> None:
        nonlocal n
        n += 1
        clock.now = at
        await archive.store_inbound(_record(n, conversation, direction, author, **kw))

    last_week = MONDAY - timedelta(days=3)
    await put(last_week, "kf:wk1:wmLastWeek", "staff", "zhangsan")
    await put(last_week, OLD_HIT, "customer", "wmOldHit", hits=(hit,))
    for i, conversation in enumerate(ZHANG):
        at = MONDAY + timedelta(hours=i)
        await put(at, conversation, "customer", conversation.rsplit(":", 1)[1])
        hits = (hit,) if conversation in ZHANG_HITS else ()
        await put(at + timedelta(minutes=5), conversation, "staff", "zhangsan", hits=hits)
    for i, conversation in enumerate(LI):
        at = MONDAY + timedelta(days=2, hours=i)
        await put(at, conversation, "staff", "lisi")
        hits = (hit,) if conversation in LI_HITS else ()
        await put(at, conversation, "customer", conversation.rsplit(":", 1)[1], hits=hits)
    await put(MONDAY + timedelta(days=4), SHARED, "staff", "zhangsan")
    await put(MONDAY + timedelta(days=4, hours=1), SHARED, "staff", "lisi")
    await put(MONDAY + timedelta(days=5), OLD_HIT, "staff", "zhangsan")
    await put(MONDAY + timedelta(days=5), "app:member1", "member", "member1")
    await put(WEEK.end + timedelta(hours=1), "kf:wk1:wmNextWeek", "staff", "zhangsan")


def _expected(key: bytes) -> dict[str, str]:
    """The draw worked out here from the rule (HMAC of week and conversation, lowest first)."""

    def order(conversation: str) -> bytes:
        return hmac.new(key, f"2026-W48\x00{conversation}".encode(), hashlib.sha256).digest()

    zhang = sorted([c for c in ZHANG if c not in ZHANG_HITS] + [SHARED, OLD_HIT], key=order)
    li = sorted([c for c in LI if c not in LI_HITS] + [SHARED], key=order)
    assert (len(zhang), len(li)) == (19, 5)
    chosen: dict[str, str] = {}
    for staff, ranked, k in (("lisi", li, 1), ("zhangsan", zhang, 2)):
        for conversation in ranked[:k]:
            chosen.setdefault(conversation, staff)
    return chosen


async def test_a_week_sampled_twice_makes_the_exact_cases_once(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    await _seed(writer)
    now = WEEK.end + timedelta(hours=2)
    first = await run_sampling(writer, WEEK, RATE, now)
    second = await run_sampling(writer, WEEK, RATE, now + timedelta(hours=1))

    with engine.connect() as conn:
        stored = conn.execute(select(SECRETS.c.value).where(SECRETS.c.name == "sample_key"))
        key = base64.urlsafe_b64decode(stored.scalar_one())
        rows = conn.execute(
            select(store.ALERTS).where(store.ALERTS.c.kind == AlertKind.SAMPLE.value)
        ).all()
        outbox = conn.execute(select(func.count()).select_from(store.OUTBOX)).scalar_one()
        audits = conn.execute(
            select(AUDIT.c.target, AUDIT.c.actor).where(AUDIT.c.action == "sample")
        ).all()
        page = load_queue(conn, QueueFilter(audience="sample"), page_size=50)
        everything = load_queue(conn, QueueFilter(), page_size=50)

    expected = _expected(key)
    assert {r.conversation_id: r.staff_userid for r in rows} == expected
    assert sorted(first.created) == sorted(sample_id(WEEK, c) for c in expected)
    assert (first.staff, first.candidates, first.picked) == (2, 24, len(expected))
    assert second.created == () and second.picked == first.picked
    for row in rows:
        assert row.alert_id == sample_id(WEEK, row.conversation_id)
        assert row.status == AlertStatus.OPEN.value and row.severity == int(Severity.LOW)
        assert json.loads(row.recipients) == [] and json.loads(row.words) == []
        assert row.customer_id == row.conversation_id.rsplit(":", 1)[1]
        assert WEEK.start <= row.first_at <= row.last_at < WEEK.end
    assert outbox == 0, "a sampled case sends nothing to anyone"
    assert sorted(a.target for a in audits) == sorted(r.alert_id for r in rows)
    assert {a.actor for a in audits} == {"system"}
    assert {r.alert_id for r in page.rows} == {r.alert_id for r in rows}
    assert all(r.sampled and r.audience_label == "抽检" for r in page.rows)
    assert page.total == len(expected) == everything.total


async def test_sampled_cases_are_never_escalated_by_time(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    await _seed(writer)
    now = WEEK.end + timedelta(days=3)
    report = await run_sampling(writer, WEEK, 1.0, now)
    assert len(report.created) == 24 - 1  # the shared conversation is one case
    policy = AlertPolicy(_Escalating(), {})
    style = CardStyle(review_base="https://sentinel.example.com/review")
    done = await writer.run(lambda conn: escalate_due(conn, now, policy, style))
    assert done == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.OUTBOX)).scalar_one() == 0


async def test_the_periodic_job_samples_the_last_complete_week(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    await _seed(writer)
    sampler = Sampler(writer, RATE, clock=lambda: WEEK.end + timedelta(days=2))
    report = await sampler.run_once()
    assert report is not None and report.week == WEEK
    assert report.picked == len(report.created) >= 2
    again = await sampler.run_once()
    assert again is not None and again.created == ()
    # A week later the job moves on to the next week, where only one conversation was.
    later = await Sampler(writer, RATE, clock=lambda: WEEK.end + timedelta(days=8)).run_once()
    assert later is not None and later.week == IsoWeek(2026, 49) and len(later.created) == 1


async def test_rate_zero_makes_nothing(engine: Engine, writer: GroupCommitWriter) -> None:
    await _seed(writer)
    report = await run_sampling(writer, WEEK, 0.0, WEEK.end)
    assert report.created == () and report.picked == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.ALERTS)).scalar_one() == 0


async def test_workers_sampling_at_once_make_each_case_once(
    engine: Engine, writer: GroupCommitWriter, database_url: str
) -> None:
    await _seed(writer)
    now = WEEK.end + timedelta(hours=2)
    others = [make_engine(database_url) for _ in range(2)]
    try:
        async with GroupCommitWriter(others[0]) as one, GroupCommitWriter(others[1]) as two:
            reports = await asyncio.gather(
                run_sampling(one, WEEK, 0.5, now),
                run_sampling(two, WEEK, 0.5, now),
                run_sampling(writer, WEEK, 0.5, now),
            )
    finally:
        for other in others:
            other.dispose()
    made = [case for report in reports for case in report.created]
    assert len(made) == len(set(made)) == reports[0].picked > 0
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(store.ALERTS)).scalar_one()
        audits = conn.execute(
            select(func.count()).select_from(AUDIT).where(AUDIT.c.action == "sample")
        ).scalar_one()
    assert stored == audits == len(made)
