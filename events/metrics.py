"""Prometheus metrics of the Events API (prometheus-client).

Under gunicorn each worker writes its samples to PROMETHEUS_MULTIPROC_DIR (set up in gunicorn.conf.py) and
/metrics adds them up across workers; without it (tests, runserver) the process's own registry is served.
"""

import atexit
import hmac
import os
import threading
import time
from bisect import bisect_left

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

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
    tally = _tally
    with tally.lock:
        tally.observe(REQUEST_SECONDS, (endpoint,), seconds)
        if not isinstance(data, dict):
            return
        if "results" in data:  # a batch receipt, also carried by a partly refused batch's 400
            tally.add(EVENTS_ACCEPTED, (endpoint, "stored"), data["stored"])
            tally.add(EVENTS_ACCEPTED, (endpoint, "duplicate"), data["duplicates"])
            if data["rejected"]:
                tally.add(EVENTS_REFUSED, (endpoint, "invalid_payload"), data["rejected"])
        elif status < 300:
            tally.add(EVENTS_ACCEPTED, (endpoint, "duplicate" if data.get("duplicate") else "stored"), 1)
        elif "error" in data:
            tally.add(EVENTS_REFUSED, (endpoint, data["error"]["code"]), 1)


def record_group_commit(rows: int) -> None:
    with _tally.lock:
        _tally.observe(GROUP_COMMIT_ROWS, (), rows)


class Tally:
    """What this process has counted and not yet written to its Prometheus values.

    Under gunicorn every Prometheus value is a file-backed mmap, and each write takes a lock and packs the value
    into the file: too dear for every request (docs/performance.md#what-each-feature-costs). Counted here in
    plain Python instead, they are written at most once a second
    by a background thread, and whenever /metrics is read in this process: a scrape sees every request answered
    a second or more before it, and this process's own up to the moment. The histogram's buckets are filled
    through prometheus-client's Histogram internals (_sum, _buckets, _upper_bounds: pinned in requirements.txt;
    tests/test_observability.py checks the result against Histogram.observe).
    """

    FLUSH_SECONDS = 1.0

    def __init__(self) -> None:
        self._start()
        # gunicorn forks its workers from a master that has imported this module: each worker starts afresh, with
        # a lock no thread of the master may be holding and a flusher thread of its own.
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[tuple, float] = {}  # (counter, labels) -> amount
        self.histograms: dict[tuple, list] = {}  # (histogram, labels) -> [sum, count per bucket...]
        self.flusher: threading.Thread | None = None

    def add(self, metric: Counter, labels: tuple, amount: float) -> None:
        """Counter.inc, kept (call with the lock held)."""
        key = (metric, labels)
        self.counts[key] = self.counts.get(key, 0) + amount
        if self.flusher is None:
            self._start_flusher()

    def observe(self, metric: Histogram, labels: tuple, amount: float) -> None:
        """Histogram.observe, kept (call with the lock held): the value falls into the first bucket whose bound it
        does not exceed."""
        key = (metric, labels)
        counts = self.histograms.get(key)
        if counts is None:
            counts = self.histograms[key] = [0.0] + [0] * len(metric._upper_bounds)
        counts[0] += amount
        counts[1 + bisect_left(metric._upper_bounds, amount)] += 1
        if self.flusher is None:
            self._start_flusher()

    def _start_flusher(self) -> None:
        # Started by the first count, in the process that counts.
        self.flusher = threading.Thread(target=self._flush_every_second, name="events-metrics", daemon=True)
        self.flusher.start()

    def _flush_every_second(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            counts, self.counts = self.counts, {}
            histograms, self.histograms = self.histograms, {}
        for (metric, labels), amount in counts.items():
            _child(metric, labels).inc(amount)
        for (metric, labels), (total, *buckets) in histograms.items():
            child = _child(metric, labels)
            child._sum.inc(total)
            for bucket, count in zip(child._buckets, buckets, strict=True):
                if count:
                    bucket.inc(count)


_tally = Tally()
flush = _tally.flush
atexit.register(flush)  # a worker that stops gracefully writes what it counted last


def _child(metric, labels: tuple):
    return metric.labels(*labels) if labels else metric


class WarehouseSyncCollector(Collector):
    """Teams whose sync fails and how far the catalog is behind, read from the database at each scrape: the sync
    runs in a process of its own."""

    def collect(self):
        from events.models import TeamWarehouse
        from events.warehouse.catalog import catalog_lag

        try:
            totals = TeamWarehouse.objects.aggregate(
                failing=Count("pk", filter=Q(sync_failing_since__isnull=False)),
                failures=Coalesce(Sum("sync_failures"), 0),
            )
            lag = catalog_lag()
        except DatabaseError:
            return  # the ingest metrics are still worth a scrape while the database is away
        yield GaugeMetricFamily(
            "canvas_warehouse_sync_failing_teams",
            "Teams whose catalog or views could not be synced (Django admin: Team warehouses).",
            value=totals["failing"],
        )
        yield CounterMetricFamily(
            "canvas_warehouse_sync_failures", "Failed syncs of a team's catalog or views.", value=totals["failures"]
        )
        yield GaugeMetricFamily(
            "canvas_warehouse_sync_lag_events",
            "Events the catalog has not counted: ids past its watermark, queued backfills, failing teams' backlogs.",
            value=lag.events,
        )
        yield GaugeMetricFamily(
            "canvas_warehouse_sync_lag_seconds",
            "Age of the oldest stored event the catalog has not counted yet (0 when caught up).",
            value=lag.seconds,
        )


_WAREHOUSE_REGISTRY = CollectorRegistry(auto_describe=False)
_WAREHOUSE_REGISTRY.register(WarehouseSyncCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint. With METRICS_TOKEN set it asks for `Authorization: Bearer <token>`."""
    expected = settings.METRICS_TOKEN
    if expected and not hmac.compare_digest(request.META.get("HTTP_AUTHORIZATION", ""), f"Bearer {expected}"):
        return HttpResponseForbidden("metrics token required\n")
    flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = PROCESS_REGISTRY
    body = generate_latest(registry) + generate_latest(_WAREHOUSE_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
