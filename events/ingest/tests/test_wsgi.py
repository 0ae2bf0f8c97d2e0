"""The WSGI front end (events.ingest.wsgi): which requests it takes, and that it answers them as Django would.

The HTTP contract itself (answers, bodies, the refused-events log) runs through both adapters in the other test
modules (see conftest.py). Here each request goes to the production WSGI application (canvas.wsgi.application:
the front end in front of Django) as gunicorn calls it, and where it matters to Django alone as well: the two
answers must be alike, down to the headers Django's middleware adds. Django's request_started signal says who
answered: the front end does not send it.
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
from django.db import connection

from canvas.wsgi import application, django_application
from events.ingest import pipeline
from events.ingest.group_commit import connection_was_cut
from events.ingest.wsgi import IngestFrontEnd
from events.models import Event, RejectedEvent

pytestmark = pytest.mark.django_db(transaction=True)

# Headers whose values differ from one request to the next, whoever answers.
VARYING = {"X-Request-ID", "RateLimit-Remaining", "RateLimit-Reset", "Content-Length"}


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
    senders = []

    def note(sender, **kwargs):
        senders.append(sender)

    request_started.connect(note)
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=int(status.split()[0]), headers=headers)

    try:
        result = app(environ, start_response)
        try:
            chunks = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
    finally:
        request_started.disconnect(note)
    return Answer(
        answer["status"],
        dict(answer["headers"]),
        chunks,
        by_django=bool(senders),
        header_names=sorted(name for name, _ in answer["headers"]),
    )


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


def track(message_id: str, **changes) -> dict:
    return {"type": "track", "userId": "u-1", "event": "Item Viewed", "messageId": message_id, **changes}


def batch(*items) -> bytes:
    return orjson.dumps({"batch": list(items), "sentAt": "2024-05-01T10:00:01Z"})


def assert_same_answer(front_end: Answer, django: Answer) -> None:
    assert front_end.status == django.status
    assert front_end.header_names == django.header_names
    assert {k: v for k, v in front_end.headers.items() if k not in VARYING} == {
        k: v for k, v in django.headers.items() if k not in VARYING
    }


def test_the_production_application_is_the_front_end_in_front_of_django():
    assert isinstance(application, IngestFrontEnd)
    assert application.django_application is django_application


# Each request twice, through the front end and through Django alone: {name: (path, body, token, query, meta)}.
ANSWERED_ALIKE = {
    "an event": dict(body=event("{n}")),
    "a Segment message": dict(path="/v1/identify", body=orjson.dumps({"userId": "u-{n}"})),
    "a batch": dict(path="/v1/batch", body=batch(track("{n}-1"), track("{n}-2"))),
    "a batch with a refused event": dict(path="/v1/import", body=batch(track("{n}"), track("bad-{n}", event=None))),
    "invalid JSON": dict(body=b'{"version": 1,'),
    "an invalid event": dict(body=event("{n}", event=None)),
    "NUL in a property": dict(body=event("{n}", properties={"note": "a\u0000b"})),
    "an unknown token": dict(token="cnv_" + "A" * 38),
    "no token": dict(token=None),
    "a form body": dict(meta={"CONTENT_TYPE": "application/x-www-form-urlencoded"}),
    "a corrupt gzip body": dict(body=b"\x1f\x8b not gzip", meta={"HTTP_CONTENT_ENCODING": "gzip"}),
    "a brotli body": dict(meta={"HTTP_CONTENT_ENCODING": "br"}),
    "a dry run": dict(query="dry_run=1"),
    "a body too large": dict(body=event("{n}", properties={"blob": "x" * 40_000})),
    "a chunked body": dict(meta={"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}),
    "a batch of too many events": dict(path="/v1/batch", body=orjson.dumps({"batch": [{}] * 2501})),
}


@pytest.mark.parametrize("case", ANSWERED_ALIKE.values(), ids=ANSWERED_ALIKE.keys())
def test_the_front_end_answers_a_post_itself_as_django_would(acme_token, case):
    _, plaintext = acme_token
    token = case.get("token", plaintext)
    path, query, meta = case.get("path", "/v1/event"), case.get("query", ""), case.get("meta", {})

    def sent(n: str) -> bytes:
        return case.get("body", event("unused")).replace(b"{n}", n.encode())

    front_end = wsgi_post(application, sent("front-end"), token=token, path=path, query=query, **meta)
    django = wsgi_post(django_application, sent("django"), token=token, path=path, query=query, **meta)

    assert not front_end.by_django and django.by_django
    assert_same_answer(front_end, django)
    if front_end.status >= 400 and "results" not in front_end.json():
        assert front_end.body == django.body
    stored = [Event.objects.filter(message_id__contains=who).count() for who in ("front-end", "django")]
    assert stored[0] == stored[1]


PASSED_ON = {
    "a host Django does not allow": dict(meta={"HTTP_HOST": "evil.example"}),
    "a GET": dict(meta={"REQUEST_METHOD": "GET"}),
    "an unknown path": dict(path="/v1/events"),
    "the docs": dict(path="/v1/openapi.json", meta={"REQUEST_METHOD": "GET"}),
}


@pytest.mark.parametrize("case", PASSED_ON.values(), ids=PASSED_ON.keys())
def test_what_the_front_end_does_not_take_is_passed_on_to_django(acme_token, case):
    _, plaintext = acme_token
    path, meta = case.get("path", "/v1/event"), case.get("meta", {})

    front_end = wsgi_post(application, event("passed-on"), token=plaintext, path=path, **meta)
    django = wsgi_post(django_application, event("passed-on"), token=plaintext, path=path, **meta)

    assert front_end.by_django
    assert (front_end.status, front_end.body) == (django.status, django.body)


def test_the_front_end_can_be_switched_off(acme_token, settings):
    _, plaintext = acme_token
    settings.EVENTS_FRONT_END = False

    answer = wsgi_post(application, event("no-front-end"), token=plaintext)

    assert answer.by_django and answer.status == 200


def test_a_gzip_event_is_expanded_and_stored_by_the_front_end(acme_token):
    _, plaintext = acme_token
    answer = wsgi_post(application, gzip.compress(event("gzipped")), token=plaintext, HTTP_CONTENT_ENCODING="gzip")

    assert not answer.by_django and answer.status == 200
    assert Event.objects.get(message_id="gzipped").properties == {"revenue": "39.95", "items": [{"sku": "a-1"}]}


class StalledBody:
    """A body whose bytes stop coming: the socket read times out, as on a stalled connection."""

    def read(self, *args):
        raise TimeoutError

    readline = read


def test_a_body_that_stalls_is_refused_by_the_front_end_with_408_and_logged_once(acme_token):
    token, plaintext = acme_token
    answer = wsgi_post(application, event("stalled"), token=plaintext, stream=StalledBody())

    assert not answer.by_django and answer.status == 408
    assert answer.json()["error"]["code"] == "request_timeout"
    assert RejectedEvent.objects.get(team=token.team).status == 408


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


def test_the_front_end_reads_no_further_than_content_length(acme_token):
    _, plaintext = acme_token
    body = event("kept-alive")

    answer = wsgi_post(application, body, token=plaintext, stream=OpenSocket(body))

    assert not answer.by_django and answer.status == 200


def test_behind_a_tls_proxy_the_front_end_sends_the_headers_of_djangos_security_middleware(acme_token, settings):
    _, plaintext = acme_token
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    django_app = WSGIHandler()  # Django's middleware reads these settings when it is built
    front_end_app = IngestFrontEnd(django_app)

    plain_http = wsgi_post(front_end_app, event("over-http"), token=plaintext)
    front_end = wsgi_post(front_end_app, event("over-tls"), token=plaintext, HTTP_X_FORWARDED_PROTO="https")
    django = wsgi_post(django_app, event("over-tls-django"), token=plaintext, HTTP_X_FORWARDED_PROTO="https")

    assert plain_http.by_django and plain_http.status == 301
    assert not front_end.by_django
    assert_same_answer(front_end, django)
    assert front_end.headers["Strict-Transport-Security"].startswith("max-age=3600")


def test_the_running_front_end_follows_a_setting_changed_after_it_started(acme_token, settings):
    """The front end reads Django's headers once, not on every request: a change must still reach the front end
    that is serving (the app server's, built at import), as override_settings and the `settings` fixture make one."""
    _, plaintext = acme_token
    assert "Strict-Transport-Security" not in wsgi_post(application, event("before"), token=plaintext).headers
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    over_tls = wsgi_post(application, event("over-tls-later"), token=plaintext, HTTP_X_FORWARDED_PROTO="https")

    assert not over_tls.by_django and over_tls.status == 200
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=3600")


def test_an_unexpected_failure_is_a_500_in_the_one_shape_and_stores_nothing(acme_token, monkeypatch, caplog):
    """A fault nothing here can produce on demand, injected: whoever answers, the client reads the one error
    shape, and the log has the traceback."""
    _, plaintext = acme_token

    def fails(rows):
        raise RuntimeError("injected")

    monkeypatch.setattr(pipeline, "store_batch", fails)

    answers = [
        wsgi_post(app, batch(track(f"after-fault-{n}")), token=plaintext, path="/v1/batch")
        for n, app in enumerate([application, django_application])
    ]

    for answer in answers:
        assert answer.status == 500
        assert answer.json()["error"]["code"] == "internal_error"
    assert_same_answer(*answers)
    assert not Event.objects.filter(message_id__startswith="after-fault").exists()
    logged = [record for record in caplog.records if record.name == "events.ingest.pipeline"]
    assert len(logged) == 2 and all("RuntimeError: injected" in record.exc_text for record in logged)


@pytest.fixture
def kept_connection(acme_token, monkeypatch):
    """This thread's connection, opened by a first batch and kept open after it as in production (CONN_MAX_AGE;
    the tests run with 0). Returns the token's plaintext."""
    _, plaintext = acme_token
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    assert wsgi_post(application, batch(track("warm")), token=plaintext, path="/v1/batch").status == 200
    assert connection.connection is not None
    return plaintext


def test_a_batch_checks_its_kept_connection_without_a_query(kept_connection, monkeypatch):
    """Django's health check is a SELECT 1 round trip before a request's first query; the pipeline looks at the
    idle connection's socket instead."""
    plaintext = kept_connection
    round_trips = []
    real_is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: round_trips.append(1) or real_is_usable())

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
