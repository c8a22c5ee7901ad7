"""Alerts benchmark: hit messages through the alert policy, the outbox and a fake WeCom over HTTP.

The scenario (:mod:`bench.alerts_workload`), by default: 500 customer chats receiving 20 hit
messages each, 10,000 hits over 2 simulated hours, in bursts that join an open alert and gaps
that open new ones, some rising from medium to high; five managers, a compliance pair for the
staff-misconduct group, one ``escalate_to``; nobody claims, so every alert escalates.

The path is the production one: each message is an ``InboundRecord`` with an ``AlertIntake``
effect stored by ``Archive.store_inbound`` (the alert and its outbox rows commit with the
message), and an ``OutboxWorker`` delivers through a ``WeComClient`` to
``wecom_sdk.testing.fake_api.FakeWeCom`` served by aiohttp on 127.0.0.1 (:mod:`bench.alerts_env`).
It runs twice (:mod:`bench.alerts_sim`): a burst intake for throughput, then a replay in
simulated time for delivery; :mod:`bench.alerts_check` verifies the per-member limits and that
nothing was lost.

Storage: a SQLite file in a temp dir, or PostgreSQL when ``--database-url`` or ``DATABASE_URL``
names one (a fresh schema per phase, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.machine import cpu_model

if TYPE_CHECKING:
    from bench.alerts_sim import Report, Settings

__all__ = ["HELP", "NAME", "add_arguments", "print_report", "run", "settings_from"]

NAME = "alerts"
HELP = "hits through alert policy, outbox and a fake WeCom: cards, drain time, per-member limits"

#: (conversations, hit messages each, simulated seconds): the full run and ``--quick``.
FULL = (500, 20, 7200.0)
QUICK = (60, 5, 300.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench alerts``."""
    parser.add_argument(
        "--quick", action="store_true", help="60 chats x 5 hits over 5 min (smoke test)"
    )
    parser.add_argument("--conversations", type=int, default=None, help="chats (500)")
    parser.add_argument("--hits", type=int, default=None, help="hit messages per chat (20)")
    parser.add_argument(
        "--duration", type=float, default=None, help="simulated seconds the hits span (7200)"
    )
    parser.add_argument("--step", type=float, default=1.0, help="worker clock step, simulated s")
    parser.add_argument("--concurrency", type=int, default=128, help="stores in flight")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (default: $DATABASE_URL if it is one, else SQLite in a temp dir)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")


def settings_from(args: argparse.Namespace) -> Settings:
    """``--quick`` or the full size, then any explicit size option; PostgreSQL if one is named."""
    from bench.alerts_sim import Settings

    conversations, hits, duration = QUICK if args.quick else FULL
    url = args.database_url or os.environ.get("DATABASE_URL") or None
    if url is not None and not url.startswith(("postgresql:", "postgresql+", "postgres:")):
        if args.database_url:
            raise SystemExit("--database-url must name PostgreSQL (SQLite is the default)")
        url = None  # a SQLite DATABASE_URL: the bench keeps to its own temp file
    return Settings(
        conversations=args.conversations or conversations,
        hits=args.hits or hits,
        duration_s=args.duration or duration,
        step_s=args.step,
        concurrency=args.concurrency,
        seed=args.seed,
        database_url=url,
    )


def _since_start(at: datetime | None) -> float | None:
    from bench.alerts_sim import T0

    return (at - T0).total_seconds() if at is not None else None


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else 0.0


def print_report(report: Report, out: Callable[[str], None] = print) -> None:
    """The human-readable report."""
    # Imported here, like every heavy module of a benchmark: `python -m bench NAME` stays quick.
    from bench.alerts_check import WECOM_PER_HOUR, WECOM_PER_MINUTE
    from bench.alerts_workload import COMPLIANCE, ESCALATE_TO, MANAGERS

    s, c, n = report.settings, report.check, report.messages
    out("alerts benchmark: hits -> AlertIntake (in the store transaction) -> outbox -> fake WeCom")
    out(
        f"  scenario: {s.conversations} chats x {s.hits} = {n:,} hit messages over "
        f"{_hms(s.duration_s)} simulated (seed {s.seed}); {len(MANAGERS)} managers, "
        f"{len(COMPLIANCE)} compliance (staff group), {len(ESCALATE_TO)} escalate_to; nobody claims"
    )
    out(f"  storage: {report.backend}; machine: {os.cpu_count()} CPUs, {cpu_model()}")
    b = report.burst
    out(
        f"intake (burst, {s.concurrency} stores in flight): {n:,} messages in {b.wall_s:.2f} s"
        f" = {_rate(n, b.wall_s):,.0f} msg/s; {len(b.commits)} group commits,"
        f" mean {b.mean_batch:.1f} messages"
    )
    base = report.baseline
    extra_ms = (b.wall_s - base.wall_s) / n * 1000 if n else 0.0
    out(
        f"  without the AlertIntake effect: {_rate(n, base.wall_s):,.0f} msg/s"
        f" ({base.wall_s:.2f} s, {len(base.commits)} commits): the effect costs"
        f" {extra_ms:.2f} ms more per hit message"
    )
    d = report.decisions
    out(
        f"  alerts: {d['new']:,} opened, {d['join']:,} joined silently, {d['renotify']:,}"
        f" re-notified; the replay decided {'the same' if report.phases_agree else 'OTHERWISE'}"
    )
    r = report.replay
    since = _since_start(report.last_send)
    last = _hms(since) if since is not None else "-"
    out(
        f"replay ({s.step_s:g}-s worker steps): {report.replay_wall_s:.1f} s wall; stores"
        f" {r.wall_s:.2f} s ({len(r.commits):,} commits, mean {r.mean_batch:.1f});"
        f" worker {report.worker_wall_s:.1f} s in {report.worker_passes:,} passes"
    )
    out(
        f"  drain: {report.tail_wall_s:.1f} s wall from the last message to an empty outbox;"
        f" last send at +{last} simulated"
    )
    median, worst = c.digest_delay
    out(
        f"  sent: {c.sent['card']:,} cards ({c.deliveries['card']:,} member deliveries),"
        f" {c.sent['escalation']:,} escalations, {c.sent['digest']:,} digests"
        f" ({c.duplicates_dropped} dropped by WeCom's duplicate check) listing {c.held:,} held"
        f" alerts; held -> digest median {median:.0f} s, max {worst:.0f} s simulated"
    )
    out(f"  alerts escalated: {c.escalated:,} of {c.alerts:,}")
    rows = ", ".join(f"{k} {dict(v)}" for k, v in sorted(c.outbox.items()))
    out(f"  outbox rows: {rows}")
    out("per recipient (simulated time):")
    out(
        f"  {'recipient':<16}{'cards':>7}{'escal.':>8}{'digests':>9}{'held':>7}"
        f"{'max/60s':>9}{'max/3600s':>11}"
    )
    for p in c.recipients:
        out(
            f"  {p.recipient:<16}{p.cards:>7,}{p.escalations:>8,}{p.digests:>9,}{p.held:>7,}"
            f"{p.max_per_minute:>9}{p.max_per_hour:>11}"
        )
    top_min = max((p.max_per_minute for p in c.recipients), default=0)
    top_hour = max((p.max_per_hour for p in c.recipients), default=0)
    within = top_min <= WECOM_PER_MINUTE and top_hour <= WECOM_PER_HOUR
    out(
        f"limits: busiest member {top_min}/min, {top_hour}/h; WeCom drops above"
        f" {WECOM_PER_MINUTE}/min, {WECOM_PER_HOUR}/h: {'OK' if within else 'EXCEEDED'}"
    )
    out(
        f"nothing lost: {c.covered:,}/{c.pairs:,} (alert, recipient) pairs reached by a card or a"
        f" digest: {'OK' if report.ok else 'FAILED'}"
    )
    for failure in c.failures:
        out(f"  FAILED: {failure}")


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON-friendly data (``--json``)."""
    c = report.check
    return {
        "settings": asdict(report.settings) | {"database_url": bool(report.settings.database_url)},
        "backend": report.backend,
        "messages": report.messages,
        "burst": {"wall_s": report.burst.wall_s, "commits": len(report.burst.commits)},
        "baseline": {"wall_s": report.baseline.wall_s, "commits": len(report.baseline.commits)},
        "decisions": dict(report.decisions),
        "replay_wall_s": report.replay_wall_s,
        "replay_store_wall_s": report.replay.wall_s,
        "worker_wall_s": report.worker_wall_s,
        "worker_passes": report.worker_passes,
        "tail_wall_s": report.tail_wall_s,
        "last_send_s": _since_start(report.last_send),
        "sent": dict(c.sent),
        "deliveries": dict(c.deliveries),
        "duplicates_dropped": c.duplicates_dropped,
        "held": c.held,
        "digest_delay_s": list(c.digest_delay),
        "outbox": {k: dict(v) for k, v in c.outbox.items()},
        "recipients": [asdict(p) for p in c.recipients],
        "archived": c.messages,
        "linked": c.linked,
        "alerts": c.alerts,
        "escalated": c.escalated,
        "covered": c.covered,
        "pairs": c.pairs,
        "failures": c.failures,
        "ok": report.ok,
    }


def run(args: argparse.Namespace) -> int:
    """Run the scenario on uvloop (as ``serve`` does) and print the report; 1 if a check failed."""
    settings = settings_from(args)  # first: it imports monitor in the order that works
    import uvloop

    from bench.alerts_sim import simulate

    started = time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(simulate(settings))
    print_report(report)
    print(f"(whole run {time.perf_counter() - started:.1f} s wall)")
    if args.json is not None:
        args.json.write_text(json.dumps(report_json(report), indent=2, ensure_ascii=False))
    return 0 if report.ok else 1
