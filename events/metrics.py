"""Prometheus metrics of the Events API (prometheus-client).

Under gunicorn each worker writes its samples to PROMETHEUS_MULTIPROC_DIR (set up in gunicorn.conf.py) and
/metrics adds them up across workers; without it (tests, runserver) the process's own registry is served.
"""

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

EVENTS_ACCEPTED = Counter(
    "canvas_events_accepted_total", "Events stored or recognised as duplicates.", ["endpoint", "outcome"]
)
EVENTS_REFUSED = Counter(
    "canvas_events_refused_total", "Requests or events refused, by reason.", ["endpoint", "reason"]
)
REQUEST_SECONDS = Histogram(
    "canvas_ingest_request_seconds",
    "Time to answer an ingest request, from routing to response.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GROUP_COMMIT_ROWS = Histogram(
    "canvas_group_commit_rows",
    "Events written per group-commit transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)


def record_answer(*, endpoint: str, status: int, data, seconds: float) -> None:
    _child(REQUEST_SECONDS, endpoint).observe(seconds)
    if not isinstance(data, dict):
        return
    if "results" in data:  # a batch receipt, also carried by a partly refused batch's 400
        _child(EVENTS_ACCEPTED, endpoint, "stored").inc(data["stored"])
        _child(EVENTS_ACCEPTED, endpoint, "duplicate").inc(data["duplicates"])
        if data["rejected"]:
            _child(EVENTS_REFUSED, endpoint, "invalid_payload").inc(data["rejected"])
    elif status < 300:
        _child(EVENTS_ACCEPTED, endpoint, "duplicate" if data.get("duplicate") else "stored").inc()
    elif "error" in data:
        _child(EVENTS_REFUSED, endpoint, data["error"]["code"]).inc()


_children: dict[tuple, object] = {}


def _child(metric, *labels: str):
    """metric.labels(*labels), remembered: `labels` takes a lock and builds a key on every call, on every request.
    The label values come from a fixed set (endpoints, outcomes, error codes), so this stays small."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint. With METRICS_TOKEN set it asks for `Authorization: Bearer <token>`."""
    expected = settings.METRICS_TOKEN
    if expected and not hmac.compare_digest(request.META.get("HTTP_AUTHORIZATION", ""), f"Bearer {expected}"):
        return HttpResponseForbidden("metrics token required\n")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = PROCESS_REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
