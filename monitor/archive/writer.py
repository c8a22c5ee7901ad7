"""The group-commit writer: one transaction per few milliseconds of messages.

The no-data-loss rule says a callback is answered only after its message is durably stored.
Committing one transaction per message would cap throughput at the disk's fsync rate, so
:class:`GroupCommitWriter` lets every message arriving while a commit is in flight share the next
transaction. Work that is the same statement for every message (storing one) can go through a
:class:`BulkOp`, which the writer runs once per transaction for all the items of a batch: one
multi-row statement instead of one statement, and its per-statement Python overhead, per message.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from monitor.errors import StorageError, WriterClosed
from monitor.log import storage_log

__all__ = ["SQLITE_BEGIN_OPTION", "BulkOp", "GroupCommitWriter"]

T = TypeVar("T")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
ItemT_contra = TypeVar("ItemT_contra", contravariant=True)
ResultT_co = TypeVar("ResultT_co", covariant=True)

SQLITE_BEGIN_OPTION = "sentinel_sqlite_begin"
"""Execution option read by the SQLite engine's "begin" hook (see ``monitor.archive.database.make_engine``).

The writer sets it to IMMEDIATE, taking the write lock up front so a batch never fails half-way on
a lock upgrade; other connections use a deferred BEGIN.
"""


class BulkOp(Protocol[ItemT_contra, ResultT_co]):
    """Database work done for many items at once; see :meth:`GroupCommitWriter.run_bulk`.

    Every item queued with the same op object during one batch is handed to a single
    :meth:`execute` call inside the batch's transaction.
    """

    def execute(self, conn: Connection, items: Sequence[ItemT_contra]) -> Sequence[ResultT_co]:
        """Do the work for ``items`` on ``conn``; return one result per item, in the same order.

        Runs in the writer thread, inside a transaction the writer commits. Raising fails the whole
        call; the writer then re-runs each item alone (``items`` of length 1) to find the bad one,
        so like any unit it must have no side effects outside the connection.
        """
        ...


@dataclass(slots=True)
class _Unit:
    op: BulkOp[Any, Any] | None  # None: a plain unit (run), whose item is the work callable
    item: Any
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_Step = _Unit | tuple[BulkOp[Any, Any], list[_Unit]]  # a plain unit, or one op's bulk items
_Outcome = tuple[_Unit, bool, Any]  # (unit, succeeded, result or exception)


class _UnitFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


class GroupCommitWriter:
    """Runs units of database work from asyncio code in shared, group-committed transactions.

    One dedicated thread owns the writing. It blocks for the first queued unit, drains whatever
    else is queued (up to ``max_batch``; waiting up to ``max_delay_s`` for more if that is > 0),
    runs them all in one transaction and commits. A batch thus forms by itself while the previous
    commit is in flight.

    ``run(work)`` resolves only after the transaction holding ``work`` committed. A unit that
    raises is isolated: the batch is rolled back and each of its units re-run in its own
    transaction, so only the bad one fails. Units must therefore have no side effects outside the
    connection (they may run twice). If the connection or the commit fails, every unit of the batch
    gets a :class:`StorageError`; the outcome of an interrupted COMMIT is unknown, which is why
    stores must be idempotent.

    ``run_bulk(op, item)`` queues an item for a :class:`BulkOp`: inside a batch, all items of the
    same op object are done by one ``op.execute(conn, items)`` call, placed where the op's first
    item was queued (plain units run in queue order; a bulk item may thus run before plain units
    queued ahead of it but after its op's first item). On failure each item is re-run alone, as
    above.

    ``on_commit(batch_size, seconds)`` is called from the writer thread after each commit (metrics);
    ``batch_size`` counts units (plain units and bulk items). The engine belongs to the caller:
    dispose it after :meth:`close`.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 256,
        max_delay_s: float = 0.0,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_delay_s < 0:
            raise ValueError("max_delay_s must not be negative")
        self._engine = engine
        self._tx_engine = (
            engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            if engine.dialect.name == "sqlite"
            else engine
        )
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()  # None = stop
        self._lock = threading.Lock()  # orders "closed?" checks against the stop marker
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pending = 0
        # Units submitted during the current event-loop iteration, handed to the writer together.
        self._staged: list[_Unit] = []

    @property
    def engine(self) -> Engine:
        """The engine units run against."""
        return self._engine

    @property
    def pending(self) -> int:
        """Units submitted through :meth:`run` and not yet resolved."""
        return self._pending

    async def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._lock:
            if self._closed:
                raise WriterClosed("the group-commit writer is closed")
            if self._thread is not None:
                return
            # A daemon thread: a process exiting without close() must not hang; nothing was
            # acknowledged for the work it abandons, so this loses nothing.
            self._thread = threading.Thread(
                target=self._main, name="sentinel-db-writer", daemon=True
            )
            self._thread.start()
        storage_log.info("group-commit writer started on %s", self._engine.dialect.name)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Queue ``work`` and return its result once the transaction containing it has committed.

        Raises the unit's own exception (database errors as :class:`StorageError`), a
        :class:`StorageError` if the commit failed, or :class:`WriterClosed` after :meth:`close`.
        Cancelling the caller does not revoke a queued unit; it still runs.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(_Unit(None, work, future, loop))
        self._pending += 1
        try:
            return await future
        finally:
            self._pending -= 1

    async def run_bulk(self, op: BulkOp[ItemT, ResultT], item: ItemT) -> ResultT:
        """Queue ``item`` for ``op`` and return its result once its transaction has committed.

        All items queued with the same ``op`` object that land in one batch are done by a single
        ``op.execute(conn, items)`` call. Errors, cancellation and :meth:`close` behave as for
        :meth:`run`; if ``execute`` raises, each item is re-run alone so only the bad one fails.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        self._submit(_Unit(op, item, future, loop))
        self._pending += 1
        try:
            return await future
        finally:
            self._pending -= 1

    def _submit(self, unit: _Unit) -> None:
        with self._lock:
            if self._closed:
                raise WriterClosed("the group-commit writer is closed")
            if self._thread is None:
                raise RuntimeError("GroupCommitWriter.start() has not been awaited")
            self._staged.append(unit)
            first = len(self._staged) == 1
        if first:
            # Hand units over once per event-loop iteration rather than one by one: the callbacks
            # one iteration processed then reach the writer together and share a transaction.
            # Handing over each unit at once woke the writer for a batch of one most of the time,
            # so most commits (the costly part) carried a single message.
            unit.loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        with self._lock:
            staged, self._staged = self._staged, []
            for unit in staged:
                self._queue.put(unit)

    async def ping(self, *, timeout_s: float = 5.0) -> None:
        """Round-trip ``SELECT 1`` through the writer; :class:`StorageError` on failure/timeout."""
        try:
            await asyncio.wait_for(self.run(_select_one), timeout_s)
        except TimeoutError as exc:
            raise StorageError("database ping timed out") from exc

    async def close(self) -> None:
        """Stop accepting work, commit everything already queued, stop the thread (idempotent)."""
        with self._lock:
            first_close = not self._closed
            self._closed = True
            thread = self._thread
            if first_close and thread is not None:
                staged, self._staged = self._staged, []
                for unit in staged:  # queued before the stop marker, so they still commit
                    self._queue.put(unit)
                self._queue.put(None)
        if thread is not None:
            await asyncio.to_thread(thread.join)
        if first_close:
            storage_log.info("group-commit writer closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- writer thread -------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            stop = False
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                batch, stop = self._collect(first)
                self._process(batch)
        except BaseException:  # a bug here must not leave callers waiting forever
            storage_log.exception("group-commit writer thread crashed")
        finally:
            with self._lock:
                self._closed = True
            leftovers: list[_Outcome] = []
            while True:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is not None:
                    leftovers.append((unit, False, WriterClosed("the group-commit writer stopped")))
            _settle(leftovers)

    def _collect(self, first: _Unit) -> tuple[list[_Unit], bool]:
        batch = [first]
        max_batch = self._max_batch
        if self._max_delay_s == 0:
            # The default: take what is queued right now, without a clock read per unit.
            get_nowait = self._queue.get_nowait
            append = batch.append
            for _ in range(max_batch - 1):
                try:
                    unit = get_nowait()
                except queue.Empty:
                    break
                if unit is None:
                    return batch, True
                append(unit)
            return batch, False
        deadline = time.monotonic() + self._max_delay_s
        while len(batch) < max_batch:
            remaining = deadline - time.monotonic()
            try:
                unit = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if unit is None:
                return batch, True
            batch.append(unit)
        return batch, False

    def _process(self, batch: list[_Unit]) -> None:
        started = time.perf_counter()
        try:
            outcomes = self._transaction(batch)
        except _UnitFailed as failed:
            error = failed.error
            if len(batch) == 1:
                _settle([(batch[0], False, _as_caller_error(error))])
            elif isinstance(error, DBAPIError) and error.connection_invalidated:
                # The connection died: each re-run would wait for a connect; let WeCom retry.
                storage_log.warning("connection lost in a batch of %d units", len(batch))
                _settle([(unit, False, _as_caller_error(error)) for unit in batch])
            else:
                storage_log.warning(
                    "a unit failed (%s); re-running %d units one by one",
                    type(error).__name__,
                    len(batch),
                )
                self._one_by_one(batch)
            return
        # Connect, BEGIN or COMMIT failed: nothing is known to be stored. BaseException too, so a
        # dying thread still answers its batch.
        except BaseException as exc:
            storage_log.warning("commit of %d units failed: %s", len(batch), type(exc).__name__)
            storage_log.debug("commit failure detail", exc_info=True)
            _settle(
                [(unit, False, _storage_error("database commit failed", exc)) for unit in batch]
            )
            if not isinstance(exc, Exception):
                raise
            return
        self._committed(len(batch), time.perf_counter() - started)
        _settle(outcomes)

    def _transaction(self, batch: list[_Unit]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        steps = _plan(batch)
        with self._tx_engine.begin() as conn:
            for step in steps:
                try:
                    if isinstance(step, _Unit):
                        outcomes.append((step, True, _run_plain(step, conn)))
                    else:
                        op, units = step
                        results = _run_bulk(op, units, conn)
                        outcomes.extend(
                            [(unit, True, r) for unit, r in zip(units, results, strict=True)]
                        )
                except Exception as exc:
                    raise _UnitFailed(exc) from exc
        return outcomes

    def _one_by_one(self, batch: list[_Unit]) -> None:
        outcomes: list[_Outcome] = []
        for unit in batch:
            started = time.perf_counter()
            try:
                with self._tx_engine.begin() as conn:
                    op = unit.op
                    result = (
                        _run_plain(unit, conn) if op is None else _run_bulk(op, [unit], conn)[0]
                    )
            except Exception as exc:
                storage_log.debug("unit failure detail", exc_info=True)
                outcomes.append((unit, False, _as_caller_error(exc)))
                continue
            self._committed(1, time.perf_counter() - started)
            outcomes.append((unit, True, result))
        _settle(outcomes)

    def _committed(self, size: int, seconds: float) -> None:
        if self._on_commit is None:
            return
        try:
            self._on_commit(size, seconds)
        except Exception:  # a metrics bug must not fail stores that did commit
            storage_log.warning("on_commit callback failed", exc_info=True)


def _plan(batch: list[_Unit]) -> list[_Step]:
    """Plain units in queue order; each op's bulk items as one step where its first item was."""
    op = batch[0].op
    if op is not None and all(unit.op is op for unit in batch):
        return [(op, batch)]  # the usual batch under load: one kind of store, nothing to sort
    steps: list[_Step] = []
    # Keyed by id(op): "the same op object" is what shares an execute, and ops need not be hashable.
    groups: dict[int, list[_Unit]] = {}
    for unit in batch:
        op = unit.op
        if op is None:
            steps.append(unit)
            continue
        group = groups.get(id(op))
        if group is None:
            group = groups[id(op)] = []
            steps.append((op, group))
        group.append(unit)
    return steps


def _run_plain(unit: _Unit, conn: Connection) -> Any:
    return unit.item(conn)


def _run_bulk(op: BulkOp[Any, Any], units: list[_Unit], conn: Connection) -> Sequence[Any]:
    results = op.execute(conn, [unit.item for unit in units])
    if len(results) != len(units):  # a miscount would hand callers each other's results
        raise RuntimeError(
            f"{type(op).__name__}.execute returned {len(results)} results for {len(units)} items"
        )
    return results


def _select_one(conn: Connection) -> None:
    conn.execute(text("SELECT 1")).close()


def _storage_error(message: str, cause: BaseException) -> StorageError:
    # The class name only: str(cause) would carry SQL parameters, i.e. message text.
    error = StorageError(f"{message} ({type(cause).__name__})")
    error.__cause__ = cause
    return error


def _as_caller_error(exc: Exception) -> BaseException:
    """Database errors become StorageError; a unit's own exceptions reach the caller unchanged."""
    if isinstance(exc, SQLAlchemyError):
        return _storage_error("database operation failed", exc)
    return exc


def _settle(outcomes: list[_Outcome]) -> None:
    """Hand outcomes to their event loops (one thread-safe call per loop, not per unit).

    Each call writes to the loop's self-pipe and wakes it up, so a batch costs one wake-up per
    loop rather than one per unit.
    """
    if not outcomes:
        return
    first_loop = outcomes[0][0].loop
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]]
    if all(outcome[0].loop is first_loop for outcome in outcomes):  # the usual case: one loop
        by_loop = {first_loop: outcomes}
    else:
        by_loop = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, items)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
            storage_log.debug("dropped %d outcomes for a closed event loop", len(items))


def _settle_on_loop(items: list[_Outcome]) -> None:
    for unit, ok, value in items:
        if unit.future.done():  # the caller was cancelled (e.g. a timeout); it wants no answer
            continue
        if ok:
            unit.future.set_result(value)
        else:
            unit.future.set_exception(value)
