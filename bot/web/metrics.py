"""Prometheus metrics of one app instance, on a registry the app owns (no module-global registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["BotMetrics", "PostMetrics"]

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
    #: Pre-bound children of ``callbacks`` and ``callback_latency`` for the POST hot path.
    post: PostMetrics

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BotMetrics:
        """Register every metric on ``registry``."""
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
                "sentinel_alerts_pending", "Outbox rows waiting to be sent", registry=registry
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
