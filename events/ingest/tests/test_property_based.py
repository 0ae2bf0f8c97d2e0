"""Properties of the ingest API that must hold for every input, checked with hypothesis through Django's test client:

- any JSON document, and any bytes at all, sent to any ingest endpoint are answered with a 2xx or a 4xx, never a 5xx;
- what is accepted is stored exactly as sent: the event name, the properties and the timestamps of `/v1/event`, and
  of every item of `/v1/batch`.
"""

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from events.ingest import validation
from events.ingest.pipeline import BATCH_BODY_LIMIT, EVENT_BODY_LIMIT
from events.models import Event, EventMessageId

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the working tree; a failure prints the blob to reproduce it
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ENDPOINTS = ["/v1/event", "/v1/batch", "/v1/import", *(f"/v1/{kind}" for kind in validation.SEGMENT_TYPES)]
EVENT_LIMIT = EVENT_BODY_LIMIT
BATCH_LIMIT = BATCH_BODY_LIMIT

# Integers beyond 64 bits included: they are stored exactly. Beyond the double range they are refused, like 1e999.
INTEGERS = st.integers(min_value=-(10**300), max_value=10**300)


def json_text(document, *, ascii_only: bool = True) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity as bare words, lone surrogates as \\ud800 escapes
    (ascii_only) or as the bytes of their UTF-8-like encoding."""
    text = json.dumps(document, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


# --- Valid values ------------------------------------------------------------------------------------------------

# What PostgreSQL can store: no NUL, no lone surrogate.
STORABLE_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
TEXT = st.text(STORABLE_CHARACTERS, max_size=30)
KEYS = st.text(STORABLE_CHARACTERS, min_size=1, max_size=20)
STORABLE_SCALARS = st.none() | st.booleans() | INTEGERS | st.floats(allow_nan=False, allow_infinity=False) | TEXT


def storable(max_leaves: int) -> st.SearchStrategy:
    return st.recursive(
        STORABLE_SCALARS,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=5),
        max_leaves=max_leaves,
    )


PROPERTIES = st.dictionaries(KEYS, storable(30), max_size=8)
# Smaller, as a batch holds several: generating data is most of the time these tests take.
ITEM_PROPERTIES = st.dictionaries(KEYS, storable(10), max_size=5)
EVENT_NAMES = st.text(STORABLE_CHARACTERS, min_size=1, max_size=validation.MAX_EVENT_NAME).filter(
    lambda name: not name.isspace()
)
IDENTIFIERS = st.text(STORABLE_CHARACTERS, min_size=1, max_size=validation.MAX_ID_LENGTH) | st.integers(
    min_value=-(2**63), max_value=2**64 - 1
)
# Message ids get "#<index>" appended, which makes those of one batch unique.
MESSAGE_IDS = st.text(STORABLE_CHARACTERS, min_size=1, max_size=validation.MAX_MESSAGE_ID - 5)


def _yesterday() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)


@st.composite
def moments(draw) -> datetime:
    """An aware datetime from 1970 to yesterday, at any UTC offset PostgreSQL can store (up to 15:59)."""
    local = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=_yesterday()))
    largest = validation.MAX_UTC_OFFSET // timedelta(minutes=1) - 1
    offset = timezone(timedelta(minutes=draw(st.integers(-largest, largest))))
    return local.replace(tzinfo=offset)


@st.composite
def iso_8601(draw, moment: datetime) -> str:
    """One of the spellings of `moment` that validation accepts, all exact to the microsecond."""
    separator = draw(st.sampled_from("Tt "))
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else draw(st.sampled_from(["", ".000"]))
    if moment.microsecond and draw(st.booleans()):
        fraction += "000"  # nanoseconds, as .NET and Go send them
    utc_offset = moment.utcoffset()
    assert utc_offset is not None  # `moment` is aware
    minutes = int(utc_offset.total_seconds()) // 60
    sign, minutes = ("-" if minutes < 0 else "+"), abs(minutes)
    offset = f"{sign}{minutes // 60:02d}{draw(st.sampled_from([':', '']))}{minutes % 60:02d}"
    if minutes == 0 and draw(st.booleans()):
        offset = "Z"
    return moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + fraction + offset


@st.composite
def timestamps(draw) -> tuple[datetime, str] | None:
    """None (not sent) or a moment and how it is written."""
    if draw(st.booleans()):
        return None
    moment = draw(moments())
    return moment, draw(iso_8601(moment))


# --- Any JSON document -------------------------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=20)  # lone surrogates and NUL included
ANY_SCALAR = st.none() | st.booleans() | INTEGERS | st.floats() | ANY_TEXT
ANY_JSON = st.recursive(
    ANY_SCALAR,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(ANY_TEXT, children, max_size=5),
    max_leaves=25,
)


def mostly(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Usually a valid value, now and then any JSON at all: a document has several fields, and each invalid one
    alone keeps the document from getting as far as storage."""
    return st.one_of(*[valid] * 7, ANY_JSON)


@st.composite
def written_timestamps(draw) -> str:
    return draw(iso_8601(draw(moments())))


TIMESTAMP = mostly(written_timestamps())
OBJECT = mostly(ITEM_PROPERTIES)
NEAR_EVENT = st.fixed_dictionaries(
    {"version": mostly(st.just(1)), "type": mostly(st.just("event")), "event": mostly(EVENT_NAMES)},
    optional={"properties": OBJECT, "timestamp": TIMESTAMP, "sentAt": TIMESTAMP, "messageId": mostly(MESSAGE_IDS)},
)
# The fields each Segment type has besides the common ones, and those it needs.
SEGMENT_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "track": {"event": EVENT_NAMES, "properties": ITEM_PROPERTIES},
    "identify": {"traits": ITEM_PROPERTIES},
    "page": {"name": EVENT_NAMES, "category": TEXT, "properties": ITEM_PROPERTIES},
    "screen": {"name": EVENT_NAMES, "category": TEXT, "properties": ITEM_PROPERTIES},
    "group": {"groupId": IDENTIFIERS, "traits": ITEM_PROPERTIES},
    "alias": {"previousId": IDENTIFIERS},
}
SEGMENT_REQUIRED = {"track": {"event"}, "group": {"groupId"}, "alias": {"previousId"}}
SEGMENT_COMMON = {
    "context": ITEM_PROPERTIES,
    "integrations": ITEM_PROPERTIES,
    "timestamp": written_timestamps(),
    "originalTimestamp": written_timestamps(),
    "sentAt": written_timestamps(),
    "messageId": MESSAGE_IDS,
    "writeKey": TEXT,
    "channel": TEXT,
}


@st.composite
def segment_messages(draw, *, typed: bool, near: bool = False) -> dict:
    """A Segment message of a random type; `typed` ones say their type (batch items must), `near` ones are only
    mostly valid."""
    value = mostly if near else (lambda valid: valid)
    kind = draw(st.sampled_from(validation.SEGMENT_TYPES))
    message = {"type": draw(value(st.just(kind)))} if typed or draw(st.booleans()) else {}
    # alias needs userId; every other type userId, anonymousId or both.
    identity = draw(st.sampled_from([("userId",), ("userId", "anonymousId")] + [("anonymousId",)] * (kind != "alias")))
    required = set(identity) | SEGMENT_REQUIRED.get(kind, set())
    fields = {name: IDENTIFIERS for name in identity} | SEGMENT_FIELDS[kind] | SEGMENT_COMMON
    if not near:  # the timestamps of stored messages are checked with what the test knows: timestamp alone
        fields = {name: valid for name, valid in fields.items() if name not in ("originalTimestamp", "sentAt")}
    for name, valid in fields.items():
        if name in required or draw(st.integers(0, 3)) == 0:
            message[name] = draw(value(valid))
    return message


@st.composite
def near_segment_requests(draw) -> tuple[str, dict]:
    message = draw(segment_messages(typed=False, near=True))
    kind = message.get("type")
    return f"/v1/{kind if kind in validation.SEGMENT_TYPES else 'track'}", message


NEAR_BATCH = st.fixed_dictionaries(
    {"batch": mostly(st.lists(segment_messages(typed=True, near=True) | NEAR_EVENT, max_size=4))},
    optional={"context": OBJECT, "sentAt": TIMESTAMP},
)
# Each kind of document to its own endpoint mostly; anything to any endpoint as well.
REQUESTS = st.one_of(
    st.tuples(st.just("/v1/event"), NEAR_EVENT),
    near_segment_requests(),
    st.tuples(st.sampled_from(["/v1/batch", "/v1/import"]), NEAR_BATCH),
    st.tuples(st.sampled_from(ENDPOINTS), ANY_JSON | NEAR_EVENT | segment_messages(typed=True, near=True) | NEAR_BATCH),
)


@pytest.fixture
def post(client, acme_token):
    _, plaintext = acme_token

    def post(path: str, body: bytes, **headers):
        return client.post(path, body, content_type="application/json", headers={"X-Auth-Token": plaintext, **headers})

    return post


@PROPERTY
@given(request=REQUESTS, ascii_only=st.booleans(), dry_run=st.booleans())
def test_any_json_document_is_answered_with_a_2xx_or_a_4xx(post, request, ascii_only, dry_run):
    path, document = request
    response = post(path + ("?dry_run=1" if dry_run else ""), json_text(document, ascii_only=ascii_only))

    event(f"{response.status_code}")  # --hypothesis-show-statistics shows how many got how far
    assert 200 <= response.status_code < 500, response.content


@st.composite
def mangled(draw, bodies: st.SearchStrategy[bytes]) -> bytes:
    """A body with a few bytes inserted, deleted or replaced."""
    body = bytearray(draw(bodies))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(body)))
        byte = draw(st.integers(0, 255))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        if edit == "insert" or position == len(body):
            body.insert(position, byte)
        elif edit == "delete":
            del body[position]
        else:
            body[position] = byte
    return bytes(body)


ANY_BYTES = st.binary(max_size=2000) | mangled(REQUESTS.map(lambda request: json_text(request[1])))


@PROPERTY
@given(path=st.sampled_from(ENDPOINTS), body=ANY_BYTES, encoding=st.sampled_from(["identity", "gzip", "gzipped"]))
def test_any_bytes_are_answered_with_a_2xx_or_a_4xx(post, path, body, encoding):
    """Content-Encoding "gzip" declares gzip over the raw bytes (corrupt, mostly); "gzipped" compresses them."""
    headers = {} if encoding == "identity" else {"Content-Encoding": "gzip"}
    sent = gzip.compress(body) if encoding == "gzipped" else body

    response = post(path, sent, **headers)

    event(f"{response.status_code}")
    assert 200 <= response.status_code < 500, response.content


# --- Stored as sent ----------------------------------------------------------------------------------------------


def same_json(sent, stored) -> bool:
    """Equal as JSON values, as PostgreSQL's jsonb keeps them: numbers by their decimal value (jsonb turns 1e300
    into the integer 10**300 and -0.0 into 0), everything else exactly, booleans never equal to numbers."""
    if sent is None or isinstance(sent, bool | str):
        return type(stored) is type(sent) and stored == sent
    if isinstance(sent, int | float):
        return type(stored) in (int, float) and _decimal(stored) == _decimal(sent)
    if isinstance(sent, list):
        return type(stored) is list and len(stored) == len(sent) and all(map(same_json, sent, stored))
    return type(stored) is dict and stored.keys() == sent.keys() and all(same_json(sent[k], stored[k]) for k in sent)


def _decimal(number: int | float) -> Decimal:
    # repr is the shortest text that reads back as the same float, which is what json.dumps sent.
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def assert_stored_timestamps(row: Event, timestamp: tuple[datetime, str] | None, sent_at: datetime | None) -> None:
    original = timestamp[0] if timestamp else None
    assert row.original_timestamp == original
    assert row.sent_at == sent_at
    if original is None:
        assert row.timestamp == row.received_at
    elif sent_at is None:
        assert row.timestamp == original
    else:  # Segment's clock-skew correction, exact to the microsecond
        assert row.timestamp == row.received_at - (sent_at - original)


def _nesting(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_nesting, value), default=0)
    return 0


def _fits(properties: dict) -> bool:
    """Within validation's limits for properties (the strategies rarely reach them)."""
    return _nesting(properties) <= validation.MAX_PROPERTIES_DEPTH


@PROPERTY
@given(
    name=EVENT_NAMES,
    properties=st.none() | PROPERTIES,
    timestamp=timestamps(),
    sent_at=st.none() | moments(),
    message_id=st.none() | MESSAGE_IDS,
)
def test_an_accepted_event_is_stored_exactly_as_sent(post, name, properties, timestamp, sent_at, message_id):
    document = {"version": 1, "type": "event", "event": name}
    if properties is not None:
        document["properties"] = properties
    if timestamp is not None:
        document["timestamp"] = timestamp[1]
    if sent_at is not None:
        document["sentAt"] = sent_at.isoformat()
    if message_id is not None:
        document["messageId"] = message_id
    body = json_text(document, ascii_only=False)
    assume(len(body) <= EVENT_LIMIT and _fits(properties or {}))
    Event.objects.all().delete()  # a messageId drawn again must not find the previous example's row
    EventMessageId.objects.all().delete()

    response = post("/v1/event", body)

    assert response.status_code == 200, response.content
    row = Event.objects.get(pk=response.json()["id"])
    assert row.event == name
    assert same_json(properties or {}, row.properties), (properties, row.properties)
    assert row.message_id == message_id
    assert_stored_timestamps(row, timestamp, sent_at)


@st.composite
def batch_items(draw) -> list[dict]:
    """1 to 4 valid items: Segment messages of every type, now and then an event in Canvas's own format."""
    items = []
    for index in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 4)) == 0:
            item = {"version": 1, "type": "event", "event": draw(EVENT_NAMES)}
            if draw(st.booleans()):
                item["properties"] = draw(ITEM_PROPERTIES)
            if (timestamp := draw(timestamps())) is not None:
                item["timestamp"] = timestamp[1]
        else:
            item = draw(segment_messages(typed=True))
        item.pop("messageId", None)
        if draw(st.booleans()):
            item["messageId"] = f"{draw(MESSAGE_IDS)}#{index}"
        items.append(item)
    return items


def expected_row(item: dict, batch_context: dict | None) -> dict:
    """What the events table holds for a valid batch item (see validation.validate_segment_message)."""
    kind = "track" if item["type"] == "event" else item["type"]
    identifiers = {name: None if item.get(name) is None else str(item[name]) for name in ("userId", "anonymousId")}
    extra = {name: item[name] for name in ("name", "category", "integrations") if name in item}
    extra |= {name: str(item[name]) for name in ("groupId", "previousId") if name in item}
    return {
        "type": kind,
        "event": item.get("event") or item.get("name") or kind,
        "properties": item.get("traits" if kind in ("identify", "group") else "properties", {}),
        "message_id": item.get("messageId"),
        "user_id": identifiers["userId"],
        "anonymous_id": identifiers["anonymousId"],
        "context": None if item["type"] == "event" else item.get("context", batch_context),
        "extra": extra or None,
    }


def _objects(item: dict) -> list[dict]:
    return [item[name] for name in ("properties", "traits", "context", "integrations") if name in item]


@PROPERTY
@given(items=batch_items(), batch_context=st.none() | ITEM_PROPERTIES)
def test_every_accepted_item_of_a_batch_is_stored_exactly_as_sent(post, items, batch_context):
    document = {"batch": items} | ({"context": batch_context} if batch_context is not None else {})
    body = json_text(document, ascii_only=False)
    assume(len(body) <= BATCH_LIMIT)
    assume(all(_fits(value) for item in items for value in _objects(item)))
    assume(batch_context is None or _fits(batch_context))
    Event.objects.all().delete()
    EventMessageId.objects.all().delete()

    response = post("/v1/batch", body)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [result["status"] for result in results] == ["stored"] * len(items)
    for item, result in zip(items, results, strict=True):
        row = Event.objects.get(pk=result["id"])
        expected = expected_row(item, batch_context)
        assert (row.type, row.event, row.message_id, row.user_id, row.anonymous_id) == (
            expected["type"],
            expected["event"],
            expected["message_id"],
            expected["user_id"],
            expected["anonymous_id"],
        )
        for column in ("properties", "context", "extra"):
            assert same_json(expected[column], getattr(row, column)), (column, expected[column], getattr(row, column))
        timestamp = item.get("timestamp")
        assert_stored_timestamps(row, (datetime.fromisoformat(timestamp), timestamp) if timestamp else None, None)


# --- Integers beyond 64 bits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, document",
    [
        pytest.param(
            "/v1/event", {"version": 1, "type": "event", "event": "e", "properties": {"n": 2**64}}, id="2**64"
        ),
        pytest.param(
            "/v1/event",
            {"version": 1, "type": "event", "event": "e", "properties": {"n": -(2**63) - 1}},
            id="below-i64",
        ),
        pytest.param("/v1/track", {"userId": "u", "event": "e", "context": {"n": 10**300}}, id="10**300-in-context"),
        pytest.param(
            "/v1/batch",
            {"batch": [{"userId": "u", "type": "track", "event": "e", "properties": {"n": 2**70}}]},
            id="2**70-in-batch",
        ),
    ],
)
def test_an_event_with_an_integer_beyond_64_bits_is_stored_exactly(post, path, document):
    response = post(path, json_text(document))

    assert response.status_code == 200
    assert Event.objects.count() == 1
    stored = Event.objects.get()
    sent = document["batch"][0] if "batch" in document else document
    assert same_json(sent.get("properties", {}), stored.properties)
    assert same_json(sent.get("context"), stored.context)
