"""Request ids and JSON logs: every log line of a request carries the id that its response returns in
X-Request-ID, so a user's report ("request 7f3a… failed") leads straight to the server's lines."""

import itertools
import logging
import os
import re
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="-")

# An id from the client (or the load balancer) is kept only if it is short and plain: it ends up in logs.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _RequestIds:
    """New ids: 16 random hex digits per process, then a counter (32 hex digits, as a UUID's hex).

    Unique without asking the kernel for randomness on every request: uuid4 releases the GIL for its system call,
    and on a busy worker every release is a thread switch that costs more than the id itself.
    """

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_new_ids = _RequestIds()


def request_id_for(meta: dict) -> str:
    """The client's X-Request-ID when it is acceptable, else a new one."""
    incoming = meta.get("HTTP_X_REQUEST_ID")
    return incoming if incoming and _ACCEPTABLE_ID.match(incoming) else _new_ids.new()


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request_id_for(request.META)
        token = request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response["X-Request-ID"] = rid
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class CanvasJsonFormatter(JsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s", *args, **kwargs)
