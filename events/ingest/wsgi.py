"""The fast lane: ordinary `POST /v1/event` and `POST /v1/batch` requests answered in front of Django's machinery.

Measured in-process on this machine, Django's handler, its middleware chain and DRF's request cycle cost about
three times what a single event's own work costs (authentication, parsing, validation, the group commit). The
lane is a WSGI wrapper (canvas/wsgi.py) that takes a request only when everything about it is ordinary and runs
the same functions as the DRF views (events.ingest.views), in the same order of consequence: `authenticate_token`,
`read_body`, `parse_json`, validation, the rate limit, then storage.

It answers only what storing leads to: 200 (stored or duplicate) and 503 when the database cannot take the
events. Anything else (an unusual header, a refused token or event, the rate limit reached, a dry run) goes to
Django with the body the lane already read, so every refusal keeps one home,
`events.ingest.views`, with its refused-events log. tests/test_wsgi.py holds the lane to the views' answers.
"""

import io
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial

import orjson
from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.core.signals import setting_changed
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)
from django.http.request import split_domain_port, validate_host

from canvas.observability import request_id, request_id_for
from events.ingest import errors
from events.ingest.body import read_body
from events.ingest.errors import ApiError
from events.ingest.group_commit import Arrival, CommitterUnavailable, committer, connection_was_cut
from events.ingest.storage import event_row, store_batch
from events.ingest.throttling import is_refused, rate_limit_headers, usage_of
from events.ingest.validation import InvalidJSON, parse_json, validate_batch_item, validate_event
from events.ingest.views import (
    DATABASE_RETRY_AFTER_SECONDS,
    BatchIngestView,
    EventIngestView,
    batch_envelope,
    stored_receipt,
)
from events.metrics import record_answer
from events.tokens.authentication import authenticate_token, token_from_headers

Headers = Iterable[tuple[str, str]]


class _Detour(Exception):
    """The request is not ordinary: Django answers it."""


class _ReplayedError:
    """A request body that could not be read (it stalled, the connection broke, it expands past the limit):
    Django's view reads this instead and meets the same error, so it answers and logs it as it would have."""

    def __init__(self, error: ApiError) -> None:
        self.error = error

    def read(self, *args):
        raise self.error

    readline = read


def _unavailable(headers: Headers) -> tuple[int, dict, Headers]:
    code, message = errors.DATABASE_UNAVAILABLE
    return 503, errors.error_body(code, message), [*headers, ("Retry-After", str(DATABASE_RETRY_AFTER_SECONDS))]


def _store_event(token, document, received_at, *, arrival: Arrival | None) -> tuple[int, dict, Headers]:
    """EventIngestView.post, for a valid event."""
    if arrival is None:  # group commit is off: the view writes the row itself
        raise _Detour
    payload, problems = validate_event(document, received_at=received_at)
    if problems:
        raise _Detour
    headers = _admitted(token)
    row = event_row(team_id=token.team_id, token_id=token.id, payload=payload, received_at=received_at)
    try:
        stored = committer().submit(row, arrival=arrival)
    except CommitterUnavailable:
        return _unavailable(headers)
    except Exception:
        raise _Detour from None  # the row was not stored: the view tries again, and answers and logs what fails
    return 200, {"id": stored.id, "duplicate": stored.duplicate}, headers


def _store_batch(token, document, received_at) -> tuple[int, dict, Headers]:
    """BatchIngestView.post, for a batch whose every event is valid."""
    try:
        batch = batch_envelope(document, received_at=received_at)
    except ApiError:
        raise _Detour from None
    rows = []
    for index, item in enumerate(batch.items):
        payload, problems = validate_batch_item(item, index=index, received_at=received_at, batch=batch)
        if problems:
            raise _Detour  # the view stores the valid events, and answers and logs each refused one
        rows.append(event_row(team_id=token.team_id, token_id=token.id, payload=payload, received_at=received_at))
    headers = _admitted(token)
    _prepare_connection()
    try:
        stored = store_batch(rows)
    except (OperationalError, InterfaceError):
        return _unavailable(headers)
    except Exception:
        raise _Detour from None  # rolled back, nothing stored: the view tries again, and answers and logs what fails
    return 200, stored_receipt(stored), headers


def _prepare_connection() -> None:
    """This thread's connection, readied for a batch as Django readies it when a request starts (closed when too
    old or broken), but checked without a query. Django checks a reused connection before a request's first query
    with a SELECT 1 round trip (CONN_HEALTH_CHECKS), about 3% of a 100-event batch's server CPU; the lane checks it
    as the group committer checks its own (group_commit.connection_was_cut), with a system call that sees whether
    the server hung up on the idle connection. A cut connection is closed, and the batch's first query opens a new
    one."""
    database = _database()
    database.close_if_unusable_or_obsolete()  # close_old_connections(), for the one database the lane uses
    if database.connection is None or database.health_check_done:
        return
    if database.connection.closed or connection_was_cut(database.connection):
        database.close()
    else:
        database.health_check_done = True


_thread = threading.local()


def _database():
    """This thread's connection to the default database: connections[DEFAULT_DB_ALIAS], remembered per thread.

    Django keeps one DatabaseWrapper per thread and alias for the thread's life, in an asgiref Local whose every
    read asks asyncio for a running loop and catches the RuntimeError it raises in a thread without one: about
    1 us, measured in-process, where a threading.local attribute costs a twentieth of that."""
    try:
        return _thread.database
    except AttributeError:
        _thread.database = connections[DEFAULT_DB_ALIAS]
        return _thread.database


def _admitted(token) -> Headers:
    """Count the request against its token's rate limit; its RateLimit-* headers (none while the counter is
    unreachable)."""
    usage = usage_of(token.id, limit=_settings.rate_limit)
    if is_refused(usage):
        raise _Detour  # the view answers 429 (counting this request once more: the window is full anyway)
    return rate_limit_headers(usage).items() if usage is not None else []


ROUTES = {
    "/v1/event": (EventIngestView, _store_event),
    "/v1/event/": (EventIngestView, _store_event),
    "/v1/batch": (BatchIngestView, _store_batch),
    "/v1/batch/": (BatchIngestView, _store_batch),
    "/v1/import": (BatchIngestView, _store_batch),
}


class FastLane:
    def __init__(self, django_application) -> None:
        self.django_application = django_application
        self.enabled = settings.EVENTS_FAST_LANE and connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
        self.allowed_hosts = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
        self.headers = _common_headers()
        self.hosts: dict[str, bool] = {}  # Host header -> allowed, remembered

    def __call__(self, environ, start_response):
        route = ROUTES.get(environ.get("PATH_INFO"))
        if (
            route is not None
            and self.enabled
            and environ.get("REQUEST_METHOD") == "POST"
            and not environ.get("QUERY_STRING")
        ):
            view, store = route
            started = time.perf_counter()
            rid = request_id_for(environ)
            context = request_id.set(rid)
            db = _database()
            arrival = None
            if store is _store_event:
                # Announced to the group committer as it starts, so that the committer knows to wait for its row
                # (group_commit.Arrival).
                arrival = Arrival(committer()) if _settings.group_commit else None
                store = partial(_store_event, arrival=arrival)
            try:
                if db.in_atomic_block:  # only ever in a test; the views write on the caller's transaction then
                    raise _Detour
                status, data, headers = self._answer(environ, view, store)
            except _Detour:
                pass
            else:
                body = orjson.dumps(data)
                record_answer(endpoint=view.endpoint, status=status, data=data, seconds=time.perf_counter() - started)
                start_response(
                    _STATUS_LINES[status],
                    [
                        ("Content-Type", "application/json"),
                        *headers,
                        *self.headers,
                        *self._transport_security(environ),
                        ("Content-Length", str(len(body))),
                        ("X-Request-ID", rid),
                    ],
                )
                return [body]
            finally:
                if arrival is not None:
                    arrival.done()
                request_id.reset(context)
                if db.connection is not None:  # a batch's, or the once-a-minute last_used_at UPDATE's
                    # close_old_connections() for the one database the lane uses, without walking them all
                    db.close_if_unusable_or_obsolete()
        return self.django_application(environ, start_response)

    def _answer(self, environ, view, store) -> tuple[int, dict, Headers]:
        if not self._ordinary(environ, view.max_body_bytes):
            raise _Detour
        try:
            token = authenticate_token(token_from_headers(environ))
        except (ApiError, DatabaseError):
            raise _Detour from None
        # Bounded by Content-Length, as Django bounds it: a server that hands over the bare socket (runserver)
        # would otherwise have the read wait for bytes that never come.
        body = LimitedStream(environ["wsgi.input"], int(environ["CONTENT_LENGTH"]))
        try:
            raw = read_body(body, meta=environ, limit=view.max_body_bytes)
        except ApiError as error:
            environ["wsgi.input"] = _ReplayedError(error)
            raise _Detour from None
        try:
            # datetime.now(UTC) is timezone.now(), without a settings look-up (USE_TZ)
            return store(token, parse_json(raw), datetime.now(UTC))
        except (_Detour, InvalidJSON):
            # Django answers instead, and reads the body again, as expanded here.
            environ.update({"wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))})
            environ.pop("HTTP_CONTENT_ENCODING", None)
            raise _Detour from None

    def _ordinary(self, environ, limit: int) -> bool:
        """JSON with a length within the limit, to an allowed host, needing no HTTPS redirect."""
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit() or not 0 < int(length) <= limit:
            return False
        if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != "application/json":
            return False
        if environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower() not in ("identity", "", "gzip"):
            return False
        if "HTTP_TRANSFER_ENCODING" in environ or _settings.forwarded_host:
            return False
        if _settings.ssl_redirect and not _is_secure(environ):
            return False
        host = environ.get("HTTP_HOST", "")
        allowed = self.hosts.get(host)
        if allowed is None:
            domain, _port = split_domain_port(host)
            allowed = bool(domain) and validate_host(domain, self.allowed_hosts)
            if len(self.hosts) < 100:  # hosts a client makes up are judged each time, not remembered
                self.hosts[host] = allowed
        return allowed

    def _transport_security(self, environ) -> Headers:
        hsts = _settings.hsts
        return [hsts] if hsts is not None and _is_secure(environ) else []


def _is_secure(environ) -> bool:
    """HttpRequest.is_secure, on the WSGI environ."""
    if _settings.proxy_ssl_header:
        header, secure_value = _settings.proxy_ssl_header
        value = environ.get(header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


def _common_headers() -> Headers:
    """The headers Django's middleware and DRF add to the views' answers (tests compare the two)."""
    headers = [("Allow", ", ".join(EventIngestView().allowed_methods))]
    if settings.X_FRAME_OPTIONS:
        headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers


_STATUS_LINES = {200: "200 OK", 503: "503 Service Unavailable"}


class _Settings:
    """The settings the lane reads on every request, read once. `settings.X` goes through LazySettings'
    Python-level __getattribute__: the lane's seven reads were a twentieth of its own CPU per /v1/event. Read
    again whenever a setting changes (override_settings and pytest-django's `settings` fixture say so)."""

    def __init__(self) -> None:
        self.read()

    def read(self, **_) -> None:
        self.group_commit = settings.EVENTS_GROUP_COMMIT
        self.rate_limit = settings.EVENTS_RATE_LIMIT_PER_SECOND
        self.forwarded_host = settings.USE_X_FORWARDED_HOST
        self.ssl_redirect = settings.SECURE_SSL_REDIRECT
        self.proxy_ssl_header = settings.SECURE_PROXY_SSL_HEADER
        self.hsts = None
        if settings.SECURE_HSTS_SECONDS:
            value = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                value += "; includeSubDomains"
            if settings.SECURE_HSTS_PRELOAD:
                value += "; preload"
            self.hsts = ("Strict-Transport-Security", value)


_settings = _Settings()
setting_changed.connect(_settings.read, weak=False)
