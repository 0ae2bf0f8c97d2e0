"""Request ids, JSON logs and Prometheus metrics."""

import json
import logging
import os
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from canvas.observability import CanvasJsonFormatter, RequestIdFilter, TokenScrubbingFilter, request_id, scrub
from chaos.processes import wait_until
from events import metrics
from events.tokens import secret

pytestmark = pytest.mark.django_db


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_response_carries_a_request_id_and_keeps_a_plain_incoming_one(client):
    generated = client.get("/healthz")["X-Request-ID"]
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-1234"})["X-Request-ID"]
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})["X-Request-ID"]

    assert len(generated) == 32
    assert kept == "lb-1234"
    assert replaced != "bad id\twith spaces"


def test_log_lines_are_json_with_the_request_id():
    record = logging.LogRecord("events.ingest.views", logging.WARNING, __file__, 1, "refused %s", ("x",), None)
    token = request_id.set("abc123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)

    line = json.loads(CanvasJsonFormatter().format(record))

    assert line["request_id"] == "abc123"
    assert line["message"] == "refused x"
    assert line["level"] == "WARNING"
    assert line["logger"] == "events.ingest.views"


def _scraped(client) -> dict[tuple, float]:
    """/metrics as a scraper reads it: {(sample name, sorted labels): value}."""
    page = client.get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def test_metrics_count_accepted_and_refused_events_and_time_requests(client, post_event, acme_token, doc_event_body):
    _, plaintext = acme_token
    stored = ("canvas_events_accepted_total", (("endpoint", "/v1/event"), ("outcome", "stored")))
    refused = ("canvas_events_refused_total", (("endpoint", "/v1/event"), ("reason", "invalid_json")))
    timed = ("canvas_ingest_request_seconds_count", (("endpoint", "/v1/event"),))
    before = _scraped(client)

    post_event(doc_event_body, token=plaintext)
    post_event(b"{nope", token=plaintext)

    # A scrape writes out what this process counted a moment ago: nothing waits for the next flush.
    after = _scraped(client)
    assert after[stored] == before.get(stored, 0) + 1
    assert after[refused] == before.get(refused, 0) + 1
    assert after[timed] == before.get(timed, 0) + 2
    assert any(name == "canvas_group_commit_rows_count" for name, _ in after)


def test_counts_reach_prometheus_without_a_scrape(post_event, acme_token, doc_event_body):
    """Another worker's scrape reads this process's values without flushing them: the background flush writes them
    (every FLUSH_SECONDS; waited for generously, as a busy machine may keep the flusher from running)."""
    _, plaintext = acme_token
    labels = {"endpoint": "/v1/event", "outcome": "stored"}
    before = _sample("canvas_events_accepted_total", **labels)

    post_event(doc_event_body, token=plaintext)

    wait_until(lambda: _sample("canvas_events_accepted_total", **labels) != before, timeout=30, what="the flush")
    assert _sample("canvas_events_accepted_total", **labels) == before + 1


def test_kept_observations_fall_into_the_buckets_prometheus_itself_would_choose():
    registry = CollectorRegistry()
    buckets = (0.001, 0.0025, 0.005, 1)
    kept = Histogram("kept_seconds", "kept", ["endpoint"], buckets=buckets, registry=registry)
    direct = Histogram("direct_seconds", "direct", ["endpoint"], buckets=buckets, registry=registry)
    tally = metrics.Tally()
    # On each bound, either side of it, and past the last one.
    values = [0.0, 0.0009, 0.001, 0.0011, 0.0025, 0.0049, 0.005, 0.7, 1, 1.5, 30]

    for value in values:
        with tally.lock:
            tally.observe(kept, ("/v1/event",), value)
        direct.labels("/v1/event").observe(value)
    tally.flush()

    def family(name: str) -> list:
        (metric,) = (m for m in registry.collect() if m.name == name)
        return [
            (s.name.removeprefix(name), s.labels, s.value) for s in metric.samples if not s.name.endswith("_created")
        ]

    assert family("kept_seconds") == family("direct_seconds")
    assert registry.get_sample_value("kept_seconds_count", {"endpoint": "/v1/event"}) == len(values)


def test_counts_added_from_many_threads_while_flushing_are_all_written():
    registry = CollectorRegistry()
    counter = Counter("kept_total", "kept", ["outcome"], registry=registry)
    tally = metrics.Tally()

    def count(_):
        for n in range(1000):
            with tally.lock:
                tally.add(counter, ("stored",), 1)
            if n % 100 == 0:
                tally.flush()  # racing the other threads' adds, as the background flush does

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(count, range(8)))
    tally.flush()

    assert registry.get_sample_value("kept_total", {"outcome": "stored"}) == 8000


def test_metrics_can_require_a_bearer_token(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_a_forked_worker_starts_with_nothing_counted_and_a_lock_of_its_own():
    """gunicorn forks its workers from the master: whatever the master counted, or a lock one of its threads held
    at that moment, must not come along."""
    counter = Counter("forked_total", "forked", ["outcome"], registry=CollectorRegistry())
    tally = metrics.Tally()
    with tally.lock:
        tally.add(counter, ("stored",), 1)
        pid = os.fork()  # with the lock held, as a thread of the master might hold it
        if pid == 0:
            fresh = tally.lock.acquire(timeout=1) and tally.counts == {} and tally.flusher is None
            os._exit(0 if fresh else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0


def _handlers_of_every_logger() -> list[tuple[str, logging.Handler]]:
    """Every handler that writes, on any logger (libraries' NullHandlers and pytest's capturing ones left out)."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict))]
    return [
        (logger.name, handler)
        for logger in loggers
        for handler in logger.handlers
        if not isinstance(handler, logging.NullHandler) and not type(handler).__module__.startswith("_pytest")
    ]


def test_every_log_handler_hides_tokens():
    handlers = _handlers_of_every_logger()

    assert handlers, "no handler at all: the check would prove nothing"
    unfiltered = [
        (name, handler)
        for name, handler in handlers
        if not any(isinstance(f, TokenScrubbingFilter) for f in handler.filters)
        and not name.startswith("gunicorn.")  # configured by gunicorn's logger_class: test_token_secrecy
    ]
    assert unfiltered == []


def test_a_log_record_loses_its_tokens_in_message_traceback_and_extra_fields():
    token = secret.generate()
    try:
        raise ValueError(f"bad value {token}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Bad Request: %s", (token,), exc_info)
    record.request = f"<WSGIRequest: GET '/v1/event?token={token}'>"
    record.status_code = 400
    RequestIdFilter().filter(record)

    assert TokenScrubbingFilter().filter(record)
    lines = [CanvasJsonFormatter().format(record), logging.Formatter("%(message)s %(request)s").format(record)]

    assert all(token not in line for line in lines)
    assert all(
        secret.hint(token).encode("unicode_escape").decode() in line or secret.hint(token) in line for line in lines
    )
    assert json.loads(lines[0])["status_code"] == 400


def test_a_log_call_with_a_bad_format_still_loses_its_token():
    token = secret.generate()
    record = logging.LogRecord("events.ingest.views", logging.WARNING, __file__, 1, "refused %s %s", (token,), None)

    TokenScrubbingFilter().filter(record)

    assert token not in logging.Formatter("%(message)s").format(record)


def test_a_logged_invitation_link_keeps_its_path_and_loses_its_secret():
    link = secrets.token_urlsafe(32)
    access_line = f'127.0.0.1 - - "GET /invitations/{link}/ HTTP/1.1" 302 0 "-" "Mozilla/5.0"'
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%s", (access_line,), None)

    TokenScrubbingFilter().filter(record)

    line = logging.Formatter("%(message)s").format(record)
    assert link not in line
    assert '"GET /invitations/…/ HTTP/1.1" 302' in line
    assert scrub("POST /invitations/accept/ 302") == "POST /invitations/accept/ 302"  # not a secret
