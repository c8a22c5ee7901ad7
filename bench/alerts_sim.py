"""The alerts benchmark's two timed phases (plumbing in :mod:`bench.alerts_env`).

1. **Burst intake.** Every scenario message goes through ``Archive.store_inbound`` with its
   ``AlertIntake`` effect, in scenario order, ``concurrency`` stores in flight, into an empty
   database with no outbox worker: the group-commit writer batches them, so this is the store
   path's throughput with alerts (each message stamped with its scenario time). The same burst
   without the effect (message and hits only), into another empty database, is the baseline.
2. **Replay in simulated time**, into a second empty database: one clock drives the outbox
   worker, the client's token cache and the fake. At each step the messages whose time has come
   are stored (concurrently when several share the step), then the worker drains everything due;
   the clock then moves ``step_s`` on, or jumps to the next message, due outbox row or escalation.
   The worker never sees a message from its future, so rate limits, digests and escalations play
   out as in production with a worker polling every ``step_s``. It ends when nothing is pending
   and every alert has escalated (nobody claims).

Both phases must reach the same alerts (same ids, counts, severities, recipients): batching and
concurrency must not change a decision.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench.alerts_check import Check, Sent, alert_snapshot, check, parse_sent
from bench.alerts_env import (
    IntakeStats,
    SimClock,
    database,
    fake_wecom,
    next_due,
    record,
    storage,
    store_all,
)
from bench.alerts_workload import ESCALATE_TO, GROUPS, MANAGERS, ScenarioMessage, generate

if TYPE_CHECKING:
    from bot.config import AlertsConfig
    from monitor.alerts.intake import AlertIntake, CardStyle
    from monitor.alerts.policy import AlertPolicy
    from monitor.archive.models import InboundRecord

__all__ = ["T0", "IntakeStats", "Report", "Settings", "simulate"]

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
#: Give up (and fail) when the outbox is still busy this long after the last message.
TAIL_LIMIT = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class Settings:
    """One run's scenario and harness options (the defaults are the full run)."""

    conversations: int = 500
    hits: int = 20
    duration_s: float = 7200.0
    step_s: float = 1.0
    concurrency: int = 128
    seed: int = 1
    database_url: str | None = None


@dataclass(slots=True)
class Report:
    """Everything one run measured and verified; ``ok`` when no invariant broke."""

    settings: Settings
    backend: str
    messages: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    burst: IntakeStats = field(default_factory=IntakeStats)
    #: The same burst without the ``AlertIntake`` effect (message and hits only).
    baseline: IntakeStats = field(default_factory=IntakeStats)
    replay: IntakeStats = field(default_factory=IntakeStats)
    replay_wall_s: float = 0.0
    worker_wall_s: float = 0.0
    worker_passes: int = 0
    #: Wall time from the last message's store until the outbox was empty.
    tail_wall_s: float = 0.0
    last_send: datetime | None = None
    #: Both phases reached the same decisions and alerts.
    phases_agree: bool = False
    sent: list[Sent] = field(default_factory=list)
    check: Check = field(default_factory=Check)

    @property
    def ok(self) -> bool:
        return not self.check.failures


@dataclass(frozen=True, slots=True)
class _Scenario:
    """The generated messages and the configuration both phases share."""

    settings: Settings
    config: AlertsConfig
    policy: AlertPolicy
    style: CardStyle
    messages: list[ScenarioMessage]

    @property
    def times(self) -> list[datetime]:
        return [m.at for m in self.messages]

    def records(self) -> list[tuple[InboundRecord, AlertIntake]]:
        """Fresh records (an ``AlertIntake`` collects the decisions of the store that ran it)."""
        return [record(m, self.policy, self.style) for m in self.messages]


async def simulate(settings: Settings) -> Report:
    """Generate the scenario, run both phases, verify; the report says what broke, if anything."""
    from bot.config import AlertsConfig
    from monitor.alerts.intake import CardStyle
    from monitor.alerts.policy import AlertPolicy

    config = AlertsConfig(managers=MANAGERS, escalate_to=ESCALATE_TO)
    messages = generate(
        conversations=settings.conversations,
        hits_per_conversation=settings.hits,
        start=T0,
        duration_s=settings.duration_s,
        window_s=config.aggregate_window_s,
        seed=settings.seed,
    )
    scenario = _Scenario(
        settings,
        config,
        AlertPolicy(config, {g.name: g for g in GROUPS}),
        CardStyle(review_base="https://sentinel.example.com/review"),
        messages,
    )
    backend = "SQLite (WAL, synchronous=FULL) in a temp dir"
    if settings.database_url:
        backend = "PostgreSQL (a fresh schema per phase)"
    report = Report(settings, backend, messages=len(messages))
    burst_alerts = await _burst_phase(scenario, report)
    await _baseline_phase(scenario, report)
    replay_alerts, replay_decisions = await _replay_phase(scenario, report)
    _compare_phases(report, burst_alerts, replay_alerts, replay_decisions)
    return report


async def _burst_phase(scenario: _Scenario, report: Report) -> dict[str, tuple[Any, ...]]:
    """Phase 1: every message stored with many in flight, no worker; the alerts it made."""
    records = scenario.records()
    items = [(at, r) for at, (r, _i) in zip(scenario.times, records, strict=True)]
    with database(scenario.settings.database_url) as url:
        async with storage(url, report.burst) as db:
            await store_all(db, items, scenario.settings.concurrency)
            alerts = alert_snapshot(db.engine)
    report.decisions = Counter(d.action.value for _r, i in records for d in i.decisions)
    return alerts


async def _baseline_phase(scenario: _Scenario, report: Report) -> None:
    """Phase 1 again without the alert effect: what ``AlertIntake`` adds to each store."""
    items = [
        (at, dataclasses.replace(r, effects=()))
        for at, (r, _i) in zip(scenario.times, scenario.records(), strict=True)
    ]
    with database(scenario.settings.database_url) as url:
        async with storage(url, report.baseline) as db:
            await store_all(db, items, scenario.settings.concurrency)


async def _replay_phase(
    scenario: _Scenario, report: Report
) -> tuple[dict[str, tuple[Any, ...]], Counter[str]]:
    """Phase 2: messages stored as simulated time reaches them, the worker draining each step."""
    from monitor.alerts.outbox import OutboxWorker
    from monitor.alerts.policy import RateLimit

    settings, config = scenario.settings, scenario.config
    records, times = scenario.records(), scenario.times
    last_message = times[-1] if times else T0
    clock = SimClock(T0)
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        url = stack.enter_context(database(settings.database_url))
        db = await stack.enter_async_context(storage(url, report.replay))
        fake, attempts, client = await stack.enter_async_context(fake_wecom(clock))
        policy = scenario.policy
        worker = OutboxWorker(
            db.writer,
            client,
            lambda: policy,
            scenario.style,
            rate=RateLimit(per_minute=config.max_per_minute, per_hour=config.max_per_hour),
            clock=clock,
        )
        done, tail_started = 0, 0.0
        while True:
            upto = bisect.bisect_right(times, clock.now)
            if upto > done:
                items = [(times[k], records[k][0]) for k in range(done, upto)]
                await store_all(db, items, settings.concurrency)
                done = upto
                tail_started = time.perf_counter()
            pass_started = time.perf_counter()
            await worker.drain()
            report.worker_wall_s += time.perf_counter() - pass_started
            report.worker_passes += 1
            due = next_due(db.engine, config.escalate_after_s)
            if done < len(times):
                due = times[done] if due is None else min(due, times[done])
            if due is None:
                break
            clock.now = max(clock.now + timedelta(seconds=settings.step_s), due)
            if clock.now > last_message + TAIL_LIMIT:
                report.check.fail(f"outbox not drained {TAIL_LIMIT} after the last message")
                break
        report.tail_wall_s = time.perf_counter() - tail_started if tail_started else 0.0
        report.replay_wall_s = time.perf_counter() - started
        report.sent = parse_sent(attempts, [c.body for c in fake.calls_to("message/send")])
        report.last_send = max((s.at for s in report.sent), default=None)
        early = report.check.failures
        report.check = check(
            db.engine,
            report.sent,
            escalate_to=config.escalate_to,
            budget=(config.max_per_minute, config.max_per_hour),
        )
        report.check.failures[:0] = early
        alerts = alert_snapshot(db.engine)
    return alerts, Counter(d.action.value for _r, i in records for d in i.decisions)


def _compare_phases(
    report: Report,
    burst: dict[str, tuple[Any, ...]],
    replay: dict[str, tuple[Any, ...]],
    replay_decisions: Counter[str],
) -> None:
    c = report.check
    if c.messages != report.messages or c.linked != report.messages:
        c.fail(f"{report.messages} messages in, {c.messages} archived, {c.linked} linked to alerts")
    if report.decisions != replay_decisions:
        c.fail(f"decisions differ: burst {dict(report.decisions)}, replay {dict(replay_decisions)}")
    differ = sorted(k for k in burst.keys() | replay.keys() if burst.get(k) != replay.get(k))
    if differ:
        c.fail(f"{len(differ)} alerts differ between the burst and the replay", differ)
    report.phases_agree = report.decisions == replay_decisions and not differ
