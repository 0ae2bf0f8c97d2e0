"""Bad requests to the Events API, sent over HTTP through both adapters (conftest.py): /v1/event, the Segment
endpoints (/v1/track, /v1/identify, ...), /v1/batch, HTTP Basic auth, timestamps PostgreSQL cannot store, and
bodies that arrive too slowly or not at all.

Each named case is refused with its own status, error code and message, names the JSON path of every problem in
`error.fields` (in order), and stores nothing.
"""

import base64
import gzip
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.http import UnreadablePostError
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from accounts.models import Team
from canvas.buffering_worker import ReceivedBytes
from events.ingest import body, errors, validation
from events.ingest.errors import ApiError
from events.ingest.pipeline import ROUTES
from events.ingest.validation import (
    BLANK,
    CANVAS_TYPE_INVALID,
    DOCUMENT_TOO_DEEP,
    DUPLICATE_KEY,
    EMPTY,
    EVENT_TOO_LONG,
    ID_INVALID,
    ID_TOO_LONG,
    IDENTITY_REQUIRED,
    KEY_EMPTY,
    KEY_TOO_LONG,
    MAX_BATCH_EVENTS,
    MESSAGE_ID_TOO_LONG,
    NOT_A_NUMBER,
    NOT_A_STRING,
    NOT_AN_OBJECT,
    NUL_CHARACTER,
    PROPERTIES_TOO_DEEP,
    REQUIRED,
    SEGMENT_TYPE_INVALID,
    SEGMENT_TYPE_MISMATCH,
    TIMESTAMP_INVALID,
    TIMESTAMP_OFFSET_TOO_LARGE,
    TIMESTAMP_TOO_EARLY,
    TIMESTAMP_TOO_LATE,
    UNKNOWN_FIELD,
    VERSION_INVALID,
)
from events.models import Event, RejectedEvent
from events.tests.event_factories import DOC_EVENT_BODY
from events.tokens import secret, services
from events.tokens.onboarding import TOKEN_PLACEHOLDER

pytestmark = pytest.mark.django_db

DOC_EVENT = json.loads(DOC_EVENT_BODY)
DROP = object()
LIMIT = 32 * 1024


def event_with(**changes) -> bytes:
    """The doc's example event with fields replaced (or removed with DROP), as JSON text."""
    document = {**DOC_EVENT, **changes}
    return json.dumps({name: value for name, value in document.items() if value is not DROP}).encode()


def event_text(fragment: str) -> bytes:
    """The doc's example event with a raw JSON fragment as its properties, for what json.dumps cannot write."""
    return (
        '{"version": 1, "type": "event", "event": "Purchased an Item", "timestamp": "2012-12-02T00:30:08.276Z", '
        f'"properties": {fragment}}}'
    ).encode()


def nested(depth: int) -> dict:
    """An object `depth` levels deep: {"a": {"a": ... {} }}, the outermost counting as level 1."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


BATCH_NOT_AN_OBJECT = "Must be a JSON object with a batch array."
BATCH_NOT_AN_ARRAY = "Must be an array of events."
KB = 1024


def too_large(limit_kb: int) -> str:
    return f"The body is larger than {limit_kb} KB (after gzip expansion). Send fewer or smaller events."


def track(**fields) -> dict:
    """A valid Segment track message, with fields replaced (None removes one)."""
    message = {"type": "track", "userId": "user-1", "event": "Item Viewed", "properties": {"sku": "A-1"}} | fields
    return {name: value for name, value in message.items() if value is not None}


def canvas_event(**fields) -> dict:
    return {"version": 1, "type": "event", "event": "Purchased an Item"} | fields


def batch_text(item_3_properties: str) -> bytes:
    """Four items, the fourth's properties written by hand, for what json.dumps cannot write."""
    items = ", ".join(
        [json.dumps(track())] * 3
        + [f'{{"type": "track", "userId": "u", "event": "e", "properties": {item_3_properties}}}']
    )
    return f'{{"batch": [{items}]}}'.encode()


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@dataclass(frozen=True)
class Sent:
    document: object = None  # sent as JSON instead of `body` when given
    body: bytes = DOC_EVENT_BODY
    method: str = "post"
    path: str = "/v1/event"
    content_type: str | None = "application/json"
    token: str | None = "acme"  # a key of the `token_values` fixture, or the literal header value; falsy: none
    headers: dict = field(default_factory=dict)  # "{acme}" in a value is that token; see _authorization
    meta: dict = field(default_factory=dict)

    def sent_body(self) -> bytes:
        return self.body if self.document is None else orjson.dumps(self.document)


@dataclass(frozen=True)
class Answer:
    status: int
    code: tuple[str, str]
    fields: list = field(default_factory=list)  # [(path, message)], exactly and in order
    message: str | None = None  # default: the code's own message
    headers: dict = field(default_factory=dict)
    rejected: int | None = None  # /v1/batch refusing items one by one: how many (all of them)


def invalid_json(path: str, message: str | re.Pattern[str]) -> Answer:
    return Answer(400, errors.INVALID_JSON, [(path, message)])


def invalid_payload(*fields) -> Answer:
    return Answer(400, errors.INVALID_PAYLOAD, list(fields))


def syntax_error(line: int, column: int) -> Answer:
    """The json module's wording of syntax errors changes between Python versions; the position does not."""
    prefix, _ = validation.SYNTAX_ERROR.split("{detail}")
    return invalid_json("", re.compile(re.escape(prefix) + f".+ at line {line}, column {column}\\."))


TOO_LARGE = Answer(
    413,
    errors.BODY_TOO_LARGE,
    message="The body is larger than 32 KB (after gzip expansion). Send fewer or smaller events.",
)
UNAUTHORIZED = {"WWW-Authenticate": 'X-Auth-Token realm="Canvas Events"'}
FUTURE = (datetime.now(UTC) + timedelta(hours=25)).isoformat()
GZIP = {"HTTP_CONTENT_ENCODING": "gzip"}
PADDED_EVENT = event_with(properties={"padding": "x" * LIMIT})
BOMB = gzip.compress(event_with(properties={"padding": "x" * (10 * 1024 * 1024)}))
TOO_MANY_KEYS_FLAT = {f"k{number}": number for number in range(1001)}
TOO_MANY_KEYS_NESTED = {f"group{group}": {f"k{number}": number for number in range(100)} for group in range(10)}

EVENT_CORPUS = [
    # --- Not JSON at all -----------------------------------------------------------------------------------
    pytest.param(
        Sent(body=b'{"version": 1, "type": "event"'),
        syntax_error(1, 31),
        id="truncated-object",
    ),
    pytest.param(
        Sent(body=b'{"version": 1, "type": "event",}'),
        syntax_error(1, 32),
        id="trailing-comma",
    ),
    pytest.param(
        Sent(body=b"{'version': 1}"),
        syntax_error(1, 2),
        id="single-quotes",
    ),
    pytest.param(
        Sent(body=b"{version: 1}"),
        syntax_error(1, 2),
        id="unquoted-key",
    ),
    pytest.param(Sent(body=DOC_EVENT_BODY + b" true"), syntax_error(10, 3), id="trailing-garbage"),
    pytest.param(
        Sent(body=b"// an event\n" + DOC_EVENT_BODY),
        syntax_error(1, 1),
        id="comment",
    ),
    pytest.param(Sent(body=b"undefined"), syntax_error(1, 1), id="bare-word"),
    pytest.param(
        Sent(body=b'{"event": "tab\there"}'),
        syntax_error(1, 15),
        id="raw-control-character",
    ),
    pytest.param(
        Sent(body=b'{"event": "a\x00b"}'),
        syntax_error(1, 13),
        id="raw-nul-byte",
    ),
    pytest.param(Sent(body=b"   \r\n\t "), invalid_json("", validation.EMPTY_BODY), id="whitespace-only"),
    pytest.param(
        Sent(body=b"\xef\xbb\xbf" + DOC_EVENT_BODY),
        invalid_json("", validation.BYTE_ORDER_MARK),
        id="byte-order-mark",
    ),
    # --- Not UTF-8 -----------------------------------------------------------------------------------------
    pytest.param(
        Sent(body=b'{"event": "caf\xe9"}'),
        invalid_json("", validation.INVALID_UTF8.format(offset=14)),
        id="latin-1-byte",
    ),
    pytest.param(
        Sent(body=b'{"event": "\xc0\xaf"}'),
        invalid_json("", validation.INVALID_UTF8.format(offset=11)),
        id="overlong-utf8",
    ),
    pytest.param(
        Sent(body=b'{"event": "\xed\xa0\x80"}'),
        invalid_json("", validation.INVALID_UTF8.format(offset=11)),
        id="utf8-encoded-surrogate",
    ),
    pytest.param(
        Sent(body=DOC_EVENT_BODY.decode().encode("utf-16")),
        invalid_json("", validation.INVALID_UTF8.format(offset=0)),
        id="utf-16-body",
    ),
    # --- JSON that PostgreSQL cannot store -----------------------------------------------------------------
    pytest.param(
        Sent(body=event_with(properties={"a\x00b": 1})),
        invalid_json("/properties/a\ufffdb", validation.NUL_CHARACTER_IN_KEY),
        id="nul-in-key",
    ),
    pytest.param(
        Sent(body=event_with(properties={"note": "a\x00b"})),
        invalid_json("/properties/note", validation.NUL_CHARACTER),
        id="nul-in-value",
    ),
    pytest.param(
        Sent(body=event_with(event="Purchased\x00")),
        invalid_json("/event", validation.NUL_CHARACTER),
        id="nul-in-event-name",
    ),
    pytest.param(
        Sent(body=event_with(properties={"items": [{"sku": "\x00"}]})),
        invalid_json("/properties/items/0/sku", validation.NUL_CHARACTER),
        id="nul-in-array-item",
    ),
    pytest.param(
        Sent(body=event_with(properties={"note": "\ud800"})),
        invalid_json("/properties/note", validation.LONE_SURROGATE),
        id="lone-high-surrogate",
    ),
    pytest.param(
        Sent(body=event_with(properties={"note": "x\udfffx"})),
        invalid_json("/properties/note", validation.LONE_SURROGATE),
        id="lone-low-surrogate",
    ),
    pytest.param(
        Sent(body=event_with(properties={"note": "\udc00\ud800"})),
        invalid_json("/properties/note", validation.LONE_SURROGATE),
        id="reversed-surrogate-pair",
    ),
    pytest.param(
        Sent(body=event_with(properties={"\ud83d": 1})),
        invalid_json("/properties/\ufffd", validation.LONE_SURROGATE_IN_KEY),
        id="lone-surrogate-in-key",
    ),
    pytest.param(
        Sent(body=event_text('{"big": 1e999}')),
        invalid_json("/properties/big", validation.NUMBER_OUT_OF_RANGE),
        id="1e999",
    ),
    pytest.param(
        Sent(body=event_text('{"small": -1e999}')),
        invalid_json("/properties/small", validation.NUMBER_OUT_OF_RANGE),
        id="minus-1e999",
    ),
    pytest.param(
        Sent(body=event_text('{"huge": ' + "9" * 400 + "}")),
        invalid_json("/properties/huge", validation.NUMBER_OUT_OF_RANGE),
        id="integer-with-400-digits",
    ),
    pytest.param(
        Sent(body=event_text('{"ratio": NaN}')), invalid_json("/properties/ratio", validation.NOT_A_NUMBER), id="NaN"
    ),
    pytest.param(
        Sent(body=event_text('{"ratio": Infinity}')),
        invalid_json("/properties/ratio", validation.NOT_A_NUMBER),
        id="Infinity",
    ),
    pytest.param(
        Sent(body=event_text('{"ratio": [1, -Infinity]}')),
        invalid_json("/properties/ratio/1", validation.NOT_A_NUMBER),
        id="minus-Infinity-in-array",
    ),
    pytest.param(
        Sent(body=b'{"version": 1, "type": "event", "event": "A", "event": "B"}'),
        invalid_json("/event", validation.DUPLICATE_KEY.format(key="event")),
        id="duplicate-top-level-key",
    ),
    pytest.param(
        Sent(body=event_text('{"revenue": "39.95", "revenue": "0"}')),
        invalid_json("/properties/revenue", validation.DUPLICATE_KEY.format(key="revenue")),
        id="duplicate-nested-key",
    ),
    pytest.param(
        Sent(body=event_text('{"items": [{"sku": 1}, {"sku": 2, "sku": 3}]}')),
        invalid_json("/properties/items/1/sku", validation.DUPLICATE_KEY.format(key="sku")),
        id="duplicate-key-in-array-item",
    ),
    pytest.param(
        Sent(body=event_text('{"a/b": 1, "a/b": 2}')),
        invalid_json("/properties/a~1b", validation.DUPLICATE_KEY.format(key="a/b")),
        id="duplicate-key-with-slash",
    ),
    # --- Too deep, too many, bad keys ----------------------------------------------------------------------
    pytest.param(
        Sent(body=event_with(properties=nested(33))),
        invalid_payload(("/properties" + "/a" * 32, validation.PROPERTIES_TOO_DEEP)),
        id="properties-33-levels",
    ),
    pytest.param(
        Sent(body=event_with(properties=nested(65))),
        invalid_json("/properties" + "/a" * 63, validation.DOCUMENT_TOO_DEEP),
        id="body-65-levels",
    ),
    pytest.param(
        Sent(body=b"[" * 16_000 + b"]" * 16_000),
        invalid_json("", validation.DOCUMENT_TOO_DEEP),
        id="body-16000-levels-within-32-KB",
    ),
    pytest.param(
        Sent(body=b'{"a":' * 5_000 + b"1" + b"}" * 5_000),
        invalid_json("", validation.DOCUMENT_TOO_DEEP),
        id="body-5000-levels-of-objects-within-32-KB",
    ),
    pytest.param(Sent(body=b"[" * 100_000 + b"]" * 100_000), TOO_LARGE, id="body-100000-levels"),
    pytest.param(
        Sent(body=gzip.compress(b"[" * 100_000 + b"]" * 100_000), meta=GZIP), TOO_LARGE, id="gzip-body-100000-levels"
    ),
    pytest.param(
        Sent(body=event_with(properties=TOO_MANY_KEYS_FLAT)),
        invalid_payload(("/properties", validation.TOO_MANY_KEYS)),
        id="1001-keys",
    ),
    pytest.param(
        Sent(body=event_with(properties=TOO_MANY_KEYS_NESTED)),
        invalid_payload(("/properties", validation.TOO_MANY_KEYS)),
        id="1010-keys-in-nested-objects",
    ),
    pytest.param(
        Sent(body=event_with(properties={"": 1})),
        invalid_payload(("/properties/", validation.KEY_EMPTY)),
        id="empty-key",
    ),
    pytest.param(
        Sent(body=event_with(properties={"k" * 256: 1})),
        invalid_payload(("/properties/" + "k" * 256, validation.KEY_TOO_LONG)),
        id="256-character-key",
    ),
    pytest.param(
        Sent(body=event_with(properties={"cart": {"k" * 256: 1}})),
        invalid_payload(("/properties/cart/" + "k" * 256, validation.KEY_TOO_LONG)),
        id="256-character-nested-key",
    ),
    # --- version, type, event --------------------------------------------------------------------------------
    pytest.param(
        Sent(body=event_with(version=DROP)), invalid_payload(("/version", validation.REQUIRED)), id="version-missing"
    ),
    pytest.param(
        Sent(body=event_with(version="1")),
        invalid_payload(("/version", validation.VERSION_INVALID)),
        id="version-string",
    ),
    pytest.param(
        Sent(body=event_with(version=1.0)),
        invalid_payload(("/version", validation.VERSION_INVALID)),
        id="version-float",
    ),
    pytest.param(
        Sent(body=event_with(version=True)),
        invalid_payload(("/version", validation.VERSION_INVALID)),
        id="version-true",
    ),
    pytest.param(
        Sent(body=event_with(version=2)), invalid_payload(("/version", validation.VERSION_INVALID)), id="version-2"
    ),
    pytest.param(
        Sent(body=event_with(version=None)),
        invalid_payload(("/version", validation.VERSION_INVALID)),
        id="version-null",
    ),
    pytest.param(Sent(body=event_with(type=DROP)), invalid_payload(("/type", validation.REQUIRED)), id="type-missing"),
    pytest.param(
        Sent(body=event_with(type="track")), invalid_payload(("/type", validation.CANVAS_TYPE_INVALID)), id="type-track"
    ),
    pytest.param(
        Sent(body=event_with(type=["event"])),
        invalid_payload(("/type", validation.CANVAS_TYPE_INVALID)),
        id="type-array",
    ),
    pytest.param(
        Sent(body=event_with(event=DROP)), invalid_payload(("/event", validation.REQUIRED)), id="event-missing"
    ),
    pytest.param(Sent(body=event_with(event="")), invalid_payload(("/event", validation.BLANK)), id="event-empty"),
    pytest.param(Sent(body=event_with(event=" \t ")), invalid_payload(("/event", validation.BLANK)), id="event-blank"),
    pytest.param(
        Sent(body=event_with(event="e" * 201)),
        invalid_payload(("/event", validation.EVENT_TOO_LONG)),
        id="event-201-characters",
    ),
    pytest.param(
        Sent(body=event_with(event=42)), invalid_payload(("/event", validation.NOT_A_STRING)), id="event-number"
    ),
    pytest.param(
        Sent(body=event_with(event=None)), invalid_payload(("/event", validation.NOT_A_STRING)), id="event-null"
    ),
    # --- properties ----------------------------------------------------------------------------------------
    pytest.param(
        Sent(body=event_with(properties=["revenue", "39.95"])),
        invalid_payload(("/properties", validation.NOT_AN_OBJECT)),
        id="properties-array",
    ),
    pytest.param(
        Sent(body=event_with(properties=None)),
        invalid_payload(("/properties", validation.NOT_AN_OBJECT)),
        id="properties-null",
    ),
    pytest.param(
        Sent(body=event_with(properties='{"revenue": "39.95"}')),
        invalid_payload(("/properties", validation.NOT_AN_OBJECT)),
        id="properties-string",
    ),
    # --- timestamp, sentAt, messageId ----------------------------------------------------------------------
    pytest.param(
        Sent(body=event_with(timestamp="2012-12-02T00:30:08.276")),
        invalid_payload(("/timestamp", validation.TIMESTAMP_INVALID)),
        id="timestamp-naive",
    ),
    pytest.param(
        Sent(body=event_with(timestamp="2012-12-02")),
        invalid_payload(("/timestamp", validation.TIMESTAMP_INVALID)),
        id="timestamp-date-only",
    ),
    pytest.param(
        Sent(body=event_with(timestamp="yesterday")),
        invalid_payload(("/timestamp", validation.TIMESTAMP_INVALID)),
        id="timestamp-words",
    ),
    pytest.param(
        Sent(body=event_with(timestamp="2012-13-02T00:30:08Z")),
        invalid_payload(("/timestamp", validation.TIMESTAMP_INVALID)),
        id="timestamp-month-13",
    ),
    pytest.param(
        Sent(body=event_with(timestamp=1354408208)),
        invalid_payload(("/timestamp", validation.TIMESTAMP_INVALID)),
        id="timestamp-epoch-number",
    ),
    pytest.param(
        Sent(body=event_with(timestamp=None)),
        invalid_payload(("/timestamp", validation.TIMESTAMP_INVALID)),
        id="timestamp-null",
    ),
    pytest.param(
        Sent(body=event_with(timestamp="1969-12-31T23:59:59.999Z")),
        invalid_payload(("/timestamp", validation.TIMESTAMP_TOO_EARLY)),
        id="timestamp-before-1970",
    ),
    pytest.param(
        Sent(body=event_with(timestamp="1970-01-01T01:00:00+02:00")),
        invalid_payload(("/timestamp", validation.TIMESTAMP_TOO_EARLY)),
        id="timestamp-before-1970-by-offset",
    ),
    pytest.param(
        Sent(body=event_with(timestamp=FUTURE)),
        invalid_payload(("/timestamp", validation.TIMESTAMP_TOO_LATE)),
        id="timestamp-25-hours-ahead",
    ),
    pytest.param(
        Sent(body=event_with(sentAt="now")),
        invalid_payload(("/sentAt", validation.TIMESTAMP_INVALID)),
        id="sentAt-words",
    ),
    pytest.param(
        Sent(body=event_with(sentAt="2012-12-02T00:30:09")),
        invalid_payload(("/sentAt", validation.TIMESTAMP_INVALID)),
        id="sentAt-naive",
    ),
    pytest.param(
        Sent(body=event_with(messageId="m" * 101)),
        invalid_payload(("/messageId", validation.MESSAGE_ID_TOO_LONG)),
        id="messageId-101-characters",
    ),
    pytest.param(
        Sent(body=event_with(messageId="")), invalid_payload(("/messageId", validation.EMPTY)), id="messageId-empty"
    ),
    pytest.param(
        Sent(body=event_with(messageId=12345)),
        invalid_payload(("/messageId", validation.NOT_A_STRING)),
        id="messageId-number",
    ),
    # --- Unknown fields, several problems, not an object ---------------------------------------------------
    pytest.param(
        Sent(body=event_with(userId="u1")),
        invalid_payload(("/userId", validation.UNKNOWN_FIELD.format(name="userId"))),
        id="unknown-top-level-field",
    ),
    pytest.param(
        Sent(body=event_with(Event="Purchased an Item")),
        invalid_payload(("/Event", validation.UNKNOWN_FIELD.format(name="Event"))),
        id="unknown-field-differs-only-in-case",
    ),
    pytest.param(
        Sent(body=event_with(version="1", event="", timestamp="soon", messageId="", extra=True)),
        invalid_payload(
            ("/version", validation.VERSION_INVALID),
            ("/event", validation.BLANK),
            ("/timestamp", validation.TIMESTAMP_INVALID),
            ("/messageId", validation.EMPTY),
            ("/extra", validation.UNKNOWN_FIELD.format(name="extra")),
        ),
        id="every-problem-reported-at-once",
    ),
    pytest.param(
        Sent(body=b"[" + DOC_EVENT_BODY + b"]"), invalid_payload(("", validation.NOT_AN_OBJECT)), id="body-array"
    ),
    pytest.param(Sent(body=b'"Purchased an Item"'), invalid_payload(("", validation.NOT_AN_OBJECT)), id="body-string"),
    pytest.param(Sent(body=b"1"), invalid_payload(("", validation.NOT_AN_OBJECT)), id="body-number"),
    pytest.param(Sent(body=b"null"), invalid_payload(("", validation.NOT_AN_OBJECT)), id="body-null"),
    pytest.param(
        Sent(body=b"", meta={"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "0"}),
        invalid_json("", validation.EMPTY_BODY),
        id="empty-body",
    ),
    # --- Size and encoding ---------------------------------------------------------------------------------
    pytest.param(Sent(body=PADDED_EVENT), TOO_LARGE, id="body-over-32-KB"),
    pytest.param(
        Sent(body=DOC_EVENT_BODY, meta={"CONTENT_LENGTH": str(10 * 1024 * 1024)}),
        TOO_LARGE,
        id="content-length-claims-10-MB",
    ),
    pytest.param(Sent(body=BOMB, meta=GZIP), TOO_LARGE, id="gzip-bomb-10-MB"),
    pytest.param(Sent(body=gzip.compress(PADDED_EVENT), meta=GZIP), TOO_LARGE, id="gzip-expanding-past-32-KB"),
    pytest.param(
        Sent(body=gzip.compress(DOC_EVENT_BODY)[:-12], meta=GZIP),
        Answer(400, errors.INVALID_JSON, message="The gzip body is truncated."),
        id="gzip-truncated",
    ),
    pytest.param(
        Sent(body=DOC_EVENT_BODY, meta=GZIP),
        Answer(
            400,
            errors.INVALID_JSON,
            message="The gzip body is corrupt: Error -3 while decompressing data: incorrect header check.",
        ),
        id="gzip-declared-but-plain",
    ),
    pytest.param(
        Sent(body=b"\x1f\x8b\x08\x00" + b"\xff" * 40, meta=GZIP),
        Answer(
            400,
            errors.INVALID_JSON,
            message="The gzip body is corrupt: Error -3 while decompressing data: invalid block type.",
        ),
        id="gzip-corrupt",
    ),
    pytest.param(
        Sent(body=DOC_EVENT_BODY, meta={"HTTP_CONTENT_ENCODING": "br"}),
        Answer(415, errors.UNSUPPORTED_ENCODING),
        id="content-encoding-br",
    ),
    pytest.param(
        Sent(body=DOC_EVENT_BODY, meta={"HTTP_CONTENT_ENCODING": "deflate"}),
        Answer(415, errors.UNSUPPORTED_ENCODING),
        id="content-encoding-deflate",
    ),
    # --- Content type and method ---------------------------------------------------------------------------
    pytest.param(
        Sent(content_type="text/plain"), Answer(415, errors.UNSUPPORTED_MEDIA_TYPE), id="content-type-text-plain"
    ),
    pytest.param(
        Sent(body=b"version=1&type=event", content_type="application/x-www-form-urlencoded"),
        Answer(415, errors.UNSUPPORTED_MEDIA_TYPE),
        id="content-type-form",
    ),
    pytest.param(
        Sent(content_type="multipart/form-data; boundary=x"),
        Answer(415, errors.UNSUPPORTED_MEDIA_TYPE),
        id="content-type-multipart",
    ),
    pytest.param(
        Sent(content_type="application/json-patch+json"),
        Answer(415, errors.UNSUPPORTED_MEDIA_TYPE),
        id="content-type-json-patch",
    ),
    pytest.param(Sent(content_type=None), Answer(415, errors.UNSUPPORTED_MEDIA_TYPE), id="content-type-missing"),
    pytest.param(
        Sent(method="get", body=b""),
        Answer(405, errors.METHOD_NOT_ALLOWED, headers={"Allow": "POST, OPTIONS"}),
        id="method-GET",
    ),
    pytest.param(
        Sent(method="get", token=""),
        Answer(401, errors.MISSING_TOKEN, headers=UNAUTHORIZED),
        id="method-GET-without-token",
    ),
    pytest.param(Sent(method="put"), Answer(405, errors.METHOD_NOT_ALLOWED), id="method-PUT"),
    pytest.param(Sent(method="patch"), Answer(405, errors.METHOD_NOT_ALLOWED), id="method-PATCH"),
    pytest.param(Sent(method="delete", body=b""), Answer(405, errors.METHOD_NOT_ALLOWED), id="method-DELETE"),
    pytest.param(Sent(path="/v1/events"), Answer(404, errors.NOT_FOUND), id="unknown-endpoint"),
    # --- Token and access ----------------------------------------------------------------------------------
    pytest.param(Sent(token=""), Answer(401, errors.MISSING_TOKEN, headers=UNAUTHORIZED), id="token-missing"),
    pytest.param(
        Sent(token=TOKEN_PLACEHOLDER),
        Answer(401, errors.MALFORMED_TOKEN, headers=UNAUTHORIZED),
        id="token-placeholder-from-the-docs",
    ),
    pytest.param(
        Sent(token="acme-truncated"), Answer(401, errors.MALFORMED_TOKEN, headers=UNAUTHORIZED), id="token-truncated"
    ),
    pytest.param(
        Sent(token="acme-bad-checksum"),
        Answer(401, errors.MALFORMED_TOKEN, headers=UNAUTHORIZED),
        id="token-bad-checksum",
    ),
    pytest.param(Sent(token="unknown"), Answer(401, errors.UNKNOWN_TOKEN, headers=UNAUTHORIZED), id="token-unknown"),
    pytest.param(Sent(token="revoked"), Answer(401, errors.UNKNOWN_TOKEN, headers=UNAUTHORIZED), id="token-revoked"),
    pytest.param(
        Sent(token="", path="/v1/event?X-Auth-Token={acme}"),
        Answer(401, errors.MISSING_TOKEN, headers=UNAUTHORIZED),
        id="token-in-query-string-only",
    ),
    pytest.param(
        Sent(token="", headers={"Authorization": "Bearer {acme}"}),
        Answer(401, errors.MISSING_TOKEN, headers=UNAUTHORIZED),
        id="token-as-bearer-authorization",
    ),
    pytest.param(Sent(token="disabled"), Answer(403, errors.API_DISABLED), id="team-api-disabled"),
]


def to_track(document: object = None, **fields) -> Sent:
    """A request to /v1/track unless said otherwise."""
    return Sent(document, **{"path": "/v1/track", **fields})


def invalid_json_at(*fields: tuple[str, str], message: str | None = None) -> Answer:
    return Answer(400, errors.INVALID_JSON, list(fields), message=message)


def invalid_items(count: int, *fields: tuple[str, str]) -> Answer:
    message = f"{count} of {count} events were refused; the others were stored."
    return Answer(400, errors.INVALID_EVENTS, list(fields), message=message, rejected=count)


UNAUTHORIZED_MISSING = Answer(401, errors.MISSING_TOKEN)
UNAUTHORIZED_MALFORMED = Answer(401, errors.MALFORMED_TOKEN)
UNAUTHORIZED_UNKNOWN = Answer(401, errors.UNKNOWN_TOKEN)
BATCH_OVER_500_KB = {"batch": [track(properties={"pad": "x" * 1000}) for _ in range(520)]}
GZIP_BOMB = gzip.compress(orjson.dumps({"batch": [track(properties={"pad": " " * (10 * 1024 * 1024)})]}))
TOO_LONG = "x" * 256
UNSTORABLE_OFFSET = "2012-12-02T00:30:08+16:00"

SEGMENT_AND_BATCH_CORPUS = [
    # --- /v1/track ---------------------------------------------------------------------------------------------
    pytest.param(to_track(track(event=None)), invalid_payload(("/event", REQUIRED)), id="track-event-missing"),
    pytest.param(to_track(track(event=42)), invalid_payload(("/event", NOT_A_STRING)), id="track-event-number"),
    pytest.param(to_track(track(event=" \n")), invalid_payload(("/event", BLANK)), id="track-event-blank"),
    pytest.param(
        to_track(track(event="e" * 201)), invalid_payload(("/event", EVENT_TOO_LONG)), id="track-event-201-characters"
    ),
    pytest.param(
        to_track(track(userId=None)), invalid_payload(("", IDENTITY_REQUIRED)), id="track-no-userId-nor-anonymousId"
    ),
    pytest.param(
        to_track({"type": "track", "event": "e", "userId": None, "anonymousId": None}),
        invalid_payload(("", IDENTITY_REQUIRED)),
        id="track-identity-null-both",
    ),
    pytest.param(to_track(track(userId=1.5)), invalid_payload(("/userId", ID_INVALID)), id="track-userId-float"),
    pytest.param(to_track(track(userId=True)), invalid_payload(("/userId", ID_INVALID)), id="track-userId-true"),
    pytest.param(to_track(track(userId=["u"])), invalid_payload(("/userId", ID_INVALID)), id="track-userId-array"),
    pytest.param(to_track(track(userId="")), invalid_payload(("/userId", EMPTY)), id="track-userId-empty"),
    pytest.param(
        to_track(track(userId=TOO_LONG)), invalid_payload(("/userId", ID_TOO_LONG)), id="track-userId-256-characters"
    ),
    pytest.param(
        to_track(track(anonymousId={"id": 1})),
        invalid_payload(("/anonymousId", ID_INVALID)),
        id="track-anonymousId-object",
    ),
    pytest.param(
        to_track(track(properties=["sku"])),
        invalid_payload(("/properties", NOT_AN_OBJECT)),
        id="track-properties-array",
    ),
    pytest.param(
        to_track(track(properties="{}")), invalid_payload(("/properties", NOT_AN_OBJECT)), id="track-properties-string"
    ),
    pytest.param(
        to_track(track(properties=nested(33))),
        invalid_payload(("/properties" + "/a" * 32, PROPERTIES_TOO_DEEP)),
        id="track-properties-33-levels",
    ),
    pytest.param(
        to_track(track(properties={"cart": {"": 1}})),
        invalid_payload(("/properties/cart/", KEY_EMPTY)),
        id="track-key-empty",
    ),
    pytest.param(
        to_track(track(context="web")), invalid_payload(("/context", NOT_AN_OBJECT)), id="track-context-string"
    ),
    pytest.param(
        to_track(track(context={"traits": {TOO_LONG: 1}})),
        invalid_payload((f"/context/traits/{TOO_LONG}", KEY_TOO_LONG)),
        id="track-context-key-256-characters",
    ),
    pytest.param(
        to_track(track(integrations=["All"])),
        invalid_payload(("/integrations", NOT_AN_OBJECT)),
        id="track-integrations-array",
    ),
    pytest.param(
        to_track(track(timestamp="2012-12-02T00:30:08")),
        invalid_payload(("/timestamp", TIMESTAMP_INVALID)),
        id="track-ts-naive",
    ),
    pytest.param(
        to_track(track(originalTimestamp="yesterday")),
        invalid_payload(("/originalTimestamp", TIMESTAMP_INVALID)),
        id="track-originalTimestamp-words",
    ),
    pytest.param(
        to_track(track(sentAt=1354408208)), invalid_payload(("/sentAt", TIMESTAMP_INVALID)), id="track-sentAt-number"
    ),
    pytest.param(
        to_track(track(timestamp="1969-07-20T20:17:40Z")),
        invalid_payload(("/timestamp", TIMESTAMP_TOO_EARLY)),
        id="track-timestamp-before-1970",
    ),
    pytest.param(
        to_track(track(sentAt="9999-12-31T23:59:59Z")),
        invalid_payload(("/sentAt", TIMESTAMP_TOO_LATE)),
        id="track-sentAt-9999",
    ),
    pytest.param(
        to_track(track(messageId=7)), invalid_payload(("/messageId", NOT_A_STRING)), id="track-messageId-number"
    ),
    pytest.param(
        to_track(track(messageId="m" * 101)),
        invalid_payload(("/messageId", MESSAGE_ID_TOO_LONG)),
        id="track-messageId-101",
    ),
    pytest.param(
        to_track(track(writeKey=123)), invalid_payload(("/writeKey", NOT_A_STRING)), id="track-writeKey-number"
    ),
    pytest.param(
        to_track(track(channel={"web": True})), invalid_payload(("/channel", NOT_A_STRING)), id="track-channel-object"
    ),
    pytest.param(
        to_track(track(traits={"plan": "pro"})),
        invalid_payload(("/traits", UNKNOWN_FIELD.format(name="traits"))),
        id="track-traits-is-not-a-track-field",
    ),
    pytest.param(
        to_track(track(type="identify")),
        invalid_payload(("/type", SEGMENT_TYPE_MISMATCH.format(expected="track"))),
        id="track-type-contradicts-endpoint",
    ),
    pytest.param(
        to_track(track(type="purchase")), invalid_payload(("/type", SEGMENT_TYPE_INVALID)), id="track-type-unknown"
    ),
    pytest.param(to_track([track()]), invalid_payload(("", NOT_AN_OBJECT)), id="track-body-array"),
    pytest.param(
        to_track({"userId": 1.5, "event": "", "context": [], "timestamp": "now", "extra": True}),
        invalid_payload(
            ("/userId", ID_INVALID),
            ("/context", NOT_AN_OBJECT),
            ("/timestamp", TIMESTAMP_INVALID),
            ("/event", BLANK),
            ("/extra", UNKNOWN_FIELD.format(name="extra")),
        ),
        id="track-every-problem-at-once",
    ),
    # --- /v1/identify, /v1/page, /v1/screen ---------------------------------------------------------------------
    pytest.param(
        to_track({"traits": {}}, path="/v1/identify"), invalid_payload(("", IDENTITY_REQUIRED)), id="identify-anonymous"
    ),
    pytest.param(
        to_track({"userId": "u", "traits": ["pro"]}, path="/v1/identify"),
        invalid_payload(("/traits", NOT_AN_OBJECT)),
        id="identify-traits-array",
    ),
    pytest.param(
        to_track({"userId": "u", "event": "Signed Up"}, path="/v1/identify"),
        invalid_payload(("/event", UNKNOWN_FIELD.format(name="event"))),
        id="identify-event-is-not-an-identify-field",
    ),
    pytest.param(
        to_track({"anonymousId": "a", "name": 404}, path="/v1/page"),
        invalid_payload(("/name", NOT_A_STRING)),
        id="page-name-number",
    ),
    pytest.param(
        to_track({"anonymousId": "a", "category": ["docs"]}, path="/v1/page"),
        invalid_payload(("/category", NOT_A_STRING)),
        id="page-category-array",
    ),
    pytest.param(
        to_track({"anonymousId": "a", "name": "n" * 201}, path="/v1/screen"),
        invalid_payload(("/name", EVENT_TOO_LONG)),
        id="screen-name-201-characters",
    ),
    pytest.param(
        to_track({"anonymousId": "a", "properties": True}, path="/v1/screen"),
        invalid_payload(("/properties", NOT_AN_OBJECT)),
        id="screen-properties-true",
    ),
    # --- /v1/group, /v1/alias ------------------------------------------------------------------------------------
    pytest.param(
        to_track({"userId": "u"}, path="/v1/group"), invalid_payload(("/groupId", REQUIRED)), id="group-groupId-missing"
    ),
    pytest.param(
        to_track({"userId": "u", "groupId": None}, path="/v1/group"),
        invalid_payload(("/groupId", REQUIRED)),
        id="group-groupId-null",
    ),
    pytest.param(
        to_track({"userId": "u", "groupId": ""}, path="/v1/group"),
        invalid_payload(("/groupId", EMPTY)),
        id="group-groupId-empty",
    ),
    pytest.param(
        to_track({"userId": "u", "groupId": ["g"]}, path="/v1/group"),
        invalid_payload(("/groupId", ID_INVALID)),
        id="group-groupId-array",
    ),
    pytest.param(
        to_track({"userId": "u", "groupId": "g", "traits": "big"}, path="/v1/group"),
        invalid_payload(("/traits", NOT_AN_OBJECT)),
        id="group-traits-string",
    ),
    pytest.param(
        to_track({"userId": "u"}, path="/v1/alias"),
        invalid_payload(("/previousId", REQUIRED)),
        id="alias-previousId-missing",
    ),
    pytest.param(
        to_track({"anonymousId": "a", "previousId": "p"}, path="/v1/alias"),
        invalid_payload(("/userId", REQUIRED)),
        id="alias-userId-missing",
    ),
    pytest.param(
        to_track({"userId": "u", "previousId": 2.5}, path="/v1/alias"),
        invalid_payload(("/previousId", ID_INVALID)),
        id="alias-previousId-float",
    ),
    pytest.param(
        to_track({"userId": "u", "previousId": "p", "properties": {}}, path="/v1/alias"),
        invalid_payload(("/properties", UNKNOWN_FIELD.format(name="properties"))),
        id="alias-properties-is-not-an-alias-field",
    ),
    # --- /v1/batch: the envelope --------------------------------------------------------------------------------
    pytest.param(
        to_track([track()], path="/v1/batch"), invalid_payload(("", BATCH_NOT_AN_OBJECT)), id="batch-body-array"
    ),
    pytest.param(
        to_track("batch", path="/v1/batch"), invalid_payload(("", BATCH_NOT_AN_OBJECT)), id="batch-body-string"
    ),
    pytest.param(to_track({}, path="/v1/batch"), invalid_payload(("/batch", BATCH_NOT_AN_ARRAY)), id="batch-missing"),
    pytest.param(
        to_track({"batch": None}, path="/v1/batch"), invalid_payload(("/batch", BATCH_NOT_AN_ARRAY)), id="batch-null"
    ),
    pytest.param(
        to_track({"batch": track()}, path="/v1/batch"),
        invalid_payload(("/batch", BATCH_NOT_AN_ARRAY)),
        id="batch-one-object",
    ),
    pytest.param(
        to_track({"events": [track()]}, path="/v1/batch"),
        invalid_payload(("/batch", BATCH_NOT_AN_ARRAY), ("/events", UNKNOWN_FIELD.format(name="events"))),
        id="batch-under-another-name",
    ),
    pytest.param(
        to_track({"batch": [], "context": ["web"]}, path="/v1/batch"),
        invalid_payload(("/context", NOT_AN_OBJECT)),
        id="batch-context-array",
    ),
    pytest.param(
        to_track({"batch": [], "sentAt": "now"}, path="/v1/batch"),
        invalid_payload(("/sentAt", TIMESTAMP_INVALID)),
        id="batch-sentAt-words",
    ),
    pytest.param(
        to_track({"batch": [{}] * (MAX_BATCH_EVENTS + 1)}, path="/v1/import"),
        Answer(413, errors.BODY_TOO_LARGE, message="A batch holds at most 2,500 events; this one has 2,501."),
        id="batch-2501-events",
    ),
    # --- /v1/batch: every item refused, each with its own path ----------------------------------------------------
    pytest.param(
        to_track({"batch": [1, "track", None, [], True]}, path="/v1/batch"),
        invalid_items(5, *((f"/batch/{index}", NOT_AN_OBJECT) for index in range(5))),
        id="batch-items-not-objects",
    ),
    pytest.param(
        to_track({"batch": [track(type=None)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/type", REQUIRED)),
        id="batch-item-without-type",
    ),
    pytest.param(
        to_track({"batch": [track(type="purchase")]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/type", SEGMENT_TYPE_INVALID)),
        id="batch-item-type-unknown",
    ),
    pytest.param(
        to_track({"batch": [track(userId=None)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0", IDENTITY_REQUIRED)),
        id="batch-item-without-identity",
    ),
    pytest.param(
        to_track({"batch": [track(userId=False)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/userId", ID_INVALID)),
        id="batch-item-userId-false",
    ),
    pytest.param(
        to_track({"batch": [{"type": "group", "userId": "u"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/groupId", REQUIRED)),
        id="batch-item-group-without-groupId",
    ),
    pytest.param(
        to_track({"batch": [{"type": "alias", "userId": "u"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/previousId", REQUIRED)),
        id="batch-item-alias-without-previousId",
    ),
    pytest.param(
        to_track({"batch": [{"type": "alias", "anonymousId": "a", "previousId": "p"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/userId", REQUIRED)),
        id="batch-item-alias-without-userId",
    ),
    pytest.param(
        to_track({"batch": [track(context="ios")]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/context", NOT_AN_OBJECT)),
        id="batch-item-context-string",
    ),
    pytest.param(
        to_track({"batch": [canvas_event(version=2)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/version", VERSION_INVALID)),
        id="batch-item-canvas-version-2",
    ),
    pytest.param(
        to_track({"batch": [canvas_event(userId="u")]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/userId", UNKNOWN_FIELD.format(name="userId"))),
        id="batch-item-canvas-with-a-segment-field",
    ),
    pytest.param(
        to_track({"batch": [{"version": 1, "type": "track", "event": "e"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/type", CANVAS_TYPE_INVALID)),
        id="batch-item-canvas-version-with-segment-type",
    ),
    pytest.param(
        to_track({"batch": [track(event=None)] * 3 + [track(properties={"a": {"": 1}})]}, path="/v1/batch"),
        invalid_items(
            4,
            ("/batch/0/event", REQUIRED),
            ("/batch/1/event", REQUIRED),
            ("/batch/2/event", REQUIRED),
            ("/batch/3/properties/a/", KEY_EMPTY),
        ),
        id="batch-item-3-nested-key-empty",
    ),
    pytest.param(
        to_track({"batch": [track(event=None)] * 3 + [track(properties={"a": nested(32)})]}, path="/v1/batch"),
        invalid_items(
            4,
            ("/batch/0/event", REQUIRED),
            ("/batch/1/event", REQUIRED),
            ("/batch/2/event", REQUIRED),
            ("/batch/3/properties" + "/a" * 32, PROPERTIES_TOO_DEEP),
        ),
        id="batch-item-3-properties-too-deep",
    ),
    pytest.param(
        to_track({"batch": [track(timestamp=UNSTORABLE_OFFSET)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/timestamp", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="batch-item-offset-of-16-hours",
    ),
    # --- /v1/batch: JSON that refuses the whole batch, with the path of the problem -------------------------------
    pytest.param(
        to_track(body=batch_text('{"a": 1, "a": 2}'), path="/v1/batch"),
        invalid_json_at(("/batch/3/properties/a", DUPLICATE_KEY.format(key="a"))),
        id="batch-item-3-duplicate-key",
    ),
    pytest.param(
        to_track(body=batch_text('{"a": "x\\u0000y"}'), path="/v1/batch"),
        invalid_json_at(("/batch/3/properties/a", NUL_CHARACTER)),
        id="batch-item-3-nul",
    ),
    pytest.param(
        to_track(body=batch_text('{"a": NaN}'), path="/v1/batch"),
        invalid_json_at(("/batch/3/properties/a", NOT_A_NUMBER)),
        id="batch-item-3-NaN",
    ),
    pytest.param(
        to_track(body=b'{"batch": ' + b"[" * 70 + b"]" * 70 + b"}", path="/v1/batch"),
        invalid_json_at(("/batch" + "/0" * 63, DOCUMENT_TOO_DEEP)),
        id="batch-71-levels",
    ),
    pytest.param(
        to_track(body=b'{"batch": ["\xff"]}', path="/v1/batch"),
        invalid_json_at(("", validation.INVALID_UTF8.format(offset=12))),
        id="batch-not-utf8",
    ),
    # --- /v1/batch: size, gzip, media type ------------------------------------------------------------------------
    pytest.param(
        to_track(BATCH_OVER_500_KB, path="/v1/batch"),
        Answer(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-body-over-500-KB",
    ),
    pytest.param(
        to_track({"batch": []}, path="/v1/batch", meta={"CONTENT_LENGTH": str(100 * 1024 * 1024)}),
        Answer(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-content-length-claims-100-MB",
    ),
    pytest.param(
        to_track(body=GZIP_BOMB, path="/v1/batch", meta=GZIP),
        Answer(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-gzip-bomb-10-MB",
    ),
    pytest.param(
        to_track(body=gzip.compress(orjson.dumps(BATCH_OVER_500_KB)), path="/v1/batch", meta=GZIP),
        Answer(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-gzip-expanding-past-500-KB",
    ),
    pytest.param(
        to_track(body=gzip.compress(orjson.dumps({"batch": [track()]}))[:-8], path="/v1/batch", meta=GZIP),
        invalid_json_at(message="The gzip body is truncated."),
        id="batch-gzip-truncated",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", meta=GZIP),
        invalid_json_at(message="The gzip body is corrupt: Error -3 while decompressing data: incorrect header check."),
        id="batch-gzip-declared-but-plain",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", meta={"HTTP_CONTENT_ENCODING": "br"}),
        Answer(415, errors.UNSUPPORTED_ENCODING),
        id="batch-content-encoding-br",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", meta={"HTTP_CONTENT_ENCODING": "gzip, gzip"}),
        Answer(415, errors.UNSUPPORTED_ENCODING),
        id="batch-content-encoding-gzip-twice",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", meta={"HTTP_CONTENT_ENCODING": "x-gzip"}),
        Answer(415, errors.UNSUPPORTED_ENCODING),
        id="batch-content-encoding-x-gzip",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", content_type="text/plain"),
        Answer(415, errors.UNSUPPORTED_MEDIA_TYPE),
        id="batch-content-type-text-plain",
    ),
    pytest.param(
        to_track(track(properties={"pad": "x" * (32 * KB)})),
        Answer(413, errors.BODY_TOO_LARGE, message=too_large(32)),
        id="track-body-over-32-KB",
    ),
    pytest.param(to_track(track(), method="get"), Answer(405, errors.METHOD_NOT_ALLOWED), id="track-method-GET"),
    pytest.param(
        to_track({"batch": []}, path="/v1/batch", method="put"),
        Answer(405, errors.METHOD_NOT_ALLOWED),
        id="batch-method-PUT",
    ),
    pytest.param(to_track(track(), path="/v1/tracks"), Answer(404, errors.NOT_FOUND), id="segment-endpoint-misspelled"),
    # --- Timestamps PostgreSQL cannot store ----------------------------------------------------------------------
    pytest.param(
        to_track(canvas_event(timestamp=UNSTORABLE_OFFSET), path="/v1/event"),
        invalid_payload(("/timestamp", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="event-timestamp-offset-of-16-hours",
    ),
    pytest.param(
        to_track(canvas_event(sentAt="2012-12-02T00:30:08-23:59"), path="/v1/event"),
        invalid_payload(("/sentAt", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="event-sentAt-offset-of-minus-23-59",
    ),
    pytest.param(
        to_track(track(originalTimestamp="2012-12-02T00:30:08+1935")),
        invalid_payload(("/originalTimestamp", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="track-originalTimestamp-offset-of-19-35",
    ),
    pytest.param(
        to_track({"batch": [track()], "sentAt": UNSTORABLE_OFFSET}, path="/v1/batch"),
        invalid_payload(("/sentAt", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="batch-sentAt-offset-of-16-hours",
    ),
    # --- HTTP Basic (what Segment's libraries send) and other credentials ---------------------------------------
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:revoked"}),
        UNAUTHORIZED_UNKNOWN,
        id="basic-revoked-token",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:unknown"}),
        UNAUTHORIZED_UNKNOWN,
        id="basic-unknown-token",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:acme-truncated"}),
        UNAUTHORIZED_MALFORMED,
        id="basic-truncated-token",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic-password:acme"}),
        UNAUTHORIZED_MISSING,
        id="basic-token-as-password",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "Basic !!not-base64!!"}),
        UNAUTHORIZED_MALFORMED,
        id="basic-not-base64",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic-unpadded:acme"}),
        UNAUTHORIZED_MALFORMED,
        id="basic-base64-without-padding",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": basic("cnv_é:")}),
        UNAUTHORIZED_MALFORMED,
        id="basic-not-ascii",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "Basic "}),
        UNAUTHORIZED_MISSING,
        id="basic-without-credentials",
    ),
    pytest.param(
        to_track({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:disabled"}),
        Answer(403, errors.API_DISABLED),
        id="basic-team-api-disabled",
    ),
    pytest.param(
        to_track(
            {"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "Digest username={acme}"}
        ),
        UNAUTHORIZED_MISSING,
        id="digest-authorization",
    ),
    pytest.param(
        to_track(
            {"batch": [track()]}, path="/v1/batch", token="acme-bad-checksum", headers={"Authorization": "basic:acme"}
        ),
        UNAUTHORIZED_MALFORMED,
        id="a-bad-x-auth-token-is-not-rescued-by-basic",
    ),
]


@pytest.fixture
def token_values(acme, alice, acme_token) -> dict[str, str]:
    """Token header values by name: Acme's live token, variations of it, and tokens that no longer work."""
    _, plaintext = acme_token
    revoked, revoked_plaintext = services.api_token_create(team=acme, created_by=alice, name="Old stream")
    services.api_token_revoke(token=revoked, by=alice)
    initech = Team.objects.create(name="Initech", slug="initech", events_api_enabled=False)
    _, disabled_plaintext = services.api_token_create(team=initech, created_by=alice, name="Initech stream")
    last = plaintext[-1]
    return {
        "acme": plaintext,
        "acme-truncated": plaintext[:-1],
        "acme-bad-checksum": plaintext[:-1] + ("A" if last != "A" else "B"),
        "unknown": secret.generate(),
        "revoked": revoked_plaintext,
        "disabled": disabled_plaintext,
    }


def _authorization(value: str, tokens: dict[str, str]) -> str:
    """The Authorization header for a case: "basic:<name>" is HTTP Basic with that token as username,
    "basic-password:<name>" with it as password, "basic-unpadded:<name>" the former without base64 padding;
    "{name}" elsewhere is the token itself."""
    scheme, _, name = value.partition(":")
    if scheme == "basic":
        return basic(f"{tokens[name]}:")
    if scheme == "basic-password":
        return basic(f":{tokens[name]}")
    if scheme == "basic-unpadded":
        return basic(f"{tokens[name]}:x").rstrip("=")
    return value.format(**tokens)


def send(client, sent: Sent, tokens: dict[str, str]):
    path = sent.path.format(**tokens)
    headers = {name: _authorization(value, tokens) for name, value in sent.headers.items()}
    token = tokens.get(sent.token, sent.token) if sent.token else None
    if token:
        headers["X-Auth-Token"] = token
    extra = dict(sent.meta)
    if sent.method == "get":
        return client.get(path, headers=headers, **extra)
    if sent.content_type is None:
        return client.generic(sent.method.upper(), path, sent.sent_body(), headers=headers, **extra)
    request = getattr(client, sent.method)
    return request(path, sent.sent_body(), content_type=sent.content_type, headers=headers, **extra)


CORPUS = EVENT_CORPUS + SEGMENT_AND_BATCH_CORPUS


@pytest.mark.parametrize(("sent", "expected"), CORPUS)
def test_it_refuses_the_bad_request_and_stores_nothing(client, answered_by, token_values, sent, expected):
    response = send(client, sent, token_values)

    assert response.status_code == expected.status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    error = body["error"]
    code, default_message = expected.code
    assert error["code"] == code
    assert error["message"] == (expected.message or default_message)
    fields = [(problem["path"], problem["message"]) for problem in error["fields"]]
    assert len(fields) == len(expected.fields), fields
    for (path, message), (expected_path, expected_message) in zip(fields, expected.fields, strict=True):
        assert path == expected_path
        if isinstance(expected_message, re.Pattern):
            assert expected_message.fullmatch(message), message
        else:
            assert message == expected_message
    for name, value in expected.headers.items():
        assert response[name] == value
    if expected.rejected is not None:
        assert body["rejected"] == expected.rejected
        assert [result["status"] for result in body["results"]] == ["rejected"] * expected.rejected
    assert not Event.objects.exists()
    if sent.method == "post" and sent.path.split("?", 1)[0] in ROUTES:
        answered_by(response)


def test_the_corpus_names_over_two_hundred_bad_requests():
    assert len({case.id for case in CORPUS}) == len(CORPUS) > 200


# --- Timestamps at the edge of what PostgreSQL stores -------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+15:59", "-1559"])
def test_a_timestamp_at_the_largest_offset_postgresql_stores_is_kept(client, token_values, offset):
    body = orjson.dumps(canvas_event(timestamp=f"2012-12-02T00:30:08{offset}"))

    response = client.post(
        "/v1/event", body, content_type="application/json", headers={"X-Auth-Token": token_values["acme"]}
    )

    assert response.status_code == 200
    assert Event.objects.get().original_timestamp == datetime.fromisoformat(f"2012-12-02T00:30:08{offset}")


# --- Integers beyond 64 bits ----------------------------------------------------------------------------------


def test_a_refused_batch_item_holding_an_integer_beyond_64_bits_is_a_400(client, token_values):
    body = b'{"batch": [{"type": "track", "event": "e", "properties": {"n": 18446744073709551616}}]}'

    response = client.post(
        "/v1/batch", body, content_type="application/json", headers={"X-Auth-Token": token_values["acme"]}
    )

    assert response.status_code == 400
    assert not Event.objects.exists()
    assert "18446744073709551616" in RejectedEvent.objects.get().payload


# --- Bodies that arrive too slowly or not at all (events.ingest.body.read_body) ---------------------------------------


class _Failing:
    def __init__(self, cause: OSError) -> None:
        self.cause = cause

    def read(self, size: int) -> bytes:
        raise UnreadablePostError(*self.cause.args) from self.cause  # what django.http.HttpRequest.read raises


@pytest.mark.parametrize(
    "cause, status, code, message",
    [
        pytest.param(TimeoutError("timed out"), 408, body.BODY_TIMEOUT[0], body.BODY_TIMEOUT[1], id="stalled"),
        pytest.param(ConnectionResetError(104, "reset"), 400, errors.INVALID_JSON[0], body.BODY_UNREADABLE, id="reset"),
    ],
)
def test_a_body_the_connection_does_not_deliver_is_a_4xx(cause, status, code, message):
    with pytest.raises(ApiError) as refusal:
        body.read_body(_Failing(cause), meta={"CONTENT_LENGTH": "100"}, limit=200)

    assert (refusal.value.status_code, refusal.value.code, refusal.value.message) == (status, code, message)


def _body_as_the_server_hands_it_over(received: bytes, length: int):
    """environ["wsgi.input"] as gunicorn builds it on canvas.buffering_worker's source: the bytes its loop received
    for the request before the deadline, and nothing after them."""
    source = ReceivedBytes()
    source.data = memoryview(received)
    return Body(LengthReader(SocketUnreader(source), length))


def test_a_whole_body_the_server_received_is_read():
    document = b'{"version": 1}'

    raw = body.read_body(
        _body_as_the_server_hands_it_over(document, len(document)), meta={"CONTENT_LENGTH": "14"}, limit=200
    )

    assert raw == document


def test_a_body_cut_off_at_the_servers_deadline_is_a_408():
    cut_off = _body_as_the_server_hands_it_over(b'{"version": ', 14)  # two bytes short when the deadline passed

    with pytest.raises(ApiError) as refusal:
        body.read_body(cut_off, meta={"CONTENT_LENGTH": "14"}, limit=200)

    assert (refusal.value.status_code, refusal.value.code) == (408, body.BODY_TIMEOUT[0])
