"""More bad requests: the Segment endpoints (/v1/track, /v1/identify, ...), /v1/batch, HTTP Basic auth, timestamps
PostgreSQL cannot store, and bodies that arrive too slowly or not at all.

Each named case is refused with its own status and error code, names the JSON path of every problem in
`error.fields` (in order), and stores nothing. test_bad_requests.py holds the cases of POST /v1/event; together
they name well over a hundred bad requests.
"""

import base64
import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import pytest
from django.http import UnreadablePostError
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from canvas.buffering_worker import ReceivedBytes
from events.ingest import body, errors, validation
from events.ingest.errors import ApiError
from events.ingest.pipeline import MAX_BATCH_EVENTS
from events.ingest.tests.test_bad_requests import CORPUS as EVENT_CORPUS
from events.ingest.tests.test_bad_requests import token_values  # noqa: F401 (a fixture: Acme's token and the ones that fail)
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

pytestmark = pytest.mark.django_db

# api.py words these inline.
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


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


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
    document: object = None  # sent as JSON, unless `body` is given
    body: bytes | None = None
    path: str = "/v1/track"
    token: str | None = "acme"  # a key of the token_values fixture; None sends no X-Auth-Token
    headers: dict = field(default_factory=dict)  # "{acme}", "{revoked}" ... in a value become those tokens
    meta: dict = field(default_factory=dict)
    content_type: str = "application/json"
    method: str = "post"


@dataclass(frozen=True)
class Refused:
    status: int
    code: tuple[str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)  # exactly these, in this order
    message: str | None = None  # default: the code's own message
    rejected: int | None = None  # /v1/batch refusing items one by one: how many (all of them)


def invalid(*fields: tuple[str, str]) -> Refused:
    return Refused(400, errors.INVALID_PAYLOAD, list(fields))


def invalid_json(*fields: tuple[str, str], message: str | None = None) -> Refused:
    return Refused(400, errors.INVALID_JSON, list(fields), message=message)


def invalid_items(count: int, *fields: tuple[str, str]) -> Refused:
    message = f"{count} of {count} events were refused; the others were stored."
    return Refused(400, errors.INVALID_EVENTS, list(fields), message=message, rejected=count)


UNAUTHORIZED_MISSING = Refused(401, errors.MISSING_TOKEN)
UNAUTHORIZED_MALFORMED = Refused(401, errors.MALFORMED_TOKEN)
UNAUTHORIZED_UNKNOWN = Refused(401, errors.UNKNOWN_TOKEN)
GZIP = {"HTTP_CONTENT_ENCODING": "gzip"}
BATCH_OVER_500_KB = {"batch": [track(properties={"pad": "x" * 1000}) for _ in range(520)]}
GZIP_BOMB = gzip.compress(orjson.dumps({"batch": [track(properties={"pad": " " * (10 * 1024 * 1024)})]}))
TOO_LONG = "x" * 256
UNSTORABLE_OFFSET = "2012-12-02T00:30:08+16:00"

CORPUS = [
    # --- /v1/track ---------------------------------------------------------------------------------------------
    pytest.param(Sent(track(event=None)), invalid(("/event", REQUIRED)), id="track-event-missing"),
    pytest.param(Sent(track(event=42)), invalid(("/event", NOT_A_STRING)), id="track-event-number"),
    pytest.param(Sent(track(event=" \n")), invalid(("/event", BLANK)), id="track-event-blank"),
    pytest.param(Sent(track(event="e" * 201)), invalid(("/event", EVENT_TOO_LONG)), id="track-event-201-characters"),
    pytest.param(Sent(track(userId=None)), invalid(("", IDENTITY_REQUIRED)), id="track-no-userId-nor-anonymousId"),
    pytest.param(
        Sent({"type": "track", "event": "e", "userId": None, "anonymousId": None}),
        invalid(("", IDENTITY_REQUIRED)),
        id="track-identity-null-both",
    ),
    pytest.param(Sent(track(userId=1.5)), invalid(("/userId", ID_INVALID)), id="track-userId-float"),
    pytest.param(Sent(track(userId=True)), invalid(("/userId", ID_INVALID)), id="track-userId-true"),
    pytest.param(Sent(track(userId=["u"])), invalid(("/userId", ID_INVALID)), id="track-userId-array"),
    pytest.param(Sent(track(userId="")), invalid(("/userId", EMPTY)), id="track-userId-empty"),
    pytest.param(Sent(track(userId=TOO_LONG)), invalid(("/userId", ID_TOO_LONG)), id="track-userId-256-characters"),
    pytest.param(
        Sent(track(anonymousId={"id": 1})), invalid(("/anonymousId", ID_INVALID)), id="track-anonymousId-object"
    ),
    pytest.param(Sent(track(properties=["sku"])), invalid(("/properties", NOT_AN_OBJECT)), id="track-properties-array"),
    pytest.param(Sent(track(properties="{}")), invalid(("/properties", NOT_AN_OBJECT)), id="track-properties-string"),
    pytest.param(
        Sent(track(properties=nested(33))),
        invalid(("/properties" + "/a" * 32, PROPERTIES_TOO_DEEP)),
        id="track-properties-33-levels",
    ),
    pytest.param(
        Sent(track(properties={"cart": {"": 1}})), invalid(("/properties/cart/", KEY_EMPTY)), id="track-key-empty"
    ),
    pytest.param(Sent(track(context="web")), invalid(("/context", NOT_AN_OBJECT)), id="track-context-string"),
    pytest.param(
        Sent(track(context={"traits": {TOO_LONG: 1}})),
        invalid((f"/context/traits/{TOO_LONG}", KEY_TOO_LONG)),
        id="track-context-key-256-characters",
    ),
    pytest.param(
        Sent(track(integrations=["All"])), invalid(("/integrations", NOT_AN_OBJECT)), id="track-integrations-array"
    ),
    pytest.param(
        Sent(track(timestamp="2012-12-02T00:30:08")), invalid(("/timestamp", TIMESTAMP_INVALID)), id="track-ts-naive"
    ),
    pytest.param(
        Sent(track(originalTimestamp="yesterday")),
        invalid(("/originalTimestamp", TIMESTAMP_INVALID)),
        id="track-originalTimestamp-words",
    ),
    pytest.param(Sent(track(sentAt=1354408208)), invalid(("/sentAt", TIMESTAMP_INVALID)), id="track-sentAt-number"),
    pytest.param(
        Sent(track(timestamp="1969-07-20T20:17:40Z")),
        invalid(("/timestamp", TIMESTAMP_TOO_EARLY)),
        id="track-timestamp-before-1970",
    ),
    pytest.param(
        Sent(track(sentAt="9999-12-31T23:59:59Z")), invalid(("/sentAt", TIMESTAMP_TOO_LATE)), id="track-sentAt-9999"
    ),
    pytest.param(Sent(track(messageId=7)), invalid(("/messageId", NOT_A_STRING)), id="track-messageId-number"),
    pytest.param(
        Sent(track(messageId="m" * 101)), invalid(("/messageId", MESSAGE_ID_TOO_LONG)), id="track-messageId-101"
    ),
    pytest.param(Sent(track(writeKey=123)), invalid(("/writeKey", NOT_A_STRING)), id="track-writeKey-number"),
    pytest.param(Sent(track(channel={"web": True})), invalid(("/channel", NOT_A_STRING)), id="track-channel-object"),
    pytest.param(
        Sent(track(traits={"plan": "pro"})),
        invalid(("/traits", UNKNOWN_FIELD.format(name="traits"))),
        id="track-traits-is-not-a-track-field",
    ),
    pytest.param(
        Sent(track(type="identify")),
        invalid(("/type", SEGMENT_TYPE_MISMATCH.format(expected="track"))),
        id="track-type-contradicts-endpoint",
    ),
    pytest.param(Sent(track(type="purchase")), invalid(("/type", SEGMENT_TYPE_INVALID)), id="track-type-unknown"),
    pytest.param(Sent([track()]), invalid(("", NOT_AN_OBJECT)), id="track-body-array"),
    pytest.param(
        Sent({"userId": 1.5, "event": "", "context": [], "timestamp": "now", "extra": True}),
        invalid(
            ("/userId", ID_INVALID),
            ("/context", NOT_AN_OBJECT),
            ("/timestamp", TIMESTAMP_INVALID),
            ("/event", BLANK),
            ("/extra", UNKNOWN_FIELD.format(name="extra")),
        ),
        id="track-every-problem-at-once",
    ),
    # --- /v1/identify, /v1/page, /v1/screen ---------------------------------------------------------------------
    pytest.param(Sent({"traits": {}}, path="/v1/identify"), invalid(("", IDENTITY_REQUIRED)), id="identify-anonymous"),
    pytest.param(
        Sent({"userId": "u", "traits": ["pro"]}, path="/v1/identify"),
        invalid(("/traits", NOT_AN_OBJECT)),
        id="identify-traits-array",
    ),
    pytest.param(
        Sent({"userId": "u", "event": "Signed Up"}, path="/v1/identify"),
        invalid(("/event", UNKNOWN_FIELD.format(name="event"))),
        id="identify-event-is-not-an-identify-field",
    ),
    pytest.param(
        Sent({"anonymousId": "a", "name": 404}, path="/v1/page"),
        invalid(("/name", NOT_A_STRING)),
        id="page-name-number",
    ),
    pytest.param(
        Sent({"anonymousId": "a", "category": ["docs"]}, path="/v1/page"),
        invalid(("/category", NOT_A_STRING)),
        id="page-category-array",
    ),
    pytest.param(
        Sent({"anonymousId": "a", "name": "n" * 201}, path="/v1/screen"),
        invalid(("/name", EVENT_TOO_LONG)),
        id="screen-name-201-characters",
    ),
    pytest.param(
        Sent({"anonymousId": "a", "properties": True}, path="/v1/screen"),
        invalid(("/properties", NOT_AN_OBJECT)),
        id="screen-properties-true",
    ),
    # --- /v1/group, /v1/alias ------------------------------------------------------------------------------------
    pytest.param(Sent({"userId": "u"}, path="/v1/group"), invalid(("/groupId", REQUIRED)), id="group-groupId-missing"),
    pytest.param(
        Sent({"userId": "u", "groupId": None}, path="/v1/group"),
        invalid(("/groupId", REQUIRED)),
        id="group-groupId-null",
    ),
    pytest.param(
        Sent({"userId": "u", "groupId": ""}, path="/v1/group"), invalid(("/groupId", EMPTY)), id="group-groupId-empty"
    ),
    pytest.param(
        Sent({"userId": "u", "groupId": ["g"]}, path="/v1/group"),
        invalid(("/groupId", ID_INVALID)),
        id="group-groupId-array",
    ),
    pytest.param(
        Sent({"userId": "u", "groupId": "g", "traits": "big"}, path="/v1/group"),
        invalid(("/traits", NOT_AN_OBJECT)),
        id="group-traits-string",
    ),
    pytest.param(
        Sent({"userId": "u"}, path="/v1/alias"), invalid(("/previousId", REQUIRED)), id="alias-previousId-missing"
    ),
    pytest.param(
        Sent({"anonymousId": "a", "previousId": "p"}, path="/v1/alias"),
        invalid(("/userId", REQUIRED)),
        id="alias-userId-missing",
    ),
    pytest.param(
        Sent({"userId": "u", "previousId": 2.5}, path="/v1/alias"),
        invalid(("/previousId", ID_INVALID)),
        id="alias-previousId-float",
    ),
    pytest.param(
        Sent({"userId": "u", "previousId": "p", "properties": {}}, path="/v1/alias"),
        invalid(("/properties", UNKNOWN_FIELD.format(name="properties"))),
        id="alias-properties-is-not-an-alias-field",
    ),
    # --- /v1/batch: the envelope --------------------------------------------------------------------------------
    pytest.param(Sent([track()], path="/v1/batch"), invalid(("", BATCH_NOT_AN_OBJECT)), id="batch-body-array"),
    pytest.param(Sent("batch", path="/v1/batch"), invalid(("", BATCH_NOT_AN_OBJECT)), id="batch-body-string"),
    pytest.param(Sent({}, path="/v1/batch"), invalid(("/batch", BATCH_NOT_AN_ARRAY)), id="batch-missing"),
    pytest.param(Sent({"batch": None}, path="/v1/batch"), invalid(("/batch", BATCH_NOT_AN_ARRAY)), id="batch-null"),
    pytest.param(
        Sent({"batch": track()}, path="/v1/batch"), invalid(("/batch", BATCH_NOT_AN_ARRAY)), id="batch-one-object"
    ),
    pytest.param(
        Sent({"events": [track()]}, path="/v1/batch"),
        invalid(("/batch", BATCH_NOT_AN_ARRAY), ("/events", UNKNOWN_FIELD.format(name="events"))),
        id="batch-under-another-name",
    ),
    pytest.param(
        Sent({"batch": [], "context": ["web"]}, path="/v1/batch"),
        invalid(("/context", NOT_AN_OBJECT)),
        id="batch-context-array",
    ),
    pytest.param(
        Sent({"batch": [], "sentAt": "now"}, path="/v1/batch"),
        invalid(("/sentAt", TIMESTAMP_INVALID)),
        id="batch-sentAt-words",
    ),
    pytest.param(
        Sent({"batch": [{}] * (MAX_BATCH_EVENTS + 1)}, path="/v1/import"),
        Refused(413, errors.BODY_TOO_LARGE, message="A batch holds at most 2,500 events; this one has 2,501."),
        id="batch-2501-events",
    ),
    # --- /v1/batch: every item refused, each with its own path ----------------------------------------------------
    pytest.param(
        Sent({"batch": [1, "track", None, [], True]}, path="/v1/batch"),
        invalid_items(5, *((f"/batch/{index}", NOT_AN_OBJECT) for index in range(5))),
        id="batch-items-not-objects",
    ),
    pytest.param(
        Sent({"batch": [track(type=None)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/type", REQUIRED)),
        id="batch-item-without-type",
    ),
    pytest.param(
        Sent({"batch": [track(type="purchase")]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/type", SEGMENT_TYPE_INVALID)),
        id="batch-item-type-unknown",
    ),
    pytest.param(
        Sent({"batch": [track(userId=None)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0", IDENTITY_REQUIRED)),
        id="batch-item-without-identity",
    ),
    pytest.param(
        Sent({"batch": [track(userId=False)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/userId", ID_INVALID)),
        id="batch-item-userId-false",
    ),
    pytest.param(
        Sent({"batch": [{"type": "group", "userId": "u"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/groupId", REQUIRED)),
        id="batch-item-group-without-groupId",
    ),
    pytest.param(
        Sent({"batch": [{"type": "alias", "userId": "u"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/previousId", REQUIRED)),
        id="batch-item-alias-without-previousId",
    ),
    pytest.param(
        Sent({"batch": [{"type": "alias", "anonymousId": "a", "previousId": "p"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/userId", REQUIRED)),
        id="batch-item-alias-without-userId",
    ),
    pytest.param(
        Sent({"batch": [track(context="ios")]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/context", NOT_AN_OBJECT)),
        id="batch-item-context-string",
    ),
    pytest.param(
        Sent({"batch": [canvas_event(version=2)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/version", VERSION_INVALID)),
        id="batch-item-canvas-version-2",
    ),
    pytest.param(
        Sent({"batch": [canvas_event(userId="u")]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/userId", UNKNOWN_FIELD.format(name="userId"))),
        id="batch-item-canvas-with-a-segment-field",
    ),
    pytest.param(
        Sent({"batch": [{"version": 1, "type": "track", "event": "e"}]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/type", CANVAS_TYPE_INVALID)),
        id="batch-item-canvas-version-with-segment-type",
    ),
    pytest.param(
        Sent({"batch": [track(event=None)] * 3 + [track(properties={"a": {"": 1}})]}, path="/v1/batch"),
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
        Sent({"batch": [track(event=None)] * 3 + [track(properties={"a": nested(32)})]}, path="/v1/batch"),
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
        Sent({"batch": [track(timestamp=UNSTORABLE_OFFSET)]}, path="/v1/batch"),
        invalid_items(1, ("/batch/0/timestamp", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="batch-item-offset-of-16-hours",
    ),
    # --- /v1/batch: JSON that refuses the whole batch, with the path of the problem -------------------------------
    pytest.param(
        Sent(body=batch_text('{"a": 1, "a": 2}'), path="/v1/batch"),
        invalid_json(("/batch/3/properties/a", DUPLICATE_KEY.format(key="a"))),
        id="batch-item-3-duplicate-key",
    ),
    pytest.param(
        Sent(body=batch_text('{"a": "x\\u0000y"}'), path="/v1/batch"),
        invalid_json(("/batch/3/properties/a", NUL_CHARACTER)),
        id="batch-item-3-nul",
    ),
    pytest.param(
        Sent(body=batch_text('{"a": NaN}'), path="/v1/batch"),
        invalid_json(("/batch/3/properties/a", NOT_A_NUMBER)),
        id="batch-item-3-NaN",
    ),
    pytest.param(
        Sent(body=b'{"batch": ' + b"[" * 70 + b"]" * 70 + b"}", path="/v1/batch"),
        invalid_json(("/batch" + "/0" * 63, DOCUMENT_TOO_DEEP)),
        id="batch-71-levels",
    ),
    pytest.param(
        Sent(body=b'{"batch": ["\xff"]}', path="/v1/batch"),
        invalid_json(("", validation.INVALID_UTF8.format(offset=12))),
        id="batch-not-utf8",
    ),
    # --- /v1/batch: size, gzip, media type ------------------------------------------------------------------------
    pytest.param(
        Sent(BATCH_OVER_500_KB, path="/v1/batch"),
        Refused(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-body-over-500-KB",
    ),
    pytest.param(
        Sent({"batch": []}, path="/v1/batch", meta={"CONTENT_LENGTH": str(100 * 1024 * 1024)}),
        Refused(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-content-length-claims-100-MB",
    ),
    pytest.param(
        Sent(body=GZIP_BOMB, path="/v1/batch", meta=GZIP),
        Refused(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-gzip-bomb-10-MB",
    ),
    pytest.param(
        Sent(body=gzip.compress(orjson.dumps(BATCH_OVER_500_KB)), path="/v1/batch", meta=GZIP),
        Refused(413, errors.BODY_TOO_LARGE, message=too_large(500)),
        id="batch-gzip-expanding-past-500-KB",
    ),
    pytest.param(
        Sent(body=gzip.compress(orjson.dumps({"batch": [track()]}))[:-8], path="/v1/batch", meta=GZIP),
        invalid_json(message="The gzip body is truncated."),
        id="batch-gzip-truncated",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", meta=GZIP),
        invalid_json(message="The gzip body is corrupt: Error -3 while decompressing data: incorrect header check."),
        id="batch-gzip-declared-but-plain",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", meta={"HTTP_CONTENT_ENCODING": "br"}),
        Refused(415, errors.UNSUPPORTED_ENCODING),
        id="batch-content-encoding-br",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", meta={"HTTP_CONTENT_ENCODING": "gzip, gzip"}),
        Refused(415, errors.UNSUPPORTED_ENCODING),
        id="batch-content-encoding-gzip-twice",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", meta={"HTTP_CONTENT_ENCODING": "x-gzip"}),
        Refused(415, errors.UNSUPPORTED_ENCODING),
        id="batch-content-encoding-x-gzip",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", content_type="text/plain"),
        Refused(415, errors.UNSUPPORTED_MEDIA_TYPE),
        id="batch-content-type-text-plain",
    ),
    pytest.param(
        Sent(track(properties={"pad": "x" * (32 * KB)})),
        Refused(413, errors.BODY_TOO_LARGE, message=too_large(32)),
        id="track-body-over-32-KB",
    ),
    pytest.param(Sent(track(), method="get"), Refused(405, errors.METHOD_NOT_ALLOWED), id="track-method-GET"),
    pytest.param(
        Sent({"batch": []}, path="/v1/batch", method="put"),
        Refused(405, errors.METHOD_NOT_ALLOWED),
        id="batch-method-PUT",
    ),
    pytest.param(Sent(track(), path="/v1/tracks"), Refused(404, errors.NOT_FOUND), id="segment-endpoint-misspelled"),
    # --- Timestamps PostgreSQL cannot store ----------------------------------------------------------------------
    pytest.param(
        Sent(canvas_event(timestamp=UNSTORABLE_OFFSET), path="/v1/event"),
        invalid(("/timestamp", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="event-timestamp-offset-of-16-hours",
    ),
    pytest.param(
        Sent(canvas_event(sentAt="2012-12-02T00:30:08-23:59"), path="/v1/event"),
        invalid(("/sentAt", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="event-sentAt-offset-of-minus-23-59",
    ),
    pytest.param(
        Sent(track(originalTimestamp="2012-12-02T00:30:08+1935")),
        invalid(("/originalTimestamp", TIMESTAMP_OFFSET_TOO_LARGE)),
        id="track-originalTimestamp-offset-of-19-35",
    ),
    pytest.param(
        Sent({"batch": [track()], "sentAt": UNSTORABLE_OFFSET}, path="/v1/batch"),
        invalid(("/sentAt", TIMESTAMP_INVALID)),
        id="batch-sentAt-offset-of-16-hours",
    ),
    # --- HTTP Basic (what Segment's libraries send) and other credentials ---------------------------------------
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:revoked"}),
        UNAUTHORIZED_UNKNOWN,
        id="basic-revoked-token",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:unknown"}),
        UNAUTHORIZED_UNKNOWN,
        id="basic-unknown-token",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:acme-truncated"}),
        UNAUTHORIZED_MALFORMED,
        id="basic-truncated-token",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic-password:acme"}),
        UNAUTHORIZED_MISSING,
        id="basic-token-as-password",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "Basic !!not-base64!!"}),
        UNAUTHORIZED_MALFORMED,
        id="basic-not-base64",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic-unpadded:acme"}),
        UNAUTHORIZED_MALFORMED,
        id="basic-base64-without-padding",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": basic("cnv_é:")}),
        UNAUTHORIZED_MALFORMED,
        id="basic-not-ascii",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "Basic "}),
        UNAUTHORIZED_MISSING,
        id="basic-without-credentials",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "basic:disabled"}),
        Refused(403, errors.API_DISABLED),
        id="basic-team-api-disabled",
    ),
    pytest.param(
        Sent({"batch": [track()]}, path="/v1/batch", token=None, headers={"Authorization": "Digest username={acme}"}),
        UNAUTHORIZED_MISSING,
        id="digest-authorization",
    ),
    pytest.param(
        Sent(
            {"batch": [track()]}, path="/v1/batch", token="acme-bad-checksum", headers={"Authorization": "basic:acme"}
        ),
        UNAUTHORIZED_MALFORMED,
        id="a-bad-x-auth-token-is-not-rescued-by-basic",
    ),
]


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
    headers = {name: _authorization(value, tokens) for name, value in sent.headers.items()}
    if sent.token is not None:
        headers["X-Auth-Token"] = tokens[sent.token]
    if sent.method == "get":
        return client.get(sent.path, headers=headers, **sent.meta)
    body = sent.body if sent.body is not None else orjson.dumps(sent.document)
    request = getattr(client, sent.method)
    return request(sent.path, body, content_type=sent.content_type, headers=headers, **sent.meta)


@pytest.mark.parametrize(("sent", "refused"), CORPUS)
def test_it_refuses_the_bad_request_and_stores_nothing(client, token_values, sent, refused):  # noqa: F811
    response = send(client, sent, token_values)

    assert response.status_code == refused.status, response.content
    body = response.json()
    error = body["error"]
    code, default_message = refused.code
    assert error["code"] == code
    assert error["message"] == (refused.message or default_message)
    assert [(problem["path"], problem["message"]) for problem in error["fields"]] == refused.fields
    if refused.rejected is not None:
        assert body["rejected"] == refused.rejected
        assert [result["status"] for result in body["results"]] == ["rejected"] * refused.rejected
    assert not Event.objects.exists()


def test_the_corpora_name_over_a_hundred_bad_requests():
    ids = [case.id for case in EVENT_CORPUS] + [case.id for case in CORPUS]
    assert len(set(ids)) == len(ids) > 100


# --- Timestamps at the edge of what PostgreSQL stores -------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+15:59", "-1559"])
def test_a_timestamp_at_the_largest_offset_postgresql_stores_is_kept(client, token_values, offset):  # noqa: F811
    body = orjson.dumps(canvas_event(timestamp=f"2012-12-02T00:30:08{offset}"))

    response = client.post(
        "/v1/event", body, content_type="application/json", headers={"X-Auth-Token": token_values["acme"]}
    )

    assert response.status_code == 200
    assert Event.objects.get().original_timestamp == datetime.fromisoformat(f"2012-12-02T00:30:08{offset}")


# --- Integers beyond 64 bits ----------------------------------------------------------------------------------


def test_a_refused_batch_item_holding_an_integer_beyond_64_bits_is_a_400(client, token_values):  # noqa: F811
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
    body = _body_as_the_server_hands_it_over(b'{"version": ', 14)  # two bytes short when the deadline passed

    with pytest.raises(ApiError) as refusal:
        body.read_body(body, meta={"CONTENT_LENGTH": "14"}, limit=200)

    assert (refusal.value.status_code, refusal.value.code) == (408, body.BODY_TIMEOUT[0])
