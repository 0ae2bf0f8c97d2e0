"""The fast lane answers an ordinary POST /v1/event exactly as the DRF view would, and hands everything else to it.

Each test sends the same request to the production WSGI application (canvas.wsgi.application: the lane in front
of Django) and to Django alone, and compares the two answers. Django's request_started signal tells which of
the two answered: the lane never sends it.
"""

import gzip
import io
import sys
import time
from dataclasses import dataclass, field

import orjson
import psycopg
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, connection, connections

from canvas.wsgi import application, django_application
from events.ingest.group_commit import connection_was_cut
from events.ingest.wsgi import FastLane
from events.models import Event, RejectedEvent

pytestmark = pytest.mark.django_db(transaction=True)

# Headers whose values differ from one request to the next, whoever answers.
VARYING = {"X-Request-ID", "RateLimit-Remaining", "RateLimit-Reset", "Content-Length"}
STORED_COLUMNS = ["team_id", "token_id", "type", "event", "properties", "timestamp", "original_timestamp", "user_id"]


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    by_django: bool
    header_names: list = field(default_factory=list)

    def json(self):
        return orjson.loads(self.body)


def wsgi_post(app, body: bytes, *, token: str | None, path="/v1/event", query="", stream=None, **meta) -> Answer:
    """POST through a WSGI application as gunicorn calls it."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": stream or io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **({"HTTP_X_AUTH_TOKEN": token} if token is not None else {}),
        **meta,
    }
    started = []

    def note(**kwargs):
        started.append(True)

    request_started.connect(note)
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=int(status.split()[0]), headers=headers)

    try:
        chunks = application_call(app, environ, start_response)
    finally:
        request_started.disconnect(note)
    connection.close()  # Django's handler closes its connection at the end of a request; do the same for the lane
    return Answer(
        answer["status"],
        dict(answer["headers"]),
        chunks,
        by_django=bool(started),
        header_names=sorted(name for name, _ in answer["headers"]),
    )


def application_call(app, environ, start_response) -> bytes:
    result = app(environ, start_response)
    try:
        return b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()


def event(message_id: str, **changes) -> bytes:
    document = {
        "version": 1,
        "type": "event",
        "event": "Purchased an Item",
        "properties": {"revenue": "39.95", "items": [{"sku": "a-1"}]},
        "timestamp": "2024-05-01T10:00:00.000Z",
        "messageId": message_id,
        **changes,
    }
    return orjson.dumps({k: v for k, v in document.items() if v is not None})


def assert_same_answer(lane: Answer, view: Answer) -> None:
    assert lane.status == view.status
    assert lane.header_names == view.header_names
    assert {k: v for k, v in lane.headers.items() if k not in VARYING} == {
        k: v for k, v in view.headers.items() if k not in VARYING
    }


def test_an_ordinary_event_is_stored_by_the_lane_as_the_view_stores_it(acme_token):
    token, plaintext = acme_token

    lane = wsgi_post(application, event("by-lane"), token=plaintext)
    view = wsgi_post(django_application, event("by-view"), token=plaintext)

    assert not lane.by_django and view.by_django
    assert_same_answer(lane, view)
    assert lane.json() == {"id": lane.json()["id"], "duplicate": False}
    by_lane, by_view = (Event.objects.values(*STORED_COLUMNS).get(message_id=m) for m in ("by-lane", "by-view"))
    assert by_lane == by_view
    assert by_lane["token_id"] == token.id


def test_a_resent_event_is_a_duplicate_through_the_lane(acme_token):
    _, plaintext = acme_token
    first = wsgi_post(application, event("twice"), token=plaintext)
    second = wsgi_post(application, event("twice"), token=plaintext)

    assert not second.by_django
    assert second.json() == {"id": first.json()["id"], "duplicate": True}
    assert Event.objects.filter(message_id="twice").count() == 1


def test_the_lane_keeps_the_clients_request_id_and_the_rate_limit_headers(acme_token, settings):
    _, plaintext = acme_token
    settings.EVENTS_RATE_LIMIT_PER_SECOND = 50

    lane = wsgi_post(application, event("with-id"), token=plaintext, HTTP_X_REQUEST_ID="client-7f3a")

    assert not lane.by_django
    assert lane.headers["X-Request-ID"] == "client-7f3a"
    assert lane.headers["RateLimit-Limit"] == "50"
    assert 0 <= int(lane.headers["RateLimit-Remaining"]) < 50


# Requests the lane does not answer: each reaches the view, which answers exactly as without the lane.
NOT_ORDINARY = {
    "invalid JSON": dict(body=b'{"version": 1,'),
    "invalid event": dict(body=event("bad", event=None)),
    "NUL in a property": dict(body=event("nul", properties={"note": "a\u0000b"})),
    "unknown token": dict(token="cnv_" + "A" * 38),
    "no token": dict(token=None),
    "form body": dict(meta={"CONTENT_TYPE": "application/x-www-form-urlencoded"}),
    "corrupt gzip body": dict(body=b"\x1f\x8b not gzip", meta={"HTTP_CONTENT_ENCODING": "gzip"}),
    "brotli body": dict(meta={"HTTP_CONTENT_ENCODING": "br"}),
    "dry run": dict(query="dry_run=1"),
    "too large": dict(body=event("large", properties={"blob": "x" * 40_000})),
    "host not allowed": dict(meta={"HTTP_HOST": "evil.example"}),
    "chunked": dict(meta={"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}),
}


@pytest.mark.parametrize("case", NOT_ORDINARY.values(), ids=NOT_ORDINARY.keys())
def test_a_request_that_is_not_ordinary_is_answered_by_the_view(acme_token, case):
    _, plaintext = acme_token
    body = case.get("body", event("unused"))
    token = case.get("token", plaintext)

    lane = wsgi_post(application, body, token=token, query=case.get("query", ""), **case.get("meta", {}))
    view = wsgi_post(django_application, body, token=token, query=case.get("query", ""), **case.get("meta", {}))

    assert lane.by_django
    assert_same_answer(lane, view)
    assert lane.body == view.body or lane.status == 200  # a dry run is reported alike, with its own ids


def test_a_gzip_event_is_expanded_and_stored_by_the_lane(acme_token):
    _, plaintext = acme_token
    lane = wsgi_post(application, gzip.compress(event("gzipped")), token=plaintext, HTTP_CONTENT_ENCODING="gzip")

    assert not lane.by_django and lane.status == 200
    assert Event.objects.get(message_id="gzipped").properties == {"revenue": "39.95", "items": [{"sku": "a-1"}]}


def test_a_refused_event_is_logged_once(acme_token):
    token, plaintext = acme_token
    lane = wsgi_post(application, event("refused", timestamp="yesterday"), token=plaintext)

    assert lane.status == 400 and lane.by_django
    assert RejectedEvent.objects.filter(team=token.team).count() == 1


def test_past_the_rate_limit_the_view_answers_429(acme_token, settings):
    _, plaintext = acme_token
    settings.EVENTS_RATE_LIMIT_PER_SECOND = 2
    answers = [wsgi_post(application, event(f"limited-{i}"), token=plaintext) for i in range(4)]

    refused = [a for a in answers if a.status == 429]
    assert refused and all(a.by_django and a.headers["Retry-After"] for a in refused)
    assert Event.objects.filter(message_id__startswith="limited-").count() == 4 - len(refused)


class StalledBody:
    """A body whose bytes stop coming: the socket read times out, as on a stalled connection."""

    def read(self, *args):
        raise TimeoutError

    readline = read


def test_a_body_that_stalls_is_refused_by_the_view_with_408(acme_token):
    _, plaintext = acme_token
    lane = wsgi_post(application, event("stalled"), token=plaintext, stream=StalledBody())

    assert lane.by_django and lane.status == 408
    assert lane.json()["error"]["code"] == "request_timeout"


class OpenSocket:
    """A body read straight off a kept-alive connection (as runserver hands it over, a buffered socket file):
    a read of more bytes than the body has left would wait for bytes that never come."""

    def __init__(self, body: bytes) -> None:
        self.left = body

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > len(self.left):
            raise AssertionError("read past the body: on a real socket this waits for ever")
        chunk, self.left = self.left[:size], self.left[size:]
        return chunk

    readline = read


def test_the_lane_reads_no_further_than_content_length(acme_token):
    _, plaintext = acme_token
    body = event("kept-alive")

    lane = wsgi_post(application, body, token=plaintext, stream=OpenSocket(body))

    assert not lane.by_django and lane.status == 200


def test_behind_a_tls_proxy_the_lane_sends_the_views_security_headers(acme_token, settings):
    _, plaintext = acme_token
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    django_app = WSGIHandler()  # Django's middleware reads these settings when it is built
    lane_app = FastLane(django_app)

    plain_http = wsgi_post(lane_app, event("over-http"), token=plaintext)
    lane = wsgi_post(lane_app, event("over-tls"), token=plaintext, HTTP_X_FORWARDED_PROTO="https")
    view = wsgi_post(django_app, event("over-tls-view"), token=plaintext, HTTP_X_FORWARDED_PROTO="https")

    assert plain_http.by_django and plain_http.status == 301
    assert not lane.by_django
    assert_same_answer(lane, view)
    assert lane.headers["Strict-Transport-Security"].startswith("max-age=3600")


def test_the_lane_can_be_switched_off(acme_token, settings):
    _, plaintext = acme_token
    settings.EVENTS_FAST_LANE = False

    answer = wsgi_post(FastLane(django_application), event("no-lane"), token=plaintext)

    assert answer.by_django and answer.status == 200


def test_the_running_lane_follows_a_setting_changed_after_it_started(acme_token, settings):
    """The lane reads its settings once, not on every request: a change must still reach the lane that is serving
    (the app server's, built at import), as override_settings and the `settings` fixture make one."""
    _, plaintext = acme_token
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.EVENTS_GROUP_COMMIT = False

    without_group_commit = wsgi_post(application, event("no-group-commit"), token=plaintext)
    settings.EVENTS_GROUP_COMMIT = True
    over_tls = wsgi_post(application, event("over-tls-later"), token=plaintext, HTTP_X_FORWARDED_PROTO="https")

    assert without_group_commit.by_django and without_group_commit.status == 200  # the view writes the row itself
    assert not over_tls.by_django and over_tls.status == 200
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=3600")


def track(message_id: str, **changes) -> dict:
    return {
        "type": "track",
        "userId": "u-1",
        "event": "Item Viewed",
        "properties": {"n": 1},
        "messageId": message_id,
        "timestamp": "2024-05-01T10:00:00Z",
        **changes,
    }


def batch(*items) -> bytes:
    return orjson.dumps({"batch": list(items), "sentAt": "2024-05-01T10:00:01Z"})


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/batch/", "/v1/import"])
def test_an_ordinary_batch_is_stored_by_the_lane_as_the_view_stores_it(acme_token, path):
    _, plaintext = acme_token

    lane = wsgi_post(application, batch(track("l-1"), track("l-2")), token=plaintext, path=path)
    view = wsgi_post(django_application, batch(track("v-1"), track("v-2")), token=plaintext, path=path)

    assert not lane.by_django and view.by_django
    assert_same_answer(lane, view)
    receipt = lane.json()
    assert (receipt["stored"], receipt["duplicates"], receipt["rejected"]) == (2, 0, 0)
    assert [r["id"] for r in receipt["results"]] == list(
        Event.objects.filter(message_id__startswith="l-").order_by("message_id").values_list("id", flat=True)
    )
    # The timestamp is corrected by the clock skew (sentAt against the time received), which differs by request.
    columns = [*(c for c in STORED_COLUMNS if c != "timestamp"), "context", "extra"]
    by_lane, by_view = (Event.objects.values(*columns).get(message_id=m) for m in ("l-1", "v-1"))
    assert by_lane == by_view


def test_a_resent_batch_through_the_lane_answers_duplicates(acme_token):
    _, plaintext = acme_token
    first = wsgi_post(application, batch(track("again-1")), token=plaintext, path="/v1/batch").json()
    again = wsgi_post(application, batch(track("again-1"), track("again-2")), token=plaintext, path="/v1/batch")

    assert not again.by_django
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "stored"]
    assert again.json()["results"][0]["id"] == first["results"][0]["id"]
    assert (again.json()["stored"], again.json()["duplicates"], again.json()["rejected"]) == (1, 1, 0)


def test_a_gzip_batch_is_stored_by_the_lane(acme_token):
    _, plaintext = acme_token
    lane = wsgi_post(
        application,
        gzip.compress(batch(track("gz-1"))),
        token=plaintext,
        path="/v1/batch",
        HTTP_CONTENT_ENCODING="gzip",
    )

    assert not lane.by_django and lane.json()["stored"] == 1


def test_a_batch_with_a_refused_event_is_answered_by_the_view(acme_token):
    token, plaintext = acme_token
    body = batch(track("fine"), track("no-name", event=None))

    lane = wsgi_post(application, body, token=plaintext, path="/v1/batch")

    assert lane.by_django and lane.status == 400
    assert [r["status"] for r in lane.json()["results"]] == ["stored", "rejected"]
    assert RejectedEvent.objects.filter(team=token.team).count() == 1
    assert Event.objects.filter(message_id="fine").count() == 1


def test_a_malformed_batch_is_answered_by_the_view(acme_token):
    _, plaintext = acme_token
    body = orjson.dumps({"batch": "not a list"})

    lane = wsgi_post(application, body, token=plaintext, path="/v1/batch")
    view = wsgi_post(django_application, body, token=plaintext, path="/v1/batch")

    assert lane.by_django
    assert (lane.status, lane.body) == (view.status, view.body)


def test_a_failure_the_lane_does_not_expect_is_left_to_the_view(acme_token, monkeypatch):
    """A fault nothing here can produce on demand, injected once: the lane stored nothing, so the view's own
    attempt is the only write."""
    from events.ingest import wsgi

    _, plaintext = acme_token
    real_store_batch = wsgi.store_batch

    def fails_once(rows):
        monkeypatch.setattr(wsgi, "store_batch", real_store_batch)
        raise RuntimeError("injected")

    monkeypatch.setattr(wsgi, "store_batch", fails_once)

    answer = wsgi_post(application, batch(track("after-fault")), token=plaintext, path="/v1/batch")

    assert answer.by_django and answer.status == 200
    assert Event.objects.filter(message_id="after-fault").count() == 1


@pytest.fixture
def kept_connection(acme_token, monkeypatch):
    """After one batch (so the token is known to this process), this thread's connection, kept open between
    requests as in production (CONN_MAX_AGE; the tests run with 0). Returns the token's plaintext."""
    _, plaintext = acme_token
    assert wsgi_post(application, batch(track("warm")), token=plaintext, path="/v1/batch").status == 200
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.ensure_connection()
    return plaintext


def test_a_batch_checks_its_connection_without_a_query(kept_connection, monkeypatch):
    """Django's health check is a SELECT 1 round trip before each request's first query; the lane looks at the idle
    connection's socket instead."""
    plaintext = kept_connection
    round_trips = []
    database = connections[DEFAULT_DB_ALIAS]
    real_is_usable = database.is_usable
    monkeypatch.setattr(database, "is_usable", lambda: round_trips.append(1) or real_is_usable())

    answer = wsgi_post(application, batch(track("checked")), token=plaintext, path="/v1/batch")

    assert not answer.by_django and answer.status == 200
    assert round_trips == []
    assert Event.objects.filter(message_id="checked").count() == 1


def test_a_batch_on_a_connection_the_server_cut_is_stored_on_a_new_one(kept_connection):
    plaintext = kept_connection
    cut = connection.connection
    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
    with psycopg.connect(**params, autocommit=True) as other:  # as an administrator would, from elsewhere
        other.execute("SELECT pg_terminate_backend(%s)", (cut.info.backend_pid,))
    for _ in range(100):  # the server's goodbye reaches the idle socket
        if connection_was_cut(cut):
            break
        time.sleep(0.01)

    answer = wsgi_post(application, batch(track("after-cut")), token=plaintext, path="/v1/batch")

    assert not answer.by_django and answer.status == 200
    assert cut.closed
    assert Event.objects.filter(message_id="after-cut").count() == 1
