"""Reading an ingest request's body: media type, size limit, gzip, strict JSON.

The size limit is checked on Content-Length before anything is read and, for gzip, on the expanded size as
it is expanded, so a small compressed body can never inflate past the limit in memory.

A body that did not arrive in time is a 408. The server keeps the deadline, for the whole body however slowly it
comes (canvas.buffering_worker, set in gunicorn.conf.py): reading past what arrived before it raises TimeoutError.
"""

import zlib
from collections.abc import Mapping
from typing import Any, Protocol

from django.http import UnreadablePostError
from rest_framework import status

from events.ingest import errors
from events.ingest.errors import ApiError

BODY_TIMEOUT = ("request_timeout", "The body did not arrive in time: send it whole, without pausing.")
BODY_UNREADABLE = "The connection broke before the whole body arrived."


class Readable(Protocol):
    """A request body: Django's request, DRF's stream or the WSGI input."""

    def read(self, size: int, /) -> bytes: ...


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


def read_body(stream: Readable | None, *, meta: Mapping[str, Any], limit: int) -> bytes:
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
    raw = _read(stream, size=limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise _too_large(limit)
    if encoding == "gzip" and raw:
        raw = _gunzip(raw, limit=limit)
    if not raw:
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, message="The body is empty.")
    return raw


def _read(stream: Readable, *, size: int) -> bytes:
    """At most `size` bytes of the body; 408 if the server's deadline passed first, 400 if the connection broke."""
    try:
        return stream.read(size)
    except (TimeoutError, UnreadablePostError) as error:  # Django wraps the socket's error in UnreadablePostError
        if isinstance(error, TimeoutError) or isinstance(error.__cause__, TimeoutError):
            raise ApiError(status.HTTP_408_REQUEST_TIMEOUT, BODY_TIMEOUT) from None
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, message=BODY_UNREADABLE) from None
