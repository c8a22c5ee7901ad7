"""Prometheus metrics of one app instance, on a registry the app owns (no module-global registry).

Under ``serve --workers N`` every worker is its own process with its own app, so its metrics live
in prometheus-client's multiprocess mode: each worker writes its values to memory-mapped files in
one shared folder (``PROMETHEUS_MULTIPROC_DIR``, set by the supervisor before it starts the
workers, which import prometheus-client afresh), and ``/metrics``, whichever worker answers, reads
every worker's files (``MultiProcessCollector``). Counters and histograms of a worker that died
stay in the sum; its gauges leave with it (``worker_exited``). A single worker serves in the
supervisor's own process and keeps its values in memory, unless ``PROMETHEUS_MULTIPROC_DIR`` is set
(then the folder is emptied at start as well).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = [
    "MULTIPROC_ENV",
    "BotMetrics",
    "PostMetrics",
    "multiprocess_dir",
    "shared_metrics_dir",
    "worker_exited",
]

#: The environment variable prometheus-client reads, at import, to write values to files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class PostMetrics:
    """The label children a POST callback touches, bound once.

    ``metric.labels(...)`` hashes its label values and takes a lock on every call; a callback used
    two of them per request.
    """

    latency: Histogram
    stored: Counter
    replied: Counter

    @classmethod
    def bind(cls, callbacks: Counter, callback_latency: Histogram) -> PostMetrics:
        """The POST children of ``callbacks`` and ``callback_latency``."""
        return cls(
            latency=callback_latency.labels("POST"),
            stored=callbacks.labels("POST", "stored"),
            replied=callbacks.labels("POST", "replied"),
        )


@dataclass(frozen=True, slots=True)
class BotMetrics:
    """The callback path's metrics."""

    callbacks: Counter
    callback_latency: Histogram
    dedupe_hits: Counter
    commit_latency: Histogram
    commit_batch: Histogram
    alerts_created: Counter
    alerts_sent: Counter
    alerts_failed: Counter
    alerts_pending: Gauge
    alert_delivery_latency: Histogram
    kf_items: Counter
    kf_actions: Counter
    kf_pages: Counter
    msgaudit_records: Counter
    msgaudit_lag: Gauge
    msgaudit_quarantine: Gauge
    #: Pre-bound children of ``callbacks`` and ``callback_latency`` for the POST hot path.
    post: PostMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BotMetrics:
        """Register every metric on ``registry``, the one ``/metrics`` shows.

        In multiprocess mode (:func:`multiprocess_dir`) ``registry`` gets the collector of every
        worker's files instead, and the metrics themselves go on a registry nobody reads: their
        values are in this process's files, which that collector reads with the others'.
        """
        shared = multiprocess_dir()
        if shared is not None:
            MultiProcessCollector(registry, str(shared))  # type: ignore[no-untyped-call]
            registry = CollectorRegistry()
        callbacks = Counter(
            "sentinel_callbacks",
            "WeCom callbacks by method and outcome",
            ["method", "outcome"],
            registry=registry,
        )
        callback_latency = Histogram(
            "sentinel_callback_seconds",
            "Time from request to answer on the callback path",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        return cls(
            callbacks=callbacks,
            callback_latency=callback_latency,
            post=PostMetrics.bind(callbacks, callback_latency),
            dedupe_hits=Counter(
                "sentinel_dedupe_hits", "WeCom retries dropped as duplicates", registry=registry
            ),
            commit_latency=Histogram(
                "sentinel_storage_commit_seconds",
                "Duration of one group-commit transaction",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            commit_batch=Histogram(
                "sentinel_storage_commit_batch_size",
                "Units of work per group-commit transaction",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                registry=registry,
            ),
            alerts_created=Counter(
                "sentinel_alerts_created",
                "Alert decisions by action (new, join, renotify)",
                ["action"],
                registry=registry,
            ),
            alerts_sent=Counter(
                "sentinel_alerts_sent",
                "Outbox rows delivered to WeCom, by kind (card, escalation, digest, robot, ...)",
                ["kind"],
                registry=registry,
            ),
            alerts_failed=Counter(
                "sentinel_alerts_failed",
                "Outbox rows given up on, by kind",
                ["kind"],
                registry=registry,
            ),
            alerts_pending=Gauge(
                "sentinel_alerts_pending",
                "Outbox rows waiting to be sent",
                registry=registry,
                # Every worker counts the same table: show the latest count of a live worker.
                multiprocess_mode="livemostrecent",
            ),
            alert_delivery_latency=Histogram(
                "sentinel_alert_delivery_seconds",
                "Time from queueing an outbox row (with its message) to WeCom accepting it",
                ["kind"],
                buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
                registry=registry,
            ),
            kf_items=Counter(
                "sentinel_kf_items",
                "微信客服 items pulled and archived, by author (customer, staff, system)",
                ["author"],
                registry=registry,
            ),
            kf_actions=Counter(
                "sentinel_kf_actions",
                "微信客服 bot actions (reply, handoff, transfer, welcome) by outcome",
                ["kind", "outcome"],
                registry=registry,
            ),
            kf_pages=Counter(
                "sentinel_kf_pages", "kf/sync_msg pages archived and decided", registry=registry
            ),
            msgaudit_records=Counter(
                "sentinel_msgaudit_records",
                "会话内容存档 records pulled, by outcome (archived, repeat, quarantined, released)",
                ["outcome"],
                registry=registry,
            ),
            msgaudit_lag=Gauge(
                "sentinel_msgaudit_lag_seconds",
                "Now minus the msgtime of the newest archived 会话内容存档 record",
                registry=registry,
                multiprocess_mode="livemostrecent",
            ),
            msgaudit_quarantine=Gauge(
                "sentinel_msgaudit_quarantined",
                "会话内容存档 records waiting in quarantine (cannot be decrypted yet)",
                registry=registry,
                multiprocess_mode="livemostrecent",
            ),
        )

    def observe_commit(self, batch_size: int, seconds: float) -> None:
        """Hook for the group-commit writer's ``on_commit``."""
        self.commit_batch.observe(batch_size)
        self.commit_latency.observe(seconds)

    def outbox_sent(self, kind: str, latency_s: float) -> None:
        """Hook for the outbox worker: one row delivered."""
        self.alerts_sent.labels(kind).inc()
        self.alert_delivery_latency.labels(kind).observe(latency_s)

    def outbox_failed(self, kind: str) -> None:
        """Hook for the outbox worker: one row given up on."""
        self.alerts_failed.labels(kind).inc()

    def outbox_pending(self, count: int) -> None:
        """Hook for the outbox worker: rows waiting after a pass."""
        self.alerts_pending.set(count)


def multiprocess_dir() -> Path | None:
    """The folder this process writes its metric values to, or None when they are in memory.

    prometheus-client chooses at import whether values go to files; both that choice and the
    folder must hold, or one process would count into files nobody reads (or the reverse).
    """
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return Path(folder)


@contextmanager
def shared_metrics_dir(workers: int) -> Iterator[Path | None]:
    """The folder the workers about to be started share their metrics in, empty, for the block.

    ``PROMETHEUS_MULTIPROC_DIR`` from the environment is used (and emptied of the previous run's
    files) when set; otherwise several workers get a fresh private temporary folder, removed
    afterwards, and one worker none (its values stay in memory). Yields the folder or None.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield folder
        return
    if workers == 1:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="sentinel-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)  # inherited by the workers started in the block
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def worker_exited(folder: Path | None, pid: int) -> None:
    """Drop the gauges of a worker that exited from the shared folder (counters stay summed)."""
    if folder is not None:
        mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
