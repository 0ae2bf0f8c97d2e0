"""Request ids, JSON logs and Prometheus metrics."""

import json
import logging

import pytest
from prometheus_client import REGISTRY

from canvas.observability import CanvasJsonFormatter, RequestIdFilter, request_id

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
    record = logging.LogRecord("events.api", logging.WARNING, __file__, 1, "refused %s", ("x",), None)
    token = request_id.set("abc123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)

    line = json.loads(CanvasJsonFormatter().format(record))

    assert line["request_id"] == "abc123"
    assert line["message"] == "refused x"
    assert line["level"] == "WARNING"
    assert line["logger"] == "events.api"


def test_metrics_count_accepted_and_refused_events_and_time_requests(client, post_event, acme_token, doc_event_body):
    _, plaintext = acme_token
    stored = _sample("canvas_events_accepted_total", endpoint="/v1/event", outcome="stored")
    refused = _sample("canvas_events_refused_total", endpoint="/v1/event", reason="invalid_json")
    timed = _sample("canvas_ingest_request_seconds_count", endpoint="/v1/event")

    post_event(doc_event_body, token=plaintext)
    post_event(b"{nope", token=plaintext)

    assert _sample("canvas_events_accepted_total", endpoint="/v1/event", outcome="stored") == stored + 1
    assert _sample("canvas_events_refused_total", endpoint="/v1/event", reason="invalid_json") == refused + 1
    assert _sample("canvas_ingest_request_seconds_count", endpoint="/v1/event") == timed + 2
    page = client.get("/metrics").content.decode()
    assert "canvas_events_accepted_total" in page
    assert "canvas_group_commit_rows" in page


def test_metrics_can_require_a_bearer_token(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200
