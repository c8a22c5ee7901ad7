"""Engines and the group-commit writer, on the SQLite file and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import select as io_select
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from monitor.archive import (
    BulkOp,
    GroupCommitWriter,
    MessageRecord,
    MonitorError,
    StorageError,
    WriterClosed,
    create_schema,
    make_engine,
    normalize_url,
)
from tests.support.paths import REPO
from tests.support.storage import Gate, closing, queued

_META = MetaData()
ITEMS = Table(
    "writer_item",
    _META,
    Column("id", Integer, primary_key=True),
    Column("value", String(64), unique=True, nullable=False),
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    _META.create_all(eng)
    create_schema(eng)
    yield eng
    eng.dispose()


def insert_item(value: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(ITEMS.insert().values(value=value))
        return value

    return work


def stored_values(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(ITEMS.c.value)).scalars())


@dataclass  # eq=True without frozen makes it unhashable: the writer must group ops by identity
class InsertItems:
    """A bulk op inserting its items with ONE multi-row INSERT; records every execute call."""

    log: list[str] | None = None  # shared with plain units, to check execution order
    calls: list[list[str]] = field(default_factory=list)
    fail_on: str | None = None
    miscount: bool = False

    def execute(self, conn: Connection, items: Sequence[str]) -> list[str]:
        self.calls.append(list(items))
        if self.log is not None:
            self.log.append("+".join(items))
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError("bad item")
        conn.execute(ITEMS.insert().values([{"value": v} for v in items]))
        results = [v.upper() for v in items]
        return results[1:] if self.miscount else results


def logged_item(value: str, log: list[str]) -> Callable[[Connection], str]:
    insert = insert_item(value)

    def work(conn: Connection) -> str:
        log.append(value)
        return insert(conn)

    return work


def inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("INSERT")]


def test_normalize_url() -> None:
    assert normalize_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert normalize_url("postgres://u@h/db?x=1") == "postgresql+psycopg://u@h/db?x=1"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///data/a.db") == "sqlite:///data/a.db"
    assert normalize_url("sqlite:////abs/a.db") == "sqlite:////abs/a.db"


def test_make_engine_refuses_memory_sqlite_and_unknown_backends() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ValueError, match="in-memory"):
            make_engine(url)
    with pytest.raises(ValueError, match="unsupported"):
        make_engine("mysql://u@h/db")


@pytest.mark.parametrize(("level", "expected"), [("FULL", 2), ("NORMAL", 1)])
def test_sqlite_pragmas_on_every_connection(tmp_path: Path, level: str, expected: int) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}"
    eng = make_engine(url, sqlite_synchronous=level)  # type: ignore[arg-type]
    try:
        assert (tmp_path / "nested" / "dir").is_dir()  # parent created
        with eng.connect() as first, eng.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == expected
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        eng.dispose()


def test_create_schema_is_safe_to_race(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def create(eng: Engine) -> None:
        try:
            start.wait(5)
            create_schema(eng)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(eng,)) for eng in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for eng in engines:
        eng.dispose()
    assert errors == []


async def test_200_concurrent_runs_share_few_transactions(
    engine: Engine, writer: GroupCommitWriter, commits: list[int]
) -> None:
    values = [f"v{i}" for i in range(200)]
    results = await asyncio.gather(*(writer.run(insert_item(v)) for v in values))
    assert results == values
    assert stored_values(engine) == set(values)
    assert sum(commits) == 200
    assert len(commits) <= 20, commits  # "natural" batching: far fewer than 200 transactions
    print(f"\n{engine.dialect.name}: 200 concurrent runs -> {len(commits)} transactions {commits}")
    assert writer.pending == 0


async def test_batches_form_while_a_commit_is_in_flight(
    engine: Engine, writer: GroupCommitWriter, commits: list[int]
) -> None:
    # 20 callers each storing 10 messages one after another: every caller waits for its commit, so
    # whatever queues up meanwhile rides in the next transaction.
    async def caller(c: int) -> None:
        for i in range(10):
            assert await writer.run(insert_item(f"p{c}-{i}")) == f"p{c}-{i}"

    await asyncio.gather(*(caller(c) for c in range(20)))
    assert sum(commits) == 200
    assert len(commits) <= 100, commits
    print(f"\n{engine.dialect.name}: 20 callers x 10 sequential -> {len(commits)} transactions")


async def test_max_delay_gathers_staggered_arrivals(engine: Engine) -> None:
    sizes: list[int] = []
    w = GroupCommitWriter(engine, max_delay_s=0.2, on_commit=lambda n, _s: sizes.append(n))
    async with w:

        async def staggered(i: int) -> str:
            await asyncio.sleep(i * 0.01)
            return await w.run(insert_item(f"s{i}"))

        await asyncio.gather(*(staggered(i) for i in range(5)))
    assert sum(sizes) == 5
    assert len(sizes) < 5, sizes


async def test_max_batch_bounds_a_transaction(engine: Engine) -> None:
    sizes: list[int] = []
    w = GroupCommitWriter(engine, max_batch=7, on_commit=lambda n, _s: sizes.append(n))
    async with w:
        await asyncio.gather(*(w.run(insert_item(f"b{i}")) for i in range(50)))
    assert sum(sizes) == 50
    assert max(sizes) <= 7


async def test_failing_unit_does_not_lose_its_batch(
    engine: Engine, writer: GroupCommitWriter, commits: list[int]
) -> None:
    def boom(conn: Connection) -> str:
        conn.execute(ITEMS.insert().values(value="from-bad-unit"))
        raise ValueError("bad unit")

    gate = Gate()
    held = await gate.hold(writer)
    good = [asyncio.create_task(writer.run(insert_item(f"g{i}"))) for i in range(10)]
    bad = asyncio.create_task(writer.run(boom))
    duplicate = asyncio.create_task(writer.run(insert_item("g3")))  # violates the unique value
    more = [asyncio.create_task(writer.run(insert_item(f"h{i}"))) for i in range(10)]
    await queued(writer, 23)
    gate.release.set()
    assert await held == "gate"

    assert await asyncio.gather(*good, *more) == [f"g{i}" for i in range(10)] + [
        f"h{i}" for i in range(10)
    ]
    with pytest.raises(ValueError, match="bad unit"):
        await bad
    with pytest.raises(StorageError) as info:
        await duplicate
    assert isinstance(info.value.__cause__, IntegrityError)
    assert "g3" not in str(info.value)  # no data in the message
    stored = stored_values(engine)
    assert stored == {f"g{i}" for i in range(10)} | {f"h{i}" for i in range(10)}
    assert commits[0] == 1  # the gate; the failed batch was then re-run unit by unit
    assert commits[1:] == [1] * 20


async def test_close_flushes_units_queued_before_it(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    gate = Gate()
    held = await gate.hold(writer)
    tasks = [asyncio.create_task(writer.run(insert_item(f"c{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # every task has queued its unit
    close = await closing(writer)
    assert not close.done()  # it waits for the held batch
    gate.release.set()
    await close
    await held
    assert await asyncio.gather(*tasks) == [f"c{i}" for i in range(50)]
    assert len(stored_values(engine)) == 50


async def test_run_after_close_raises_writer_closed(engine: Engine) -> None:
    w = GroupCommitWriter(engine)
    with pytest.raises(RuntimeError, match="start"):
        await w.run(insert_item("x"))
    await w.start()
    await w.start()  # idempotent
    assert await w.run(insert_item("x")) == "x"
    await w.close()
    await w.close()  # idempotent
    with pytest.raises(WriterClosed):
        await w.run(insert_item("y"))
    with pytest.raises(WriterClosed):
        await w.start()
    assert issubclass(WriterClosed, StorageError)
    assert issubclass(StorageError, MonitorError)


async def test_cancelled_caller_does_not_break_the_writer(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    gate = Gate()
    held = await gate.hold(writer)
    doomed = asyncio.create_task(writer.run(insert_item("cancelled")))
    await asyncio.sleep(0)
    doomed.cancel()
    gate.release.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await writer.run(insert_item("after")) == "after"
    # a queued unit is not revoked by cancelling its caller (stores are idempotent)
    assert stored_values(engine) == {"cancelled", "after"}


async def test_on_commit_failure_does_not_fail_stores(engine: Engine) -> None:
    def broken_metrics(size: int, seconds: float) -> None:
        raise RuntimeError("metrics bug")

    async with GroupCommitWriter(engine, on_commit=broken_metrics) as w:
        assert await w.run(insert_item("m")) == "m"
    assert stored_values(engine) == {"m"}


async def test_bulk_items_of_one_batch_share_one_execute(
    engine: Engine, writer: GroupCommitWriter, commits: list[int], statements: list[str]
) -> None:
    op: BulkOp[str, str] = InsertItems()  # a BulkOp structurally (checked by mypy)
    gate = Gate()
    held = await gate.hold(writer)
    values = [f"b{i}" for i in range(50)]
    tasks = [asyncio.create_task(writer.run_bulk(op, v)) for v in values]
    await queued(writer, 51)
    statements.clear()
    gate.release.set()
    await held
    assert await asyncio.gather(*tasks) == [v.upper() for v in values]
    assert isinstance(op, InsertItems)
    assert op.calls == [values]  # one execute call, items in queue order
    assert len(inserts(statements)) == 1  # ... and one INSERT statement for the batch
    assert commits == [1, 50]  # batch_size counts bulk items
    assert stored_values(engine) == set(values)
    assert writer.pending == 0


async def test_many_concurrent_bulk_items_use_few_executes(
    engine: Engine, writer: GroupCommitWriter, commits: list[int]
) -> None:
    op = InsertItems()
    values = [f"c{i}" for i in range(300)]
    assert await asyncio.gather(*(writer.run_bulk(op, v) for v in values)) == [
        v.upper() for v in values
    ]
    assert len(op.calls) == len(commits) <= 30, commits  # one execute per transaction
    assert sorted(v for call in op.calls for v in call) == sorted(values)
    assert stored_values(engine) == set(values)


async def test_plain_units_and_bulk_ops_mixed_in_one_batch(
    engine: Engine, writer: GroupCommitWriter, commits: list[int], statements: list[str]
) -> None:
    log: list[str] = []
    first, second = InsertItems(log=log), InsertItems(log=log)
    gate = Gate()
    held = await gate.hold(writer)
    tasks = [
        asyncio.create_task(writer.run(logged_item("p1", log))),
        asyncio.create_task(writer.run_bulk(first, "a1")),
        asyncio.create_task(writer.run(logged_item("p2", log))),
        asyncio.create_task(writer.run_bulk(second, "z1")),
        asyncio.create_task(writer.run_bulk(first, "a2")),
        asyncio.create_task(writer.run(logged_item("p3", log))),
        asyncio.create_task(writer.run_bulk(first, "a3")),
    ]
    await queued(writer, 8)
    statements.clear()
    gate.release.set()
    await held
    assert await asyncio.gather(*tasks) == ["p1", "A1", "p2", "Z1", "A2", "p3", "A3"]
    # Plain units in queue order; each op's items together, where its first item was queued.
    assert log == ["p1", "a1+a2+a3", "p2", "z1", "p3"]
    assert first.calls == [["a1", "a2", "a3"]]
    assert second.calls == [["z1"]]
    assert len(inserts(statements)) == 5
    assert commits == [1, 7]
    assert stored_values(engine) == {"p1", "p2", "p3", "a1", "a2", "a3", "z1"}


async def test_failing_bulk_item_is_isolated(
    engine: Engine, writer: GroupCommitWriter, commits: list[int]
) -> None:
    assert await writer.run(insert_item("taken")) == "taken"
    commits.clear()
    op = InsertItems(fail_on="bad")
    gate = Gate()
    held = await gate.hold(writer)
    good = [asyncio.create_task(writer.run_bulk(op, f"g{i}")) for i in range(5)]
    bad = asyncio.create_task(writer.run_bulk(op, "bad"))
    duplicate = asyncio.create_task(writer.run_bulk(op, "taken"))  # violates the unique value
    plain = asyncio.create_task(writer.run(insert_item("plain")))
    more = [asyncio.create_task(writer.run_bulk(op, f"h{i}")) for i in range(5)]
    await queued(writer, 14)
    gate.release.set()
    await held

    assert await asyncio.gather(*good, plain, *more) == [f"G{i}" for i in range(5)] + ["plain"] + [
        f"H{i}" for i in range(5)
    ]
    with pytest.raises(ValueError, match="bad item"):
        await bad
    with pytest.raises(StorageError) as info:
        await duplicate
    assert isinstance(info.value.__cause__, IntegrityError)
    assert "taken" not in str(info.value)  # no data in the message
    assert stored_values(engine) == (
        {"taken", "plain"} | {f"g{i}" for i in range(5)} | {f"h{i}" for i in range(5)}
    )
    # the whole batch in one execute, rolled back; then every unit alone, bulk items as [item]
    assert op.calls[0] == [
        *(f"g{i}" for i in range(5)),
        "bad",
        "taken",
        *(f"h{i}" for i in range(5)),
    ]
    assert all(len(call) == 1 for call in op.calls[1:])
    assert len(op.calls) == 1 + 12
    assert commits == [1] + [1] * 11  # the gate, then the 11 good units one by one


async def test_bulk_result_count_mismatch_fails_its_callers(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    op = InsertItems(miscount=True)
    with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
        await writer.run_bulk(op, "x")
    assert stored_values(engine) == set()
    assert await writer.run_bulk(InsertItems(), "y") == "Y"


async def test_close_flushes_queued_bulk_items(
    engine: Engine, writer: GroupCommitWriter, commits: list[int]
) -> None:
    op = InsertItems()
    gate = Gate()
    held = await gate.hold(writer)
    tasks = [asyncio.create_task(writer.run_bulk(op, f"c{i}")) for i in range(50)]
    plain = asyncio.create_task(writer.run(insert_item("plain")))
    await asyncio.sleep(0)  # every task has queued its unit
    close = await closing(writer)
    assert not close.done()  # it waits for the held batch
    gate.release.set()
    await close
    await held
    assert await asyncio.gather(*tasks) == [f"C{i}" for i in range(50)]
    assert await plain == "plain"
    assert op.calls == [[f"c{i}" for i in range(50)]]
    assert commits == [1, 51]
    assert len(stored_values(engine)) == 51
    with pytest.raises(WriterClosed):
        await writer.run_bulk(op, "late")


async def test_cancelled_bulk_caller_still_stores(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    op = InsertItems()
    gate = Gate()
    held = await gate.hold(writer)
    doomed = asyncio.create_task(writer.run_bulk(op, "cancelled"))
    kept = asyncio.create_task(writer.run_bulk(op, "kept"))
    await asyncio.sleep(0)
    doomed.cancel()
    gate.release.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await kept == "KEPT"
    assert op.calls == [["cancelled", "kept"]]
    assert stored_values(engine) == {"cancelled", "kept"}


async def test_ping(writer: GroupCommitWriter) -> None:
    await writer.ping()


async def test_dropped_table_gives_storage_error_then_recovers(
    engine: Engine, writer: GroupCommitWriter
) -> None:
    assert await writer.run(insert_item("before")) == "before"
    ITEMS.drop(engine)
    with pytest.raises(StorageError) as info:
        await asyncio.wait_for(writer.run(insert_item("secret text")), 10)
    assert isinstance(info.value.__cause__, SQLAlchemyError)
    assert "secret" not in str(info.value)
    ITEMS.create(engine)
    assert await writer.run(insert_item("after")) == "after"


async def test_sqlite_file_gone_gives_storage_error(tmp_path: Path) -> None:
    folder = tmp_path / "volume"
    eng = make_engine(f"sqlite:///{folder / 'x.db'}")
    try:
        _META.create_all(eng)
        async with GroupCommitWriter(eng) as w:
            assert await w.run(insert_item("ok")) == "ok"
            eng.dispose()  # drop pooled connections, as after a restart
            shutil.rmtree(folder)
            folder.write_text("not a directory any more")  # the volume is gone
            with pytest.raises(StorageError) as info:
                await asyncio.wait_for(w.run(insert_item("lost")), 10)
            assert isinstance(info.value.__cause__, SQLAlchemyError)
            with pytest.raises(StorageError):
                await w.ping()
    finally:
        eng.dispose()


async def test_unreachable_postgresql_gives_storage_error() -> None:
    eng = make_engine("postgresql://postgres@127.0.0.1:1/test")  # nothing listens on port 1
    try:
        async with GroupCommitWriter(eng) as w:
            started = time.monotonic()
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(w.run(insert_item(f"u{i}")) for i in range(5)), return_exceptions=True
                ),
                15,
            )
            assert all(isinstance(r, StorageError) for r in results), results
            with pytest.raises(StorageError):
                await w.ping()
            assert time.monotonic() - started < 10
    finally:
        eng.dispose()


async def test_postgresql_connection_killed_is_reconnected(pg_schema_url: str) -> None:
    eng = make_engine(pg_schema_url)
    try:
        _META.create_all(eng)
        async with GroupCommitWriter(eng) as w:
            pid = await w.run(
                lambda conn: int(conn.execute(sql_text("SELECT pg_backend_pid()")).scalar_one())
            )
            admin_url = pg_schema_url.split("?", 1)[0]
            with psycopg.connect(admin_url, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (
                    True,
                )
            # pool_pre_ping notices the dead connection before the next batch uses it
            assert await w.run(insert_item("after restart")) == "after restart"
    finally:
        eng.dispose()


def _read_acknowledged(proc: subprocess.Popen[bytes], want: int, timeout_s: float) -> list[str]:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout_s
    while buffer.count(b"\n") < want:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the writer subprocess acknowledged too few keys in time"
        ready, _, _ = io_select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"the writer subprocess died: rc={proc.poll()}"
            buffer += chunk
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    buffer += proc.stdout.read()  # lines printed before the kill were acknowledged too
    return [line.decode() for line in buffer.split(b"\n")[:-1]]  # a cut-off last line is not


def test_acknowledged_stores_survive_kill_9(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    prefix = f"k9-{uuid.uuid4().hex[:8]}-"
    stderr_path = tmp_path / "writer.stderr"
    with (
        stderr_path.open("wb") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.db_writer_child", database_url, prefix],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
        ) as proc,
    ):
        try:
            acknowledged = _read_acknowledged(proc, want=300, timeout_s=8)
        except AssertionError as exc:
            proc.kill()
            raise AssertionError(f"{exc}\n{stderr_path.read_text()}") from None
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 300
    with engine.connect() as conn:
        stored = set(conn.execute(select(MessageRecord.__table__.c.dedupe_key)).scalars())
        total = conn.execute(select(func.count()).select_from(MessageRecord)).scalar_one()
    missing = [key for key in acknowledged if key not in stored]
    assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:3]}"
    assert total >= len(acknowledged)


def test_old_schema_is_refused_with_the_missing_columns(empty_database_url: str) -> None:
    from monitor.archive import SchemaMismatch

    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as conn:  # a message table as an older version made it
            conn.execute(
                sql_text(
                    "CREATE TABLE message (id INTEGER PRIMARY KEY, dedupe_key VARCHAR(128) UNIQUE, "
                    "channel VARCHAR, msg_type VARCHAR, event VARCHAR, from_user VARCHAR, "
                    "to_user VARCHAR, agent_id VARCHAR, create_time INTEGER, content TEXT, "
                    "raw TEXT, received_at TIMESTAMP)"
                )
            )
        with pytest.raises(SchemaMismatch, match="rules_version"):
            create_schema(engine)
    finally:
        engine.dispose()
