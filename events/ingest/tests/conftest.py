"""The ingest tests run the HTTP contract through both adapters of events.ingest.pipeline.

`client` (Django's test client, as tests use it everywhere) comes in two kinds: "django", where Django's handler
and the DRF views answer, and "front-end", where the request goes through the WSGI front end as
canvas/wsgi.py puts it in front of Django: a POST to an ingest path is answered by the front end, anything else
is passed on to Django. `ingest_live_server` does the same for tests that need a server on a port.
"""

from unittest import mock

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.http import HttpResponse
from django.test import Client
from django.test.client import ClientHandler
from pytest_django.live_server_helper import LiveServer

from events.ingest import wsgi
from events.ingest.wsgi import IngestFrontEnd

ADAPTERS = ["django", "front-end"]


class FrontEndHandler(ClientHandler):
    """Django's test client handler with the WSGI front end in front of it. Answers the front end gives itself are
    HttpResponses with `answered_by_front_end` set; what it passes on is Django's test handler's own response."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.front_end = IngestFrontEnd(self._pass_on)
        self.passed_on: HttpResponse | None = None

    def _pass_on(self, environ, start_response):
        self.passed_on = super().__call__(environ)
        return []

    def __call__(self, environ):
        self.passed_on = None
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer.update(status=int(status.split()[0]), headers=headers)

        # As Django's test handler does: connections stay open, for the test's transaction holds them.
        with mock.patch.object(wsgi, "close_old_connection", lambda: None):
            body = b"".join(self.front_end(environ, start_response))
        if self.passed_on is not None:
            self.passed_on.answered_by_front_end = False
            return self.passed_on
        response = HttpResponse(body, status=answer["status"])
        del response["Content-Type"]
        for name, value in answer["headers"]:
            response[name] = value
        response.answered_by_front_end = True
        response.wsgi_request = None  # the front end builds no request object
        return response


class FrontEndClient(Client):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handler = FrontEndHandler(self.handler.enforce_csrf_checks)


@pytest.fixture(params=ADAPTERS)
def adapter(request) -> str:
    return request.param


@pytest.fixture
def client(adapter) -> Client:
    """Django's test client, through Django alone or through the front end in front of it."""
    return FrontEndClient() if adapter == "front-end" else Client()


@pytest.fixture
def answered_by(adapter):
    """A check that a response to a POST on an ingest path was answered by the adapter under test."""

    def check(response) -> None:
        assert getattr(response, "answered_by_front_end", False) is (adapter == "front-end")

    return check


@pytest.fixture(scope="session")
def front_end_live_server(request):
    """A live server (pytest-django's) whose WSGI application is the front end in front of Django."""
    server = LiveServer("localhost", start=False)
    server.thread.static_handler = lambda application: IngestFrontEnd(StaticFilesHandler(application))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ingest_live_server(adapter, request):
    """The live server of the adapter under test: its `url` is where to send requests."""
    return request.getfixturevalue("front_end_live_server" if adapter == "front-end" else "live_server")
