"""Bad requests to POST /v1/event, sent over HTTP through Django's test client.

Each one must get its own status, error code and message, name the JSON path of every problem in
`error.fields`, and store nothing.
"""

import gzip
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Team
from events.ingest import errors, validation
from events.models import Event
from events.tests.event_factories import DOC_EVENT_BODY
from events.tokens import secret, services

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


@dataclass(frozen=True)
class Sent:
    body: bytes = DOC_EVENT_BODY
    method: str = "post"
    path: str = "/v1/event"
    content_type: str | None = "application/json"
    token: str = "acme"  # a key of the `token_values` fixture, or the literal header value
    headers: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    code: tuple[str, str]
    fields: list = field(default_factory=list)  # [(path, message)], exactly and in order
    message: str | None = None  # default: the code's own message
    headers: dict = field(default_factory=dict)


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

CORPUS = [
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
    pytest.param(Sent(method="put"), Answer(405, errors.METHOD_NOT_ALLOWED), id="method-PUT"),
    pytest.param(Sent(method="patch"), Answer(405, errors.METHOD_NOT_ALLOWED), id="method-PATCH"),
    pytest.param(Sent(method="delete", body=b""), Answer(405, errors.METHOD_NOT_ALLOWED), id="method-DELETE"),
    pytest.param(Sent(path="/v1/events"), Answer(404, errors.NOT_FOUND), id="unknown-endpoint"),
    # --- Token and access ----------------------------------------------------------------------------------
    pytest.param(Sent(token=""), Answer(401, errors.MISSING_TOKEN, headers=UNAUTHORIZED), id="token-missing"),
    pytest.param(
        Sent(token="[your_api_token]"),
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


def send(client, sent: Sent, token_values: dict[str, str]):
    path = sent.path.format(**token_values)
    headers = {name: value.format(**token_values) for name, value in sent.headers.items()}
    token = token_values.get(sent.token, sent.token)
    if token:
        headers["X-Auth-Token"] = token
    extra = dict(sent.meta)
    if sent.content_type is None:
        return client.generic(sent.method.upper(), path, sent.body, headers=headers, **extra)
    return getattr(client, sent.method)(path, sent.body, content_type=sent.content_type, headers=headers, **extra)


@pytest.mark.parametrize(("sent", "expected"), CORPUS)
def test_it_refuses_the_bad_request_and_stores_nothing(client, token_values, sent, expected):
    stored_before = Event.objects.count()

    response = send(client, sent, token_values)

    assert response.status_code == expected.status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
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
    assert Event.objects.count() == stored_before


def test_the_corpus_names_at_least_sixty_bad_requests():
    assert len({case.id for case in CORPUS}) == len(CORPUS) >= 60
