"""Prometheus metrics of one app instance, on a registry the app owns (no module-global registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["BotMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class BotMetrics:
    """The callback path's metrics."""

    callbacks: Counter
    callback_latency: Histogram
    dedupe_hits: Counter
    commit_latency: Histogram
    commit_batch: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BotMetrics:
        """Register every metric on ``registry``."""
        return cls(
            callbacks=Counter(
                "sentinel_callbacks",
                "WeCom callbacks by method and outcome",
                ["method", "outcome"],
                registry=registry,
            ),
            callback_latency=Histogram(
                "sentinel_callback_seconds",
                "Time from request to answer on the callback path",
                ["method"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
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
        )

    def observe_commit(self, batch_size: int, seconds: float) -> None:
        """Hook for the group-commit writer's ``on_commit``."""
        self.commit_batch.observe(batch_size)
        self.commit_latency.observe(seconds)
