"""The outbox worker: delivers queued alerts to WeCom, with retries, rate limits and escalation.

One worker per process. Rows are claimed under a lease (``monitor.alerts.outbox_txn.claim_due``), sent
concurrently, and their outcomes written back in one transaction. A recipient over the
per-recipient rate limit is left out of the card and gets a digest when there is room again.
Cards go out with ``enable_duplicate_check``: a retry after a lost answer is not shown twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from monitor.alerts.intake import CardStyle
from monitor.alerts.models import OutboxKind, OutboxStatus
from monitor.alerts.outbox_txn import (
    ROBOT_RECIPIENT,
    Claimed,
    Outcome,
    claim_due,
    count_pending,
    escalate_due,
    finish,
)
from monitor.alerts.policy import AlertPolicy, RateLimit
from monitor.archive.writer import GroupCommitWriter
from wecom_sdk.client import WeComClient
from wecom_sdk.errors import (
    ApiError,
    CredentialError,
    PermissionDenied,
    RateLimited,
    TokenInvalid,
    TransportError,
)

__all__ = ["OutboxMetrics", "OutboxSettings", "OutboxWorker"]

log = logging.getLogger("sentinel.alerts")

_RETRY_ERRCODES = frozenset({-1, 45009, 45033})


class OutboxMetrics(Protocol):
    """Where the worker reports (``bot.web.metrics.BotMetrics`` fits)."""

    def outbox_sent(self, kind: str, latency_s: float) -> None: ...
    def outbox_failed(self, kind: str) -> None: ...
    def outbox_pending(self, count: int) -> None: ...


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """Tuning of the worker; the defaults suit production."""

    robot_webhook: str = ""
    lease_s: float = 30.0
    poll_s: float = 1.0
    batch: int = 50
    concurrency: int = 8
    max_attempts: int = 30
    retry_base_s: float = 2.0
    retry_cap_s: float = 300.0
    #: A bad secret, a missing permission or an untrusted IP: wait for the operator to fix it.
    config_retry_s: float = 300.0
    escalation_every_s: float = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxWorker:
    """Claims due outbox rows, sends them through ``client`` and records what happened."""

    def __init__(
        self,
        writer: GroupCommitWriter,
        client: WeComClient,
        policy: Callable[[], AlertPolicy],
        style: CardStyle,
        *,
        settings: OutboxSettings | None = None,
        rate: RateLimit | None = None,
        metrics: OutboxMetrics | None = None,
        clock: Callable[[], datetime] = _utcnow,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.writer = writer
        self.client = client
        self.policy = policy
        self.style = style
        self.settings = settings or OutboxSettings()
        self.rate = rate or RateLimit()
        self.metrics = metrics
        self.clock = clock
        self.rand = rand
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._last_escalation = datetime.min.replace(tzinfo=UTC)

    def wake(self) -> None:
        """Look at the outbox now (a message just queued something), not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; a failing pass is logged and retried at the next poll."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox pass failed; retrying in %.1fs", self.settings.poll_s)
            try:
                async with asyncio.timeout(self.settings.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def step(self) -> int:
        """One pass: escalations when due, then claimed batches until nothing is due; rows handled."""
        now = self.clock()
        if now - self._last_escalation >= timedelta(seconds=self.settings.escalation_every_s):
            self._last_escalation = now
            escalated = await self.writer.run(
                partial(escalate_due, now=now, policy=self.policy(), style=self.style)
            )
            if escalated:
                log.info("escalated %d unclaimed alert(s)", escalated)
        handled = 0
        while True:
            batch = await self._one_batch()
            handled += batch
            if batch < self.settings.batch:
                break
        if self.metrics is not None:
            self.metrics.outbox_pending(await self.writer.run(count_pending))
        return handled

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Run passes until no row is pending and due (tests, benchmarks, shutdown)."""
        async with asyncio.timeout(timeout_s):
            while await self.step():
                pass

    async def _one_batch(self) -> int:
        now = self.clock()
        s = self.settings
        rows, recent = await self.writer.run(
            partial(
                claim_due,
                now=now,
                owner=self.owner,
                limit=s.batch,
                lease_s=s.lease_s,
                wording=self.style.wording,
            )
        )
        if not rows:
            return 0
        plans = self._plan(rows, recent, now)
        gate = asyncio.Semaphore(s.concurrency)

        async def bounded(plan: _Plan) -> Outcome:
            async with gate:
                return await self._deliver(plan, now)

        outcomes = await asyncio.gather(*(bounded(p) for p in plans))
        done = self.clock()
        await self.writer.run(
            partial(finish, outcomes=outcomes, now=done, review_url=self.style.review_base)
        )
        self._report(outcomes, done)
        return len(rows)

    def _plan(
        self, rows: Sequence[Claimed], recent: dict[str, list[datetime]], now: datetime
    ) -> list[_Plan]:
        # Sequential on purpose: two cards to one manager in one batch must both count.
        plans = []
        for row in rows:
            if row.kind == OutboxKind.CARD_UPDATE:
                plans.append(_Plan(row, row.recipients, ()))
                continue
            keys = (ROBOT_RECIPIENT,) if row.kind == OutboxKind.ROBOT else row.recipients
            allowed: list[str] = []
            held: list[tuple[str, datetime]] = []
            for key in keys:
                history = recent.setdefault(key, [])
                slot = self.rate.next_slot(history, now)
                if slot <= now:
                    allowed.append(key)
                    history.append(now)
                else:
                    held.append((key, slot))
            plans.append(_Plan(row, tuple(allowed), tuple(held)))
        return plans

    async def _deliver(self, plan: _Plan, now: datetime) -> Outcome:
        row = plan.row
        if row.kind != OutboxKind.CARD_UPDATE and not plan.allowed:
            if row.kind in (OutboxKind.CARD, OutboxKind.ESCALATION):
                # Everyone is over the limit: the alert goes into their digests.
                return Outcome(row, OutboxStatus.SKIPPED, held=plan.held, error="rate limited")
            # A digest or robot post waits for its slot; that is not a failed attempt.
            slot = min(s for _r, s in plan.held)
            return Outcome(row, OutboxStatus.PENDING, next_at=slot, count_attempt=False)
        try:
            return await self._send(plan)
        except (ApiError, TransportError, ValueError) as exc:
            return self._failed(row, now, exc)

    def _failed(self, row: Claimed, now: datetime, exc: Exception) -> Outcome:
        """Retry what may succeed later; give up on what never will (logged either way)."""
        if isinstance(exc, CredentialError | PermissionDenied):
            log.error(
                "outbox row %d (%s): %s; fix the [wecom] settings; retrying in %.0fs",
                row.id,
                row.kind,
                exc,
                self.settings.config_retry_s,
            )
            return self._retry(row, now, exc, self.settings.config_retry_s)
        transient = isinstance(exc, RateLimited | TokenInvalid | TransportError) or (
            isinstance(exc, ApiError) and exc.errcode in _RETRY_ERRCODES
        )
        if transient:
            return self._retry(row, now, exc, self._backoff(row.attempts))
        log.error("outbox row %d (%s) cannot be sent: %s", row.id, row.kind, exc)
        return Outcome(row, OutboxStatus.FAILED, error=str(exc))

    async def _send(self, plan: _Plan) -> Outcome:
        row, payload = plan.row, plan.row.payload
        if row.kind in (OutboxKind.CARD, OutboxKind.ESCALATION):
            result = await self.client.message.send_template_card(plan.allowed, payload)
            invalid = {u.lower() for u in result.invaliduser}
            delivered = tuple(u for u in plan.allowed if u.lower() not in invalid)
            if invalid:
                log.warning(
                    "outbox row %d: WeCom did not deliver to %d recipient(s) (invalid userid)",
                    row.id,
                    len(invalid),
                )
            return Outcome(
                row,
                OutboxStatus.SENT,
                delivered_to=delivered,
                held=plan.held,
                response_code=result.response_code,
            )
        if row.kind == OutboxKind.DIGEST:
            content = str(payload.get("content", ""))
            if not content:
                return Outcome(row, OutboxStatus.SKIPPED, error="nothing held")
            await self.client.message.send_text(plan.allowed, content, enable_duplicate_check=True)
            return Outcome(row, OutboxStatus.SENT, delivered_to=plan.allowed)
        if row.kind == OutboxKind.ROBOT:
            if not self.settings.robot_webhook:
                return Outcome(row, OutboxStatus.SKIPPED, error="no robot_webhook configured")
            await self.client.robot.send_markdown(
                self.settings.robot_webhook, str(payload["markdown"])
            )
            return Outcome(row, OutboxStatus.SENT)
        if row.kind == OutboxKind.CARD_UPDATE:
            await self.client.message.update_template_card(
                payload["userids"],
                str(payload["response_code"]),
                replace_name=str(payload["replace_name"]),
            )
            return Outcome(row, OutboxStatus.SENT, delivered_to=tuple(payload["userids"]))
        raise ValueError(f"unknown outbox kind {row.kind!r}")

    def _backoff(self, attempts: int) -> float:
        s = self.settings
        ceiling = min(s.retry_cap_s, s.retry_base_s * 2.0**attempts)
        return ceiling * (0.5 + self.rand() / 2)  # jitter, never less than half

    def _retry(self, row: Claimed, now: datetime, exc: Exception, delay_s: float) -> Outcome:
        if row.attempts + 1 >= self.settings.max_attempts:
            log.error(
                "outbox row %d (%s) failed %d times; giving up: %s",
                row.id,
                row.kind,
                row.attempts + 1,
                exc,
            )
            return Outcome(row, OutboxStatus.FAILED, error=str(exc))
        log.warning("outbox row %d (%s): %s; retry in %.1fs", row.id, row.kind, exc, delay_s)
        return Outcome(
            row, OutboxStatus.PENDING, error=str(exc), next_at=now + timedelta(seconds=delay_s)
        )

    def _report(self, outcomes: Sequence[Outcome], done: datetime) -> None:
        if self.metrics is None:
            return
        for out in outcomes:
            if out.status == OutboxStatus.SENT:
                latency = (done - out.row.created_at).total_seconds()
                self.metrics.outbox_sent(out.row.kind, max(latency, 0.0))
            elif out.status == OutboxStatus.FAILED:
                self.metrics.outbox_failed(out.row.kind)


@dataclass(frozen=True, slots=True)
class _Plan:
    row: Claimed
    allowed: tuple[str, ...]
    held: tuple[tuple[str, datetime], ...]
