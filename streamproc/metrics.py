"""Prometheus metrics, built on a registry the daemon owns and passed to whoever needs them."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class ApiMetrics:
    """Control-plane metrics."""

    requests: Counter
    latency: Histogram
    faces: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ApiMetrics:
        """Register the control-plane metrics on ``registry``."""
        return cls(
            requests=Counter("streamproc_api_requests", "API requests by operation and result",
                             ["operation", "code"], registry=registry),
            latency=Histogram("streamproc_api_request_seconds", "API request latency",
                              ["operation"], registry=registry,
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)),
            faces=Gauge("streamproc_collection_faces", "Faces per collection", ["collection"],
                        registry=registry),
        )
