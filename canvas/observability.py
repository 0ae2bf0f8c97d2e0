"""Request ids and JSON logs: every log line of a request carries the id that its response returns in
X-Request-ID, so a user's report ("request 7f3a… failed") leads straight to the server's lines."""

import itertools
import logging
import os
import re
from contextvars import ContextVar

from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

from events.tokens import secret

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


# What every LogRecord has; anything else on a record came from `extra` (Django's `request`, say).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# An invitation's link is a secret as well (whoever holds it joins the team): log lines keep its path, not its secret.
_INVITATION_LINK = re.compile(r"/invitations/(?!accept/)[^/\s?#\"']+")


def scrub(text: str) -> str:
    """What a log line may say: events.tokens.secret.scrub's, and invitation links without their secret."""
    text = secret.scrub(text)
    return _INVITATION_LINK.sub("/invitations/…", text) if "/invitations/" in text else text


class TokenScrubbingFilter(logging.Filter):
    """Hides tokens and invitation secrets in a log record before any handler writes it: its message and arguments,
    its traceback and its extra fields (a request's repr holds its query string), as `scrub` does. Installed on every
    handler, Django's (settings.LOGGING) and gunicorn's (ScrubbingGunicornLogger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a bad format: logging's report of it would print the arguments
            message = record.msg = f"{record.msg} {record.args!r}"
            record.args = None
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            # Formatted here, once, and kept as the text every formatter writes when exc_info is gone.
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for name, value in list(vars(record).items()):
            if name in _RECORD_ATTRIBUTES or value is None or isinstance(value, int | float):
                continue
            try:
                text = value if isinstance(value, str) else str(value)
            except Exception:  # noqa: S112 - an object that cannot say what it is says no token either
                continue
            scrubbed = scrub(text)
            if scrubbed != text:
                setattr(record, name, scrubbed)
        return True


class ScrubbingGunicornLogger(glogging.Logger):
    """gunicorn's logger with TokenScrubbingFilter on its handlers: the access log writes the request line with
    its query string and the Basic auth user (Segment's libraries send the token as that user), the error log
    the URI of a request that failed."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not any(isinstance(f, TokenScrubbingFilter) for f in handler.filters):
                    handler.addFilter(TokenScrubbingFilter())


class CanvasJsonFormatter(JsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s", *args, **kwargs)
