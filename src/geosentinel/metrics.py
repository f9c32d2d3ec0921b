"""Prometheus metrics of the service, scraped at ``/metrics``: ingest, queues, detection, alerts, delivery.

Counts only, no tenant or wearer labels: what the operators of an installation need to see it is healthy,
nothing about anyone's health. Collectors live in the process's default registry (one service per
process); the few places that count call the functions below, so the rest of the code does not depend on
the client library.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

READINGS = Counter("geosentinel_readings_committed", "Readings committed to the store")
EVENTS = Counter("geosentinel_events_committed", "Detector events committed, by kind", ["kind"])
COMMIT_SECONDS = Histogram(
    "geosentinel_ingest_commit_seconds",
    "Time from handing a batch to the store's writer to its commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DETECT_SECONDS = Histogram(
    "geosentinel_detection_seconds",
    "Time the pipeline spends on one batch's detectors (per batch)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
QUEUE_DEPTH = Gauge(
    "geosentinel_pipeline_queue_depth", "Messages waiting in the pipeline's queues (at scrape)"
)
ESCALATION_STEPS = Counter(
    "geosentinel_escalation_steps", "Escalation steps sent (their notifications created)"
)
NOTIFICATIONS = Counter(
    "geosentinel_notification_tries", "Notification delivery tries, by result", ["result"]
)  # delivered, retrying (failed, will try again), failed (given up)
LIVE_SUBSCRIBERS = Gauge("geosentinel_live_subscribers", "Open event streams (GET /api/v1/stream)")
LIVE_DROPPED = Counter(
    "geosentinel_live_dropped", "Event streams ended because their client read too slowly (queue full)"
)
LIVE_EVENTS = Counter("geosentinel_live_events", "Events published to the event streams, by name", ["name"])


def committed(readings: int, event_kinds: Iterable[str], seconds: float) -> None:
    READINGS.inc(readings)
    for kind in event_kinds:
        EVENTS.labels(kind).inc()
    COMMIT_SECONDS.observe(seconds)


def notification_tried(result: str) -> None:
    NOTIFICATIONS.labels(result).inc()


def escalation_step() -> None:
    ESCALATION_STEPS.inc()


def live_subscribers(change: int) -> None:
    LIVE_SUBSCRIBERS.inc(change)


def live_dropped() -> None:
    LIVE_DROPPED.inc()


def live_event(name: str) -> None:
    LIVE_EVENTS.labels(name).inc()


def exposition() -> bytes:
    return generate_latest()
