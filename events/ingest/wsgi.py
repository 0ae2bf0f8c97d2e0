"""The WSGI front end: POSTs to the ingest endpoints answered by the pipeline in front of Django's machinery.

Django's handler, its middleware chain and DRF's request cycle cost more than an event's own work
(docs/performance.md#the-front-end). So canvas/wsgi.py wraps Django in IngestFrontEnd, which takes a request on
what is known before its body is read: a POST to a path of the pipeline's ROUTES, the front end on
(EVENTS_FRONT_END) and PostgreSQL behind it, a host Django allows, and no HTTPS redirect to send. It then answers
the request itself, whatever the answer (events.ingest.pipeline decides it, and logs and counts it). Everything
else goes to Django, where the DRF views (events.ingest.views) run the same pipeline.

What Django would add around the answer is not restated here: the response headers are those Django's own
middleware (settings.MIDDLEWARE) adds to the views' answer, found by running it once on a synthetic request and
again after a setting changes; the host and the scheme are HttpRequest's own get_host() and is_secure(); the
connection clean-up is Django's close_if_unusable_or_obsolete(), as its request signals call it.
"""

import enum
import io
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Final

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.core.signals import setting_changed
from django.db import connection
from django.http import HttpRequest, HttpResponse

from canvas.observability import request_id, request_id_for
from events.ingest.pipeline import ROUTES, answer_request, thread_database
from events.ingest.renderers import OrjsonRenderer, render_json
from events.ingest.views import IngestAPIView

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The headers that differ from one answer to the next: the front end writes its own.
_PER_ANSWER = frozenset({"content-length", "x-request-id"})


class IngestFrontEnd:
    def __init__(self, django_application: "WSGIApplication") -> None:
        self.django_application = django_application
        self.headers: dict[tuple[str, bool], list[tuple[str, str]] | None] | None = None  # read when first needed
        self.verdicts: dict[tuple[object, ...], bool | _Verdict] = {}
        self.host_and_scheme: tuple[str, ...] = _HOST_AND_SCHEME
        setting_changed.connect(self._forget_headers)

    def _forget_headers(self, **_: object) -> None:
        self.headers = None

    def __call__(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        endpoint = ROUTES.get(path)
        if (
            endpoint is None
            or environ.get("REQUEST_METHOD") != "POST"
            or (headers := self._headers_for(path, environ)) is None
        ):
            return self.django_application(environ, start_response)
        rid = request_id_for(environ)
        context = request_id.set(rid)
        try:
            answer = answer_request(endpoint, environ, _body(environ))
        finally:
            request_id.reset(context)
            close_old_connection()
        body = render_json(answer.body)
        start_response(
            _status_line(answer.status),
            [
                *headers,
                *answer.headers.items(),
                ("Content-Length", str(len(body))),
                ("X-Request-ID", rid),
            ],
        )
        return [body]

    def _headers_for(self, path: str, environ: "WSGIEnvironment") -> list[tuple[str, str]] | None:
        """The headers Django's middleware would add to this request's answer; None when Django should answer it."""
        if self.headers is None:
            self.headers = _django_headers() if _front_end_on() else {}
            self.verdicts = {}
            proxy_header = settings.SECURE_PROXY_SSL_HEADER
            self.host_and_scheme = _HOST_AND_SCHEME + ((proxy_header[0],) if proxy_header else ())
        if not self.headers:
            return None
        # Django's verdict on a host and scheme is remembered: deciding it anew is dear on this path
        # (docs/performance.md#the-front-end).
        seen = tuple(map(environ.get, self.host_and_scheme))
        secure = self.verdicts.get(seen)
        if secure is None:
            secure = _secure_if_allowed(environ)
            if len(self.verdicts) < 100:  # hosts a client makes up are judged each time, not remembered
                self.verdicts[seen] = secure
        return None if secure is _DISALLOWED else self.headers[(path, secure)]


# What HttpRequest.get_host() and is_secure() read of the environ, less SECURE_PROXY_SSL_HEADER's header.
_HOST_AND_SCHEME = (
    "HTTP_HOST",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.url_scheme",
)


class _Verdict(enum.Enum):
    DISALLOWED = "disallowed"  # a one-member enum, so that `is _DISALLOWED` tells the type checker the rest is bool


_DISALLOWED: Final = _Verdict.DISALLOWED


def _secure_if_allowed(environ: "WSGIEnvironment") -> bool | _Verdict:
    """Whether the request came over HTTPS, or _DISALLOWED when Django refuses its host (Django then answers 400,
    and logs it as it does for every path)."""
    request = _RequestHead(environ)
    try:
        request.get_host()
    except DisallowedHost:
        return _DISALLOWED
    return request.is_secure()


def close_old_connection() -> None:
    """What Django's request signals do after a request (close_old_connections), for the one database the
    pipeline uses: the signals and the walk over the connections are dear on this path
    (docs/performance.md#the-front-end)."""
    database = thread_database()
    if database.connection is not None:
        database.close_if_unusable_or_obsolete()


def _front_end_on() -> bool:
    return settings.EVENTS_FRONT_END and connection.vendor == "postgresql"


def _body(environ: "WSGIEnvironment") -> LimitedStream:
    """The body, bounded by Content-Length as Django bounds it: a server that hands over the bare socket
    (runserver) would otherwise have a read wait for bytes that never come."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return LimitedStream(environ["wsgi.input"], length)


class _RequestHead(HttpRequest):
    """A request's environ, for HttpRequest's get_host() and is_secure(): its __init__, which builds what neither
    reads, is skipped."""

    def __init__(self, environ: "WSGIEnvironment") -> None:
        self.META = environ

    def _get_scheme(self) -> str:
        scheme: str = self.META.get("wsgi.url_scheme", "http")
        return scheme


class _SyntheticRequest(WSGIRequest):
    def get_host(self) -> str:
        return "front-end.invalid"  # each real request's host is checked on its own (IngestFrontEnd._headers_for)


class _MiddlewareAroundTheView(BaseHandler):
    """settings.MIDDLEWARE around a view that answers as the DRF views do, without their pipeline."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware()

    def _get_response(self, request: HttpRequest) -> HttpResponse:
        response = HttpResponse(b"{}", content_type=OrjsonRenderer.media_type)
        for name, value in IngestAPIView().default_response_headers.items():
            response[name] = value
        return response


def _django_headers() -> dict[tuple[str, bool], list[tuple[str, str]] | None]:
    """For each route, over HTTP and over HTTPS: the headers of the views' answer once Django's middleware has
    run, or None where the middleware answers instead (an HTTPS redirect)."""
    handler = _MiddlewareAroundTheView()
    headers: dict[tuple[str, bool], list[tuple[str, str]] | None] = {}
    for path in ROUTES:
        for secure in (False, True):
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": path,
                "SERVER_NAME": "front-end.invalid",
                "SERVER_PORT": "443" if secure else "80",
                "wsgi.url_scheme": "https" if secure else "http",
                "wsgi.input": io.BytesIO(),
            }
            response = handler.get_response(_SyntheticRequest(environ))
            headers[(path, secure)] = (
                [(name, value) for name, value in response.items() if name.lower() not in _PER_ANSWER]
                if response.status_code == 200
                else None
            )
    return headers


_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


def _status_line(status: int) -> str:
    return _STATUS_LINES[status]
