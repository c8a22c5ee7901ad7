"""Archive search benchmark: latency of the review search over ``--messages`` (1,000,000) messages.

The corpus: Chinese chat lines of varied length (one to eight phrases of everyday customer-service
talk, order numbers, phone-like digits, a few Latin words), 20,000 conversations between 500 staff
members and their customers, ~2 % of lines carrying a risk word with its ``hit`` row, and an alert
(in one of the five states) linking the hit messages of each conversation that has some. It is
bulk-loaded once (SQLite: multi-row INSERTs into a file, renamed into place when complete;
PostgreSQL: COPY into a database of its own, the GIN index built after the load) and cached:
a rerun with the same ``--messages`` and ``--seed`` reuses it (``--cache-dir``, and the database
``bench_search_<messages>_<seed>`` on the server of ``--database-url``).

Measured: :func:`monitor.archive.search.search_messages` as the search page calls it (the capped
count plus the first page of 50, newest first) for a mix of queries: 1, 2, 3 and 4+ characters,
common and rare, Latin and digits, one that finds nothing, the same with each filter (staff,
conversation, date range, hit word, severity, case state), and filters alone. Each query runs
``--repeat`` times; p50/p95/p99 per class and over all. Target: p95 < 100 ms on both databases.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.machine import cpu_model

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "search"
HELP = "archive search: p50/p95/p99 of count + first page over 1,000,000 messages, both databases"

FULL, QUICK = 1_000_000, 3_000
TARGET_P95_MS = 100.0
_STAFF = 500
_CONVERSATIONS = 20_000
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_STEP_S = 2  # one message every 2 s: 1,000,000 span ~23 days
_DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_PHRASES = (
    "你好",
    "在吗",
    "请问这个产品还有货吗",
    "我想咨询一下价格",
    "好的谢谢",
    "麻烦帮我查一下订单",
    "已经发货了吗",
    "什么时候能到",
    "这个颜色有现货",
    "可以便宜一点吗",
    "亲，已经给您备注了",
    "我们的客服工作时间是早九点到晚六点",
    "收到",
    "明白了",
    "稍等一下我帮您看看",
    "快递单号发您了",
    "质量怎么样",
    "有没有优惠券",
    "我们这边是正品保证",
    "下单后四十八小时内发货",
    "不好意思让您久等了",
    "这个型号和那个有什么区别",
    "尺码偏大还是偏小",
    "退换货需要保持吊牌完整",
    "请提供一下收货地址",
    "您的问题我已经反馈给主管",
    "会员可以享受九五折",
    "活动截止到本周日",
    "今天天气不错",
    "哈哈",
    "嗯嗯",
    "好的呢",
    "我再考虑考虑",
    "帮我改一下地址",
    "电话打不通",
    "物流一直没更新",
    "发票怎么开",
    "可以开专票吗",
    "我们公司要采购一批",
    "报价单发我邮箱",
    "合同什么时候签",
    "周一给您回复",
    "老板不在",
    "这个方案我觉得可以",
    "再沟通一下细节",
    "辛苦了",
    "售后电话是多少",
    "安装师傅明天上门",
    "预约的时间改到下午",
    "保修期是一年",
    "说明书在包装里",
)
_RISK = (("维权", 3), ("投诉", 2), ("举报", 3), ("退款", 1), ("私下转账", 4), ("保证收益", 4))
_LATIN = ("OK", "vip", "VIP会员", "iPhone", "WiFi", "app", "PDF")
_STATES = ("open", "claimed", "escalated", "resolved", "false_positive")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The search benchmark's options."""
    parser.add_argument("--messages", type=int, default=None, help=f"messages ({FULL:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} messages (smoke test)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query (5)")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="sqlite, postgresql or both (the default)"
    )
    parser.add_argument("--database-url", default=None, help=f"PostgreSQL server ({_DEFAULT_PG})")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "wecom-sentinel-bench",
        help="where the SQLite corpus is kept between runs",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")


# -- the corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    """What the generator made (and what the queries pick from)."""

    messages: int
    hits: int
    alerts: int
    first_day: date
    last_day: date


def _line(rnd: random.Random) -> tuple[str | None, tuple[str, int] | None]:
    """A chat line (None for a picture) and the risk word it carries, if any."""
    roll = rnd.random()
    if roll < 0.04:
        return None, None
    parts = [rnd.choice(_PHRASES) for _ in range(rnd.choice((1, 1, 1, 2, 2, 3, 4, 8)))]
    if rnd.random() < 0.08:
        parts.append(f"订单号{rnd.randrange(10**9, 10**10)}")
    if rnd.random() < 0.05:
        parts.append(f"电话1{rnd.randrange(3, 9)}{rnd.randrange(10**8, 10**9)}")
    if rnd.random() < 0.06:
        parts.insert(rnd.randrange(len(parts) + 1), rnd.choice(_LATIN))
    risk = None
    if rnd.random() < 0.02:
        risk = rnd.choice(_RISK)
        parts.insert(rnd.randrange(len(parts) + 1), f"我要{risk[0]}")
    return "，".join(parts), risk


@dataclass(slots=True)
class _Rows:
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    index: list[tuple[int, str]] = field(default_factory=list)
    hits: list[tuple[Any, ...]] = field(default_factory=list)


def _generate(n: int, seed: int, chunk: int) -> Iterator[_Rows]:
    """Rows in chunks of ``chunk`` messages: (id, dedupe_key, channel, msg_type, from_user,
    to_user, create_time, content, raw, received_at, rules_version, conversation_id, direction)."""
    from monitor.archive.search_index import gram_tokens

    rnd = random.Random(seed)
    rows = _Rows()
    for msg_id in range(1, n + 1):
        conv = rnd.randrange(_CONVERSATIONS)
        staff, customer = f"staff{conv % _STAFF:03d}", f"wmcust{conv:05d}"
        from_staff = rnd.random() < 0.5
        content, risk = _line(rnd)
        at = _T0 + timedelta(seconds=msg_id * _STEP_S)
        rows.messages.append(
            (
                msg_id,
                f"bench:{msg_id}",
                "msgaudit",
                "text" if content is not None else "image",
                staff if from_staff else customer,
                customer if from_staff else staff,
                int(at.timestamp()),
                content,
                "{}",
                at,
                "bench-v1",
                f"ma:{staff}:{customer}",
                "staff" if from_staff else "customer",
            )
        )
        if content:
            rows.index.append((msg_id, " ".join(gram_tokens(content))))
        if risk is not None and content is not None:
            start = content.index(risk[0])
            rows.hits.append(
                (msg_id, risk[0], "bench", risk[1], start, start + len(risk[0]), "bench-v1")
            )
        if msg_id % chunk == 0 or msg_id == n:
            yield rows
            rows = _Rows()


def _alerts(hits: list[tuple[int, int]], seed: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """One alert per conversation with hits: ``hits`` is (message id, conversation number)."""
    rnd = random.Random(seed + 1)
    by_conv: dict[int, list[int]] = {}
    for message_id, conv in hits:
        by_conv.setdefault(conv, []).append(message_id)
    alerts: list[dict[str, Any]] = []
    links: list[tuple[str, int]] = []
    for conv, ids in by_conv.items():
        alert_id = f"bench-{conv}"
        at = _T0 + timedelta(seconds=ids[0] * _STEP_S)
        alerts.append(
            {
                "alert_id": alert_id,
                "conversation_id": f"ma:staff{conv % _STAFF:03d}:wmcust{conv:05d}",
                "kind": "customer_risk",
                "severity": 3,
                "words": "[]",
                "count": len(ids),
                "first_at": at,
                "last_at": at,
                "latest_text": "",
                "recipients": "[]",
                "status": rnd.choice(_STATES),
                "notified_severity": 3,
            }
        )
        links.extend((alert_id, message_id) for message_id in ids)
    return alerts, links


def _conv_of(message: tuple[Any, ...]) -> int:
    return int(message[11].rsplit("wmcust", 1)[1])


def _load_sqlite(path: Path, n: int, seed: int) -> Corpus:
    from sqlalchemy import insert

    from monitor.alerts.models import AlertMessageLink, AlertRecord
    from monitor.archive import create_schema, make_engine

    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{partial}", sqlite_synchronous="NORMAL")
    hits: list[tuple[int, int]] = []
    hit_count = 0
    try:
        create_schema(engine)
        with engine.begin() as conn:
            marks = ", ".join("?" * 13)
            for rows in _generate(n, seed, 20_000):
                conn.exec_driver_sql(
                    "INSERT INTO message (id, dedupe_key, channel, msg_type, from_user, to_user, "
                    "create_time, content, raw, received_at, rules_version, conversation_id, "
                    f"direction) VALUES ({marks})",
                    [
                        (*m[:9], m[9].replace(tzinfo=None).isoformat(" "), *m[10:])
                        for m in rows.messages
                    ],
                )
                conn.exec_driver_sql(
                    "INSERT INTO message_search (rowid, grams) VALUES (?, ?)", rows.index
                )
                if rows.hits:
                    conn.exec_driver_sql(
                        "INSERT INTO hit (message_id, word, rule_group, severity, span_start, "
                        "span_end, rules_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows.hits,
                    )
                    convs = {m[0]: _conv_of(m) for m in rows.messages}
                    hits.extend((h[0], convs[h[0]]) for h in rows.hits)
                    hit_count += len(rows.hits)
            alerts, links = _alerts(hits, seed)
            if alerts:
                conn.execute(insert(AlertRecord.__table__), alerts)
                conn.execute(
                    insert(AlertMessageLink.__table__),
                    [{"alert_id": a, "message_id": m} for a, m in links],
                )
            conn.exec_driver_sql("INSERT INTO message_search(message_search) VALUES ('optimize')")
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    partial.rename(path)
    return _corpus(n, hit_count, len(alerts))


def _corpus(n: int, hits: int, alerts: int) -> Corpus:
    last = _T0 + timedelta(seconds=n * _STEP_S)
    return Corpus(n, hits, alerts, _T0.date(), last.date())


def _libpq(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _load_postgres(server: str, name: str, n: int, seed: int) -> Corpus:
    import psycopg

    from monitor.archive import create_schema, make_engine

    with psycopg.connect(_libpq(server), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server, name)
    engine = make_engine(url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()
    hits: list[tuple[int, int]] = []
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("DROP INDEX ix_message_search_grams")
        for rows in _generate(n, seed, 50_000):
            with conn.cursor().copy(
                "COPY message (id, dedupe_key, channel, msg_type, from_user, to_user, create_time, "
                "content, raw, received_at, rules_version, conversation_id, direction) FROM STDIN"
            ) as copy:
                for message in rows.messages:
                    copy.write_row(message)
            with conn.cursor().copy("COPY message_search (message_id, grams) FROM STDIN") as copy:
                for entry in rows.index:
                    copy.write_row(entry)
            with conn.cursor().copy(
                "COPY hit (message_id, word, rule_group, severity, span_start, span_end, "
                "rules_version) FROM STDIN"
            ) as copy:
                for hit in rows.hits:
                    copy.write_row(hit)
            convs = {m[0]: _conv_of(m) for m in rows.messages}
            hits.extend((h[0], convs[h[0]]) for h in rows.hits)
        alerts, links = _alerts(hits, seed)
        with conn.cursor().copy(
            "COPY alert (alert_id, conversation_id, kind, severity, words, count, first_at, "
            "last_at, latest_text, recipients, status, notified_severity, customer_id, "
            "customer_name, staff_userid, claimed_by, closed_by, escalated, cards_sent, "
            "rules_version, staff_name) FROM STDIN"
        ) as copy:
            for a in alerts:
                copy.write_row(
                    (*a.values(), "", "", "", "", "", False, 0, "", "")  # the defaults
                )
        with conn.cursor().copy("COPY alert_message (alert_id, message_id) FROM STDIN") as copy:
            for link in links:
                copy.write_row(link)
        conn.execute("SELECT setval(pg_get_serial_sequence('message', 'id'), %s)", (n,))
        conn.execute("CREATE INDEX ix_message_search_grams ON message_search USING gin (grams)")
        conn.execute("CREATE TABLE bench_corpus (hits integer, alerts integer)")
        conn.execute("INSERT INTO bench_corpus VALUES (%s, %s)", (len(hits), len(alerts)))
        conn.commit()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return _corpus(n, len(hits), len(alerts))


def _cached_postgres(server: str, name: str, n: int) -> Corpus | None:
    import psycopg

    try:
        with psycopg.connect(_libpq(_with_database(server, name))) as conn:
            found = conn.execute("SELECT hits, alerts FROM bench_corpus").fetchone()
    except psycopg.Error:
        return None
    return None if found is None else _corpus(n, int(found[0]), int(found[1]))


def _cached_sqlite(path: Path, n: int) -> Corpus | None:
    if not path.exists():
        return None
    import sqlite3

    with sqlite3.connect(path) as conn:
        hits = conn.execute("SELECT count(*) FROM hit").fetchone()[0]
        alerts = conn.execute("SELECT count(*) FROM alert").fetchone()[0]
    return _corpus(n, int(hits), int(alerts))


# -- the queries ------------------------------------------------------------------------------------


def _queries(corpus: Corpus) -> list[tuple[str, dict[str, Any]]]:
    """(class, SearchFilter fields) of the mix."""
    mid = corpus.first_day + (corpus.last_day - corpus.first_day) / 2
    week = {"since": mid, "until": mid + timedelta(days=6)}
    return [
        ("1 char, common", {"text": "的"}),
        ("1 char, common", {"text": "好"}),
        ("1 char, rare", {"text": "鑫"}),
        ("1 char, rare", {"text": "专"}),
        ("2 chars, common", {"text": "一下"}),
        ("2 chars, rare", {"text": "维权"}),
        ("2 chars, rare", {"text": "举报"}),
        ("3 chars", {"text": "快递单"}),
        ("3 chars", {"text": "要投诉"}),
        ("4+ chars", {"text": "私下转账"}),
        ("4+ chars", {"text": "保修期是一年"}),
        ("4+ chars", {"text": "下午好啊朋友"}),
        ("Latin/digits", {"text": "vip"}),
        ("Latin/digits", {"text": "1385"}),
        ("Latin/digits", {"text": "wifi"}),
        ("no match", {"text": "火星文"}),
        ("+ staff", {"text": "的", "staff": "staff042"}),
        ("+ staff", {"text": "维权", "staff": "staff007"}),
        ("+ conversation", {"text": "的", "conversation": "ma:staff123:wmcust04123"}),
        ("+ date range", {"text": "维权", **week}),
        ("+ date range", {"text": "的", **week}),
        ("+ word", {"text": "我要", "word": "举报"}),
        ("+ severity", {"text": "的", "severity": 4}),
        ("+ case state", {"text": "我要", "state": "escalated"}),
        ("+ case state", {"text": "的", "state": "active"}),
        ("filters only", {"staff": "staff250"}),
        ("filters only", {"conversation": "ma:staff001:wmcust00501"}),
        ("filters only", {"word": "维权"}),
        ("filters only", {"state": "resolved", **week}),
    ]


@dataclass(slots=True)
class BackendReport:
    backend: str
    load_s: float
    cached: bool
    corpus: dict[str, Any]
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_p50_ms: float = 0.0
    """CPU time of this process's thread per search (on SQLite the whole query, on PostgreSQL
    the client side only): what the search costs whatever else the machine runs."""
    cpu_p95_ms: float = 0.0
    load_average: float = 0.0
    """The 1-minute load average when the measurement ended (other work skews wall times)."""
    classes: dict[str, dict[str, float]] = field(default_factory=dict)
    slowest: list[tuple[str, float, str]] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _measure(
    url: str, corpus: Corpus, repeat: int
) -> tuple[dict[str, list[float]], list[Any], list[float]]:
    from monitor.archive import make_engine
    from monitor.archive.search import SearchFilter, search_messages

    engine = make_engine(url)
    timings: dict[str, list[float]] = {}
    cpu: list[float] = []
    slowest: list[tuple[str, float, str]] = []
    try:
        with engine.connect() as conn:
            for _ in range(repeat):
                for cls, fields in _queries(corpus):
                    wanted = SearchFilter(**fields)
                    started, cpu_started = time.perf_counter(), time.thread_time()
                    page = search_messages(conn, wanted, page_size=50)
                    ms = (time.perf_counter() - started) * 1000
                    cpu.append((time.thread_time() - cpu_started) * 1000)
                    timings.setdefault(cls, []).append(ms)
                    slowest.append((cls, ms, f"{fields} -> {page.total_label}"))
                conn.rollback()
    finally:
        engine.dispose()
    slowest.sort(key=lambda entry: -entry[1])
    return timings, slowest[:5], cpu


def _report(backend: str, timings: dict[str, list[float]], slowest: list[Any]) -> BackendReport:
    everything = [ms for values in timings.values() for ms in values]
    report = BackendReport(backend, 0.0, False, {})
    report.p50_ms, report.p95_ms, report.p99_ms = (_pct(everything, q) for q in (50, 95, 99))
    report.classes = {
        cls: {"p50": _pct(v, 50), "p95": _pct(v, 95), "max": max(v)} for cls, v in timings.items()
    }
    report.slowest = slowest
    return report


def measure_backend(backend: str, args: argparse.Namespace, n: int) -> BackendReport:
    """Load (or reuse) the corpus on one backend and time the query mix on it."""
    started = time.perf_counter()
    if backend == "sqlite":
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        path = args.cache_dir / f"search-{n}-{args.seed}.db"
        corpus = _cached_sqlite(path, n)
        cached = corpus is not None
        if corpus is None:
            corpus = _load_sqlite(path, n, args.seed)
        url = f"sqlite:///{path}"
    else:
        server = args.database_url or os.environ.get("DATABASE_URL") or _DEFAULT_PG
        name = f"bench_search_{n}_{args.seed}"
        corpus = _cached_postgres(server, name, n)
        cached = corpus is not None
        if corpus is None:
            corpus = _load_postgres(server, name, n, args.seed)
        url = _with_database(server, name)
    load_s = time.perf_counter() - started
    timings, slowest, cpu = _measure(url, corpus, args.repeat)
    report = _report(backend, timings, slowest)
    report.cpu_p50_ms, report.cpu_p95_ms = _pct(cpu, 50), _pct(cpu, 95)
    report.load_average = os.getloadavg()[0]
    report.load_s, report.cached = load_s, cached
    report.corpus = {k: str(v) if isinstance(v, date) else v for k, v in asdict(corpus).items()}
    return report


def print_report(reports: list[BackendReport]) -> None:
    print(f"archive search on {cpu_model()} (nproc {os.cpu_count()})")
    for r in reports:
        how = "cached corpus" if r.cached else "generated and loaded"
        print(
            f"\n{r.backend}: {r.corpus['messages']:,} messages, {r.corpus['hits']:,} hits, "
            f"{r.corpus['alerts']:,} alerts ({how} in {r.load_s:.1f} s)"
        )
        print(f"  all queries: p50 {r.p50_ms:.1f} ms  p95 {r.p95_ms:.1f} ms  p99 {r.p99_ms:.1f} ms")
        side = "query" if r.backend == "sqlite" else "client"
        print(
            f"  {side} CPU per search: p50 {r.cpu_p50_ms:.1f} ms  p95 {r.cpu_p95_ms:.1f} ms "
            f"(load average {r.load_average:.1f} on {os.cpu_count()} CPUs)"
        )
        for cls, figures in r.classes.items():
            print(
                f"  {cls:<16} p50 {figures['p50']:7.1f}  p95 {figures['p95']:7.1f}  "
                f"max {figures['max']:7.1f} ms"
            )
        verdict = "OK" if r.p95_ms < TARGET_P95_MS else "MISSED"
        print(f"  target p95 < {TARGET_P95_MS:.0f} ms: {verdict}")


def run(args: argparse.Namespace) -> int:
    """Measure on each chosen backend and print the report; 1 if a target was missed."""
    n = QUICK if args.quick else (args.messages or FULL)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    reports = [measure_backend(backend, args, n) for backend in backends]
    print_report(reports)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=2, ensure_ascii=False))
    return 0 if all(r.p95_ms < TARGET_P95_MS for r in reports) else 1
