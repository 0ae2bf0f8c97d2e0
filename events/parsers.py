"""Reading an ingest request's body: media type, size limit, gzip, strict JSON.

The size limit is checked on Content-Length before anything is read and, for gzip, on the expanded size as
it is expanded, so a small compressed body can never inflate past the limit in memory.

The body must also arrive within BODY_TIMEOUT_SECONDS. gunicorn's gthread worker reads it on a blocking socket
and its own `timeout` only watches the worker's main loop, so without a deadline a client that sends the
headers and half the body holds a thread for as long as it keeps the connection open: a few dozen such
clients would stop the server answering anyone.
"""

import io
import time
import zlib

from django.http import UnreadablePostError
from rest_framework import status
from rest_framework.parsers import BaseParser

from . import errors
from .errors import ApiError
from .validation import InvalidJSON, parse_json

READ_CHUNK = 64 * 1024
# The largest body allowed (500 KB) arrives in well under this on any link an event stream runs on.
BODY_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT = ("request_timeout", f"The body did not arrive within {BODY_TIMEOUT_SECONDS:g} seconds.")
BODY_UNREADABLE = "The connection broke before the whole body arrived."


def _too_large(limit: int) -> ApiError:
    return ApiError(
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        errors.BODY_TOO_LARGE,
        message=f"The body is larger than {limit // 1024} KB (after gzip expansion). Send fewer or smaller events.",
    )


def _gunzip(compressed: bytes, *, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        expanded = inflater.decompress(compressed, limit + 1)
    except zlib.error as error:
        message = f"The gzip body is corrupt: {error}."
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, message=message) from None
    if len(expanded) > limit:
        raise _too_large(limit)
    if not inflater.eof:
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, message="The gzip body is truncated.")
    return expanded


def read_body(stream, *, meta: dict, limit: int) -> bytes:
    """The request body, expanded if gzipped, at most `limit` bytes; 413 past it, 400 when empty."""
    encoding = meta.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise ApiError(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, errors.UNSUPPORTED_ENCODING)
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise _too_large(limit)
    socket = None if _already_received(meta.get("wsgi.input")) else meta.get("gunicorn.socket")
    raw = _read_in_time(stream, socket=socket, size=limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise _too_large(limit)
    if encoding == "gzip" and raw:
        raw = _gunzip(raw, limit=limit)
    if not raw:
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, message="The body is empty.")
    return raw


def _already_received(body) -> bool:
    """Whether the whole body is in memory already, so that reading it cannot wait on the client: a BytesIO (the
    fast lane hands Django the body it has read), or gunicorn's body holding every byte still to come (a small body
    arrives in the same read as the request head). Such a body needs no deadline, and setting the socket's timeout
    and restoring it cost system calls that measured 10 to 20 us of a /v1/event request's CPU on a busy worker.

    gunicorn's reader is looked at through its internals (gunicorn.http.body: Body.reader, LengthReader.length
    and .unreader.buf); with another server or a gunicorn whose internals differ, the body is read with the
    deadline, as before."""
    if isinstance(body, io.BytesIO):
        return True
    reader = getattr(body, "reader", None)
    remaining = getattr(reader, "length", None)
    buffered = getattr(getattr(reader, "unreader", None), "buf", None)
    if type(remaining) is not int or not isinstance(buffered, io.BytesIO):
        return False
    with buffered.getbuffer() as held:
        return held.nbytes >= remaining


def _read_in_time(stream, *, socket, size: int) -> bytes:
    """At most `size` bytes of the body; 408 if they have not arrived within BODY_TIMEOUT_SECONDS, 400 if the
    connection broke first.

    `socket` is the client's socket when the server exposes it (gunicorn does, as `gunicorn.socket`): each read
    waits at most the time left before the deadline. Without one (the test client) the body is read as is.
    """
    previous_timeout = socket.gettimeout() if socket is not None else None
    try:
        return _read_before(stream, socket=socket, size=size, deadline=time.monotonic() + BODY_TIMEOUT_SECONDS)
    except (TimeoutError, UnreadablePostError) as error:  # Django wraps the socket's error in UnreadablePostError
        if isinstance(error, TimeoutError) or isinstance(error.__cause__, TimeoutError):
            raise ApiError(status.HTTP_408_REQUEST_TIMEOUT, BODY_TIMEOUT) from None
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, message=BODY_UNREADABLE) from None
    finally:
        if socket is not None:
            socket.settimeout(previous_timeout)


def _read_before(stream, *, socket, size: int, deadline: float) -> bytes:
    if socket is None:
        return stream.read(size)
    chunks: list[bytes] = []
    received = 0
    while received < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        socket.settimeout(remaining)
        chunk = stream.read(min(READ_CHUNK, size - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


class StrictJSONParser(BaseParser):
    """JSON that PostgreSQL can store: see events.validation.parse_json for what it refuses."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        view, request = parser_context["view"], parser_context["request"]
        raw = read_body(stream, meta=request.META, limit=view.max_body_bytes)
        request.raw_body = raw  # kept for the refused-events log
        try:
            return parse_json(raw)
        except InvalidJSON as invalid:
            raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, fields=invalid.errors) from None
