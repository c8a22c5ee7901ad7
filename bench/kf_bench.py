"""微信客服 (kf) benchmark: a queue of customer messages pulled, inspected, archived and answered.

The scenario (:mod:`bench.kf_workload`), by default: 10,000 text messages on one kf account from
2,000 customers (5 each, written over the last 20 minutes, interleaved), a mix of questions the
sample rules answer, chit-chat, risk words and requests for a human, plus a few sessions a
servicer already holds (staff messages, origin 5). They wait in the fake WeCom's ``sync_msg``
queue; then ONE sealed ``kf_msg_or_event`` callback is posted to the bot, which pulls the queue
in 1,000-item pages, archives and inspects every item, decides, and answers through
``kf/send_msg`` within WeCom's 5-message budget, handing customers over where it must.

Everything is the production path over real HTTP on loopback (:mod:`bench.kf_env`): the bot
from ``bot.web.app.create_app`` and ``wecom_sdk.testing.fake_api.FakeWeCom(kf_strict=True)``, in this
process, on uvloop as ``run_bot.py serve`` runs. Storage: a SQLite file in a temp dir, or a
fresh schema on PostgreSQL (``--database-url``), with Redis for the pull lock and dedupe
(``--redis-url``). Measured and checked in :mod:`bench.kf_measure`; the exit status is 1 when
an invariant failed (a message not archived exactly once, a customer sent more than 5 bot
messages, a msgid delivered twice, a refusal by the fake, a pending action left).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.machine import cpu_model

if TYPE_CHECKING:
    from bench.kf_measure import KfReport, Settings

__all__ = ["HELP", "NAME", "add_arguments", "print_report", "run", "settings_from"]

NAME = "kf"
HELP = "kf path: 10,000 queued messages pulled, archived, answered through the fake WeCom"

FULL, QUICK = 10_000, 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench kf``."""
    parser.add_argument("--messages", type=int, default=None, help=f"queued messages ({FULL:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} messages (smoke test)")
    parser.add_argument(
        "--chatty-share",
        type=float,
        default=0.01,
        help="share of customers writing 10 messages, not 5 (0.01; 0 = all write 5)",
    )
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL (default: SQLite in a temp dir)"
    )
    parser.add_argument("--redis-url", default=None, help="Redis URL (default: in-process)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after, s")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")


def settings_from(args: argparse.Namespace) -> Settings:
    """``--quick`` or the full size, unless ``--messages`` says; PostgreSQL if one is named."""
    from bench.kf_measure import Settings

    url = args.database_url or None
    if url is not None and not url.startswith(("postgresql:", "postgresql+", "postgres:")):
        raise SystemExit("--database-url must name PostgreSQL (SQLite is the default)")
    return Settings(
        messages=args.messages or (QUICK if args.quick else FULL),
        seed=args.seed,
        chatty_share=args.chatty_share,
        database_url=url,
        redis_url=args.redis_url or None,
        timeout_s=args.timeout,
    )


def _s(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def print_report(report: KfReport, out: Callable[[str], None] = print) -> None:
    """The human-readable report."""
    s = report.settings
    kinds = ", ".join(f"{k} {n:,}" for k, n in report.kinds.most_common())
    out("kf benchmark: queued kf messages -> one callback -> pull, archive, decide, send")
    out(
        f"  {s.messages:,} text messages from {report.customers:,} customers ({kinds}); seed {s.seed}"
    )
    out(f"  storage: {s.backend}; machine: {os.cpu_count()} CPUs, {cpu_model()}")
    out(f"callback answered in {report.callback_s * 1000:.1f} ms")
    out(
        f"archived: all {s.messages:,} at +{_s(report.archived_s)} = {report.rate:,.0f} msg/s;"
        f" puller idle at +{_s(report.idle_s)}; process CPU {report.cpu_s:.1f} s"
    )
    out(
        f"replies: first at +{_s(report.first_reply_s)}, last at +{_s(report.last_reply_s)}"
        f" (event to last reply)"
    )
    pages = ", ".join(f"{at:.1f}" for at, _n in report.pages)
    out(f"sync_msg pages: {len(report.pages)}, answered at + [{pages}] s")
    sent = report.sent
    out(
        f"sent: {sum(sent.values()):,} kf messages ({sent['reply']:,} replies,"
        f" {sent['handoff']:,} hand-off messages); {report.calls['kf/service_state/trans']:,}"
        f" hand-offs (transfers); {report.calls['kf/service_state/get']:,} state look-ups;"
        f" at most {report.most_to_one} attempted to one customer"
    )
    out(f"decisions: {', '.join(f'{k} {n:,}' for k, n in report.decisions.most_common())}")
    out(
        f"alerts: {report.alerts:,} opened; {report.calls['message/send (alert cards)']:,}"
        f" cards sent by the outbox so far"
    )
    refused = ", ".join(f"errcode {code}: {n}" for code, n in report.refused.items())
    out(
        f"refused by the fake: {sum(report.refused.values())}{f' ({refused})' if refused else ''};"
        f" re-sent msgids: {report.duplicates}; kf_reply rows by status {dict(report.actions)}"
    )
    out(f"bot warnings logged: {sum(report.warnings.values()):,}")
    for (logger, message), n in report.warnings.most_common(5):
        out(f"  {n:>7,}  {logger}: {message}")
    verdict = "OK" if report.ok else "FAILED"
    out(f"checks (archived once, <= 5 per customer, no duplicate, no refusal): {verdict}")
    for failure in report.failures:
        out(f"  FAILED: {failure}")


def report_json(report: KfReport) -> dict[str, Any]:
    """The report as JSON-friendly data (``--json``)."""
    s = report.settings
    return {
        "settings": {
            "messages": s.messages,
            "seed": s.seed,
            "chatty_share": s.chatty_share,
            "database": "postgresql" if s.database_url else "sqlite",
            "redis": bool(s.redis_url),
        },
        "customers": report.customers,
        "kinds": dict(report.kinds),
        "callback_s": report.callback_s,
        "archived_s": report.archived_s,
        "msgs_per_s": report.rate,
        "first_reply_s": report.first_reply_s,
        "last_reply_s": report.last_reply_s,
        "idle_s": report.idle_s,
        "cpu_s": report.cpu_s,
        "pages": [{"at_s": at, "items": n} for at, n in report.pages],
        "calls": dict(report.calls),
        "sent": dict(report.sent),
        "decisions": dict(report.decisions),
        "actions": dict(report.actions),
        "alerts": report.alerts,
        "refused": {str(code): n for code, n in report.refused.items()},
        "resent_msgids": report.duplicates,
        "most_to_one_customer": report.most_to_one,
        "warnings": [
            {"logger": logger, "message": message, "count": n}
            for (logger, message), n in report.warnings.most_common()
        ],
        "failures": report.failures,
        "ok": report.ok,
    }


def run(args: argparse.Namespace) -> int:
    """Run once on uvloop (as ``serve`` does) and print the report; 1 if a check failed."""
    import uvloop

    from bench.kf_measure import measure

    settings = settings_from(args)
    started = time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(measure(settings))
    print_report(report)
    print(f"(whole run {time.perf_counter() - started:.1f} s wall, set-up included)")
    if args.json is not None:
        args.json.write_text(json.dumps(report_json(report), indent=2, ensure_ascii=False))
    return 0 if report.ok else 1


if __name__ == "__main__":
    import sys

    cli = argparse.ArgumentParser(prog="python -m bench.kf_bench", description=HELP)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
