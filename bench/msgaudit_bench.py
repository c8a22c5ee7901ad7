"""会话内容存档 benchmark: archived staff chats pulled, decrypted, inspected, archived, on one core.

The scenario: ``--records`` (20,000) chatdata entries in the fake source (design.md §3) under a
2048-bit RSA key, as WeCom encrypts them: 1:1 chats of 200 staff members with ``records / 5``
customers plus a few group chats; 5% of the texts carry a risk word (a staff member asking for a
红包, a customer writing 投诉), so alerts are raised as in production. Generating them is not
measured.

Measured: ONE ``msgaudit pull --once`` as the CLI runs it (the bot's stack from
``bot.web.app.create_app`` without serving, on uvloop), the whole process pinned to one CPU:
GetChatData pages of 1,000 -> RSA PKCS#1 v1.5 of each record's key -> DecryptData -> parse ->
the pipeline (dedupe, rules, split window, alerts, group-commit archive) -> the fenced cursor.
Storage: a SQLite file (FULL), or PostgreSQL (``--database-url``) with Redis (``--redis-url``).
Then each step alone on 1,000 entries, for the profile. The lag recovery time after a one-day
outage is ``--outage-records`` (500,000) over the measured rate, unless ``--records`` is that many
(then it is the measurement itself). Exit status 1 when a record was not archived exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import cpu_model

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "msgaudit"
HELP = "会话内容存档: records pulled, RSA + decrypt + intake + archive, on one core"

FULL, QUICK, OUTAGE = 20_000, 500, 500_000
TARGET = 600.0
_STAFF = 200


@dataclass(slots=True)
class Report:
    """What one run measured."""

    records: int
    backend: str
    cpu: int | None
    generate_s: float = 0.0
    pull_s: float = 0.0
    cpu_s: float = 0.0
    rate: float = 0.0
    archived: int = 0
    distinct: int = 0
    quarantined: int = 0
    alerts: int = 0
    steps_us: dict[str, float] = field(default_factory=dict)
    outage_records: int = OUTAGE
    outage_recovery_s: float = 0.0
    outage_measured: bool = False
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench msgaudit``."""
    parser.add_argument("--records", type=int, default=None, help=f"records ({FULL:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} records (smoke test)")
    parser.add_argument("--outage-records", type=int, default=OUTAGE, help="one day of records")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--redis-url", default=None, help="Redis URL (default: in-process)")
    parser.add_argument("--key-bits", type=int, default=2048, help="RSA key size (WeCom: 2048)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")


def _messages(feed: Any, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    customers = max(n // 5, 1)
    now_ms = int(time.time() * 1000) - n * 10
    out = []
    for i in range(n):
        staff = f"staff{rng.randrange(_STAFF):03d}"
        customer = f"wmBench{rng.randrange(customers):06d}"
        roll = rng.random()
        when = now_ms + i * 10
        if roll < 0.025:
            out.append(feed.text(staff, [customer], "这个价格可以，你先发个红包给我", msgtime=when))
        elif roll < 0.05:
            out.append(feed.text(customer, [staff], "再不处理我就去投诉你们", msgtime=when))
        elif roll < 0.07:
            room = f"wrBenchRoom{rng.randrange(20):02d}"
            out.append(
                feed.text(staff, [customer], "群里通知：明天发货", roomid=room, msgtime=when)
            )
        elif roll < 0.5:
            out.append(feed.text(customer, [staff], f"请问订单{i}什么时候发货？", msgtime=when))
        else:
            out.append(feed.text(staff, [customer], f"您好，订单{i}今天下午发出", msgtime=when))
    return out


def _steps(feed: Any, keys: Any, n: int = 1000) -> dict[str, float]:
    """Microseconds per record of each step alone (the profile of the pull)."""
    from bot.msgaudit.convert import to_chat_message
    from wecom_sdk.messages.msgaudit import parse_archive_record
    from wecom_sdk.msgaudit.fake import FakeArchiveSource

    source = FakeArchiveSource(feed.path)
    entries = source.get_chat_data(0, n, 5)
    started = time.perf_counter()
    random_keys = [keys.random_key(e.publickey_ver, e.encrypt_random_key) for e in entries]
    rsa_s = time.perf_counter() - started
    started = time.perf_counter()
    texts = [
        source.decrypt_data(k, e.encrypt_chat_msg)
        for k, e in zip(random_keys, entries, strict=True)
    ]
    aes_s = time.perf_counter() - started
    started = time.perf_counter()
    records = [parse_archive_record(t) for t in texts]
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    for record in records:
        to_chat_message(record)
    convert_s = time.perf_counter() - started
    started = time.perf_counter()
    source.get_chat_data(0, n, 5)
    page_s = time.perf_counter() - started
    per = 1e6 / max(len(entries), 1)
    return {
        "GetChatData (fake: read + parse the page)": page_s * per,
        "RSA PKCS#1 v1.5 (random key)": rsa_s * per,
        "DecryptData (fake: AES-256-CBC)": aes_s * per,
        "parse the record JSON": parse_s * per,
        "record -> ChatMessage": convert_s * per,
    }


async def _pull(config_path: Path) -> Any:
    """``msgaudit pull --once`` as the CLI runs it, timed (the outbox drain is not)."""
    from aiohttp import web

    from bot.config import load_config
    from bot.msgaudit.cli import with_stack
    from bot.web.keys import MSGAUDIT_PULLER, OUTBOX

    async def work(app: web.Application) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        report = await app[MSGAUDIT_PULLER].pull_once()
        took, used = time.perf_counter() - started, time.process_time() - cpu
        await app[OUTBOX].drain(timeout_s=300)
        return report, took, used

    return await with_stack(load_config(config_path), work)


def _count(url: str) -> tuple[int, int, int, int]:
    from sqlalchemy import func, select

    from monitor.alerts.models import AlertRecord
    from monitor.archive import make_engine
    from monitor.archive.models import MessageRecord
    from monitor.archive.msgaudit_models import MsgauditQuarantineRecord

    engine = make_engine(url)
    m = MessageRecord.__table__.c
    try:
        with engine.connect() as conn:
            archived = conn.execute(
                select(func.count()).where(m.channel == "msgaudit")
            ).scalar_one()
            distinct = conn.execute(
                select(func.count(func.distinct(m.dedupe_key))).where(m.channel == "msgaudit")
            ).scalar_one()
            quarantined = conn.execute(
                select(func.count()).select_from(MsgauditQuarantineRecord.__table__)
            ).scalar_one()
            alerts = conn.execute(
                select(func.count()).select_from(AlertRecord.__table__)
            ).scalar_one()
    finally:
        engine.dispose()
    return int(archived), int(distinct), int(quarantined), int(alerts)


def measure(args: argparse.Namespace) -> Report:
    """Generate, pin, pull, check."""
    import uvloop

    from bench.kf_env import database, fake_server, redis_prefix, temp_dir, write_config
    from bench.machine import pick_cpus, pinned
    from wecom_sdk.msgaudit.keyring import KeyRing
    from wecom_sdk.testing.archive_feed import ArchiveFeed

    n = args.records or (QUICK if args.quick else FULL)
    cpu, _client_cpu = pick_cpus()
    report = Report(
        records=n,
        backend="postgresql+redis" if args.database_url else "sqlite (FULL)",
        cpu=cpu,
        outage_records=args.outage_records,
    )
    with temp_dir() as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        feed = ArchiveFeed(tmp / "chatdata.jsonl", key_bits=args.key_bits)
        key_path = feed.add_key(1)
        messages = _messages(feed, n, args.seed)
        for at in range(0, n, 5000):
            feed.append(messages[at : at + 5000])
        report.generate_s = time.perf_counter() - started
        report.steps_us = _steps(feed, KeyRing.from_files({1: key_path}), min(n, 1000))
        with database(args.database_url, tmp) as url:

            async def main() -> tuple[Any, float, float]:
                async with (
                    fake_server() as (_fake, api_base),
                    redis_prefix(args.redis_url) as prefix,
                ):
                    extra = (
                        "[msgaudit]\nenabled = true\n"
                        f"fake_source = {json.dumps(str(feed.path))}\n"
                        f'private_keys = {{ "1" = {json.dumps(str(key_path))} }}\n'
                        "poll_interval_s = 3600\n"
                    )
                    config_path = write_config(
                        tmp,
                        database_url=url,
                        redis_url=args.redis_url or "",
                        prefix=prefix,
                        api_base=api_base,
                        extra=extra,
                    )
                    with pinned(cpu):
                        return await _pull(config_path)

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                pulled, report.pull_s, report.cpu_s = runner.run(main())
            report.rate = n / report.pull_s if report.pull_s else 0.0
            counts = _count(url)
        report.archived, report.distinct, report.quarantined, report.alerts = counts
    if report.archived != n or report.distinct != n:
        report.failures.append(f"{report.archived} archived ({report.distinct} distinct) of {n}")
    if report.quarantined:
        report.failures.append(f"{report.quarantined} quarantined")
    if pulled.entries != n:
        report.failures.append(f"pulled {pulled.entries} of {n}")
    report.outage_measured = n >= args.outage_records
    report.outage_recovery_s = (
        report.pull_s if report.outage_measured else args.outage_records / max(report.rate, 1e-9)
    )
    return report


def print_report(report: Report) -> None:
    """The human-readable report."""
    print("msgaudit benchmark: chatdata -> RSA + DecryptData + parse -> pipeline -> archive")
    print(
        f"  {report.records:,} records (2.5% staff 红包, 2.5% customer 投诉, 2% group chats); "
        f"storage: {report.backend}; machine: {os.cpu_count()} CPUs, {cpu_model()}"
    )
    where = f"pinned to CPU {report.cpu}" if report.cpu is not None else "not pinned (1 CPU)"
    print(f"  generated in {report.generate_s:.1f} s (not measured); the pull {where}")
    verdict = "met" if report.rate >= TARGET else "MISSED"
    print(
        f"pull --once: {report.records:,} records in {report.pull_s:.2f} s = {report.rate:,.0f} "
        f"records/s (target >= {TARGET:.0f}: {verdict}); process CPU {report.cpu_s:.1f} s"
    )
    print(f"archived {report.archived:,} ({report.distinct:,} distinct), {report.alerts:,} alerts")
    print("steps alone (µs per record):")
    for step, us in report.steps_us.items():
        print(f"  {us:8.1f}  {step}")
    how = "measured" if report.outage_measured else "estimated: records / measured rate"
    print(
        f"lag recovery after a 1-day outage of {report.outage_records:,} records: "
        f"{report.outage_recovery_s / 60:.1f} min ({how})"
    )
    print(f"checks (every record archived exactly once): {'OK' if report.ok else 'FAILED'}")
    for failure in report.failures:
        print(f"  FAILED: {failure}")


def run(args: argparse.Namespace) -> int:
    """Measure once and print the report; 1 if a check failed."""
    report = measure(args)
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False))
    return 0 if report.ok else 1
