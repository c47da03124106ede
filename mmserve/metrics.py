"""Prometheus metrics: request counters and latency histograms, engine and guard gauges.

Each app has its own registry (tests run several apps in one process). Requests are
recorded once, from the canonical request log line; engine and guard figures are
read when /metrics is scraped. Counts are counters (``_total``), levels are gauges;
the ``_created`` series are off.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

__all__ = ["Metrics"]

_PHASES = ("intake", "queue", "prepare", "admit", "prefill", "decode")
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# resized: images shrunk for the side limit or memory; snapped: only rounded to the model's grid.
_DECISIONS = ("resized", "snapped", "clamped", "queued", "refused")


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # process-wide; the timestamps of counter creation say nothing here
        self.registry = CollectorRegistry()
        self._counted: dict[tuple[str, str], float] = {}  # counts already added to the counters below
        r = self.registry
        self.requests = Counter(
            "mmserve_requests", "Chat requests by route and HTTP status", ["route", "status"], registry=r
        )
        self.prompt_tokens = Counter("mmserve_prompt_tokens", "Prompt tokens processed", ["route"], registry=r)
        self.cached_tokens = Counter(
            "mmserve_cached_prompt_tokens", "Prompt tokens served from the prefix cache", ["route"], registry=r
        )
        self.completion_tokens = Counter(
            "mmserve_completion_tokens", "Completion tokens generated", ["route"], registry=r
        )
        self.ttft = Histogram(
            "mmserve_time_to_first_token_seconds",
            "Time to first token",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "mmserve_request_duration_seconds",
            "Whole request duration",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.phases = Histogram(
            "mmserve_request_phase_seconds",
            "Where a request's time went: intake (images, token count, memory plan), and in the "
            "worker queue, prepare (templating, image preprocessing, encoder), admit, prefill, decode",
            ["route", "phase"],
            buckets=(0.001, 0.0025, 0.005, *_LATENCY_BUCKETS),
            registry=r,
        )
        self.queue_depth = Gauge("mmserve_queue_depth", "Requests admitted but not yet running", ["engine"], registry=r)
        self.batch_size = Gauge(
            "mmserve_batch_size", "Sequences in the engine's running batches", ["engine"], registry=r
        )
        self.restarts = Counter(
            "mmserve_worker_restarts", "Times the engine's workers were restarted", ["engine"], registry=r
        )
        self.worker_memory = Gauge(
            "mmserve_worker_memory_bytes", "Engine worker memory", ["engine", "kind"], registry=r
        )
        self.guard_decisions = Counter(
            "mmserve_guard_decisions",
            "Memory guard decisions: images resized (shrunk for the side limit or memory) or only snapped to "
            "the model's grid, max_tokens clamped, requests queued for memory or refused",
            ["decision"],
            registry=r,
        )
        self.guard_memory = Gauge(
            "mmserve_guard_memory_bytes", "Memory guard budget and what running requests hold", ["kind"], registry=r
        )

    def observe_request(self, fields: dict) -> None:
        """Record one finished chat request from its canonical log fields."""
        route = fields.get("route")
        if route is None:
            return
        self.requests.labels(route, str(fields.get("status", 0))).inc()
        self.prompt_tokens.labels(route).inc(fields.get("prompt_tokens", 0))
        self.cached_tokens.labels(route).inc(fields.get("cached_tokens", 0))
        self.completion_tokens.labels(route).inc(fields.get("completion_tokens", 0))
        if "ttft_ms" in fields:
            self.ttft.labels(route).observe(fields["ttft_ms"] / 1000)
        if "total_ms" in fields:
            self.latency.labels(route).observe(fields["total_ms"] / 1000)
        for phase in _PHASES:
            if f"{phase}_ms" in fields:
                self.phases.labels(route, phase).observe(fields[f"{phase}_ms"] / 1000)

    def _count(self, counter: Counter, label: str, total: float) -> None:
        """Bring a counter up to ``total``, a count kept elsewhere since start."""
        key = (counter._name, label)
        delta = total - self._counted.get(key, 0)
        counter.labels(label).inc(max(delta, 0))
        self._counted[key] = max(total, self._counted.get(key, 0))

    async def render(self, service) -> bytes:
        """Refresh the engine and guard gauges, then render the text exposition format."""
        for pool in service.engines.values():  # an engine's workers add up
            stats = [s for s in await asyncio.gather(*(worker.stats() for worker in pool.workers)) if s]
            running = sum(stat.running for stat in stats)
            self.batch_size.labels(pool.kind).set(running)
            self.queue_depth.labels(pool.kind).set(max(pool.inflight - running, 0))
            self._count(self.restarts, pool.kind, pool.restarts)
            if stats:
                self.worker_memory.labels(pool.kind, "budget").set(stats[0].memory_limit_bytes)  # each worker's
                for kind, field in (
                    ("active", "active_bytes"),
                    ("peak", "peak_bytes"),
                    ("cache", "cache_bytes"),
                    ("prefix_cache", "prefix_cache_bytes"),
                ):
                    self.worker_memory.labels(pool.kind, kind).set(sum(getattr(stat, field) for stat in stats))
        guard = service.guard
        for decision in _DECISIONS:
            self._count(self.guard_decisions, decision, guard.decisions.get(decision, 0))
        self.guard_memory.labels("budget").set(guard.budget_bytes)
        self.guard_memory.labels("held").set(guard.ledger.held_bytes)
        return generate_latest(self.registry)
