"""Tests for events.ingest.validation: strict JSON parsing, the Canvas v1 event, Segment messages and batches.

Pure functions: no database, no Django settings needed.
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.ingest import validation
from events.ingest.validation import (
    BATCH_NOT_AN_ARRAY,
    BATCH_NOT_AN_OBJECT,
    BLANK,
    BYTE_ORDER_MARK,
    CANVAS_TYPE_INVALID,
    DOCUMENT_TOO_DEEP,
    EMPTY,
    EMPTY_BODY,
    EVENT_TOO_LONG,
    FUTURE_TOLERANCE,
    ID_INVALID,
    ID_TOO_LONG,
    IDENTITY_REQUIRED,
    KEY_EMPTY,
    KEY_TOO_LONG,
    LONE_SURROGATE,
    LONE_SURROGATE_IN_KEY,
    MAX_DOCUMENT_DEPTH,
    MAX_EVENT_NAME,
    MAX_KEY_LENGTH,
    MAX_MESSAGE_ID,
    MAX_PROPERTIES_DEPTH,
    MAX_PROPERTIES_KEYS,
    MESSAGE_ID_TOO_LONG,
    NOT_A_NUMBER,
    NOT_A_STRING,
    NOT_AN_OBJECT,
    NUL_CHARACTER,
    NUL_CHARACTER_IN_KEY,
    NUMBER_OUT_OF_RANGE,
    PROPERTIES_TOO_DEEP,
    REQUIRED,
    SEGMENT_TYPE_INVALID,
    SEGMENT_TYPE_MISMATCH,
    TIMESTAMP_INVALID,
    TIMESTAMP_OFFSET_TOO_LARGE,
    TIMESTAMP_TOO_EARLY,
    TIMESTAMP_TOO_LATE,
    TOO_MANY_KEYS,
    UNKNOWN_FIELD,
    VERSION_INVALID,
    BatchEnvelope,
    EventPayload,
    FieldError,
    InvalidJSON,
    parse_json,
    validate_batch,
    validate_batch_item,
    validate_event,
    validate_segment_message,
)

RECEIVED_AT = datetime(2012, 12, 2, 0, 31, 0, tzinfo=UTC)
EXAMPLE_BODY = (
    b'{"version":1,"type":"event","event":"Purchased an Item",'
    b'"properties":{"revenue":"39.95","shippingMethod":"2-day"},"timestamp":"2012-12-02T00:30:08.276Z"}'
)
SYNTAX_PREFIX = "The body is not valid JSON: "
DROP = object()  # canvas(field=DROP) removes the field


def parse_errors(raw: bytes) -> list[FieldError]:
    with pytest.raises(InvalidJSON) as info:
        parse_json(raw)
    assert info.value.errors, "InvalidJSON must carry at least one error"
    return info.value.errors


def canvas(**changes) -> dict:
    """The example event as a document, with fields replaced, added or (with DROP) removed."""
    document = json.loads(EXAMPLE_BODY)
    for name, value in changes.items():
        if value is DROP:
            del document[name]
        else:
            document[name] = value
    return document


def nested_objects(levels: int) -> dict:
    """An object `levels` deep (itself is level 1), reached through keys "a"."""
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def valid(document: dict, **kwargs) -> EventPayload:
    payload, errors = validate_event(document, received_at=kwargs.pop("received_at", RECEIVED_AT))
    assert errors == []
    assert payload is not None
    return payload


# ---------------------------------------------------------------------------------------------------------
# parse_json: bad bodies
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"{", id="truncated-object"),
        pytest.param(b"[", id="truncated-array"),
        pytest.param(b'{"a":1,}', id="trailing-comma-in-object"),
        pytest.param(b"[1,]", id="trailing-comma-in-array"),
        pytest.param(b"{'a':1}", id="single-quotes"),
        pytest.param(b'{"a":1} x', id="trailing-garbage"),
        pytest.param(b'{"a":1}{"b":2}', id="two-documents"),
        pytest.param(b"{a:1}", id="unquoted-key"),
        pytest.param(b"[1 2]", id="missing-comma"),
        pytest.param(b'{"a" 1}', id="missing-colon"),
        pytest.param(b'{"a":1,"b"}', id="key-without-value"),
        pytest.param(b'"abc', id="unterminated-string"),
        pytest.param(b'"tab\there"', id="raw-tab-in-string"),
        pytest.param(b'"a\x00b"', id="raw-nul-byte-in-string"),
        pytest.param(b"01", id="leading-zero"),
        pytest.param(b"1.", id="bare-decimal-point"),
        pytest.param(b".5", id="missing-integer-part"),
        pytest.param(b"+1", id="plus-sign"),
        pytest.param(b"0x10", id="hex-number"),
        pytest.param(b'"\\x41"', id="invalid-escape"),
        pytest.param(b'"\\u12"', id="short-unicode-escape"),
        pytest.param(b"tru", id="misspelled-literal"),
        pytest.param(b"None", id="python-none"),
        pytest.param(b"// comment\n{}", id="comment"),
    ],
)
def test_it_rejects_syntax_errors_for_the_whole_body(raw):
    errors = parse_errors(raw)

    assert [error.path for error in errors] == [""]
    assert errors[0].message.startswith(SYNTAX_PREFIX)


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        pytest.param(b"", "", EMPTY_BODY, id="empty-body"),
        pytest.param(b" \r\n\t ", "", EMPTY_BODY, id="whitespace-only-body"),
        pytest.param(b"\xef\xbb\xbf{}", "", BYTE_ORDER_MARK, id="byte-order-mark"),
        pytest.param(b"\xff", "", "The body is not valid UTF-8 (bad byte at offset 0).", id="byte-ff"),
        pytest.param(b'"\xff"', "", "The body is not valid UTF-8 (bad byte at offset 1).", id="ff-in-string"),
        pytest.param(
            b'{"a":"caf\xe9"}',
            "",
            "The body is not valid UTF-8 (bad byte at offset 9).",
            id="latin-1-body",
        ),
        pytest.param(
            b"\xff\xfe{\x00}\x00",
            "",
            "The body is not valid UTF-8 (bad byte at offset 0).",
            id="utf-16-body",
        ),
        pytest.param(
            b'{"a":"\xed\xa0\x80"}',
            "",
            "The body is not valid UTF-8 (bad byte at offset 6).",
            id="utf-8-encoded-surrogate",
        ),
        pytest.param(b'"\xc0\xaf"', "", "The body is not valid UTF-8 (bad byte at offset 1).", id="overlong"),
        pytest.param(
            b'"\xe2\x82"',
            "",
            "The body is not valid UTF-8 (bad byte at offset 1).",
            id="truncated-sequence",
        ),
    ],
)
def test_it_rejects_bodies_that_are_not_utf8_json_text(raw, path, message):
    assert parse_errors(raw) == [FieldError(path, message)]


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        pytest.param(b"NaN", "", NOT_A_NUMBER, id="nan"),
        pytest.param(b'{"a":NaN}', "/a", NOT_A_NUMBER, id="nan-in-object"),
        pytest.param(b"Infinity", "", NOT_A_NUMBER, id="infinity"),
        pytest.param(b"-Infinity", "", NOT_A_NUMBER, id="minus-infinity"),
        pytest.param(b'{"a":[1,Infinity]}', "/a/1", NOT_A_NUMBER, id="infinity-in-array"),
        pytest.param(b"1e999", "", NUMBER_OUT_OF_RANGE, id="1e999"),
        pytest.param(b"-1e999", "", NUMBER_OUT_OF_RANGE, id="minus-1e999"),
        pytest.param(
            b'{"properties":{"revenue":1e999}}',
            "/properties/revenue",
            NUMBER_OUT_OF_RANGE,
            id="1e999-nested",
        ),
        pytest.param(b"[1.5e308,1.8e309]", "/1", NUMBER_OUT_OF_RANGE, id="just-beyond-double"),
        pytest.param(b'{"n":1' + b"0" * 400 + b"}", "/n", NUMBER_OUT_OF_RANGE, id="integer-beyond-double"),
        pytest.param(
            b'{"n":-' + b"9" * 5000 + b"}",
            "/n",
            NUMBER_OUT_OF_RANGE,
            id="integer-beyond-python-digit-limit",
        ),
    ],
)
def test_it_rejects_numbers_json_or_a_double_cannot_hold(raw, path, message):
    assert parse_errors(raw) == [FieldError(path, message)]


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        pytest.param(b'"\\ud800"', "", LONE_SURROGATE, id="lone-high-surrogate"),
        pytest.param(b'{"a":"\\udc00x"}', "/a", LONE_SURROGATE, id="lone-low-surrogate"),
        pytest.param(b'{"a":"\\ud800\\ud800"}', "/a", LONE_SURROGATE, id="two-high-surrogates"),
        pytest.param(b'{"a":"\\ude00\\ud83d"}', "/a", LONE_SURROGATE, id="surrogate-pair-reversed"),
        pytest.param(b'{"a":["ok","x\\uD83D"]}', "/a/1", LONE_SURROGATE, id="high-surrogate-at-end"),
        pytest.param(b'{"\\ud800":1}', "/\ufffd", LONE_SURROGATE_IN_KEY, id="lone-surrogate-in-key"),
        pytest.param(b'"\\u0000"', "", NUL_CHARACTER, id="nul-document"),
        pytest.param(b'{"event":"a\\u0000b"}', "/event", NUL_CHARACTER, id="nul-in-value"),
        pytest.param(b'{"a\\u0000":1}', "/a\ufffd", NUL_CHARACTER_IN_KEY, id="nul-in-key"),
        pytest.param(b'{"p":{"x":["\\u0000"]}}', "/p/x/0", NUL_CHARACTER, id="nul-in-nested-array"),
        pytest.param(
            b'{"a~/b\\u0000":1}',
            "/a~0~1b\ufffd",
            NUL_CHARACTER_IN_KEY,
            id="nul-in-key-escaped-path",
        ),
    ],
)
def test_it_rejects_nul_and_lone_surrogates_naming_the_path(raw, path, message):
    assert parse_errors(raw) == [FieldError(path, message)]


@pytest.mark.parametrize(
    ("raw", "path", "key"),
    [
        pytest.param(b'{"a":1,"a":2}', "/a", "a", id="top-level"),
        pytest.param(b'{"a":1,"a":1}', "/a", "a", id="same-value"),
        pytest.param(
            b'{"properties":{"revenue":1,"revenue":2}}',
            "/properties/revenue",
            "revenue",
            id="nested",
        ),
        pytest.param(b'[{"a":1},{"b":1,"b":1}]', "/1/b", "b", id="in-array-item"),
        pytest.param(b'{"a":{"b":{"c":[{"d":1,"d":2}]}}}', "/a/b/c/0/d", "d", id="deep"),
        pytest.param(b'{"a":1,"a":2,"a":3}', "/a", "a", id="three-times-reported-once"),
        pytest.param(b'{"a/b":1,"a/b":2}', "/a~1b", "a/b", id="slash-in-key"),
        pytest.param(b'{"~":1,"~":2}', "/~0", "~", id="tilde-in-key"),
        pytest.param(b'{"a":1,"\\u0061":2}', "/a", "a", id="spelled-with-escape"),
        pytest.param(b'{"a:b":1,"a:b":2}', "/a:b", "a:b", id="colon-in-key"),
        pytest.param(b'{"a":"x","a":"y:z"}', "/a", "a", id="colon-in-kept-value"),
        pytest.param(b'{"a":"x:y","a":"z"}', "/a", "a", id="colon-in-dropped-value"),
        pytest.param(b'{"a":{"x":1},"a":2}', "/a", "a", id="dropped-value-is-object"),
        pytest.param(b'{"x":"\\u003a","x":1}', "/x", "x", id="escaped-colon-in-value"),
        pytest.param(b'{"":1,"":2}', "/", "", id="empty-key"),
    ],
)
def test_it_rejects_duplicate_keys_naming_the_path(raw, path, key):
    assert parse_errors(raw) == [FieldError(path, f'The key "{key}" appears more than once in this object.')]


def test_it_reports_every_problem_in_the_body_at_once():
    raw = b'{"a":1,"a":2,"b":"\\u0000","c":[NaN],"d":{"e":"\\udc00"}}'

    assert parse_errors(raw) == [
        FieldError("/a", 'The key "a" appears more than once in this object.'),
        FieldError("/b", NUL_CHARACTER),
        FieldError("/c/0", NOT_A_NUMBER),
        FieldError("/d/e", LONE_SURROGATE),
    ]


def test_it_names_a_duplicate_key_that_holds_a_nul_with_a_replacement_character():
    assert parse_errors(b'{"\\u0000":1,"\\u0000":2}') == [
        FieldError("/\ufffd", 'The key "\ufffd" appears more than once in this object.'),
        FieldError("/\ufffd", NUL_CHARACTER_IN_KEY),
    ]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        pytest.param(b"[" * 65 + b"]" * 65, "/0" * 64, id="65-arrays"),
        pytest.param(b'{"a":' * 65 + b"1" + b"}" * 65, "/a" * 64, id="65-objects"),
        pytest.param(b"[" * 65 + b'"\\u0000"' + b"]" * 65, "/0" * 64, id="65-arrays-on-the-slow-path"),
        pytest.param(b'{"a/b":' * 70 + b"1" + b"}" * 70, "/a~1b" * 64, id="70-objects-escaped-keys"),
        pytest.param(b"[" * 2000 + b"]" * 2000, "", id="2000-arrays"),
    ],
)
def test_it_rejects_nesting_deeper_than_the_limit(raw, path):
    assert parse_errors(raw) == [FieldError(path, DOCUMENT_TOO_DEEP)]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 100_000, id="unclosed-arrays"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="closed-arrays"),
        pytest.param(b'{"a":' * 100_000, id="unclosed-objects"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, id="closed-objects"),
        pytest.param(b'["\\ud800",' + b"[" * 100_000, id="surrogate-then-deep"),
        pytest.param(b'["\\u0000",' + b"[" * 100_000 + b"]" * 100_001, id="nul-then-deep"),
    ],
)
def test_it_rejects_100000_levels_without_recursion_error(raw):
    errors = parse_errors(raw)

    assert [error.message for error in errors] == [DOCUMENT_TOO_DEEP]


# JSON text as clients write it, duplicate keys included: few key names, so that objects often repeat one; colons,
# "+" and escapes inside strings; floats in exponent notation; integers beyond 64 bits; whitespace around colons.
_KEY_TEXTS = st.sampled_from(["a", "b", "a:b", "+1", "e+5", " ", 'k"', "ключ"]).map(json.dumps)
_SCALAR_TEXTS = (
    st.sampled_from(["null", "true", "false", "0", "-0", "1.5", "1e16", "1E+300", "2.5e-7", '"x:y"', '"+"'])
    | st.integers(min_value=-(10**25), max_value=10**25).map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(json.dumps)
    | st.text(max_size=8).map(json.dumps)
)


def _object_text(members: list[tuple[str, str]], spacing: str) -> str:
    return "{" + ",".join(f"{key}{spacing}:{spacing}{value}" for key, value in members) + "}"


_JSON_TEXTS = st.recursive(
    _SCALAR_TEXTS,
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.builds(_object_text, st.lists(st.tuples(_KEY_TEXTS, children), max_size=4), st.sampled_from(["", " "]))
    ),
    max_leaves=12,
)


def _outcome(parse, raw: bytes):
    try:
        return "parsed", parse(raw)
    except InvalidJSON as invalid:
        return "refused", invalid.errors


@settings(max_examples=400, deadline=None, database=None)
@given(text=_JSON_TEXTS, wrapping=st.integers(min_value=0, max_value=MAX_DOCUMENT_DEPTH + 2))
def test_the_fast_path_answers_what_the_slow_path_answers(text, wrapping):
    """Whatever parse_json accepts on its fast path (orjson and the checks of its indented output, or the walk)
    it would have accepted, unchanged, on the slow path; whatever it refuses, the slow path refuses too, for the
    same reasons (the walk stops at the first place nested too deep, where the slow path names them all)."""
    raw = ("[" * wrapping + text + "]" * wrapping).encode()

    fast, fast_answer = _outcome(parse_json, raw)
    slow, slow_answer = _outcome(lambda body: validation._parse_slowly(body, fast_error=None), raw)

    assert fast == slow
    if fast == "parsed":
        assert fast_answer == slow_answer
    else:
        assert fast_answer and set(fast_answer) <= set(slow_answer)


def test_invalid_json_says_what_is_wrong_when_printed():
    with pytest.raises(InvalidJSON, match="/a: The key"):
        parse_json(b'{"a":1,"a":2}')


# ---------------------------------------------------------------------------------------------------------
# parse_json: good bodies
# ---------------------------------------------------------------------------------------------------------


def test_it_parses_the_example_event():
    assert parse_json(EXAMPLE_BODY) == json.loads(EXAMPLE_BODY)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a:b":"c:d:e","t":"2012-12-02T00:30:08Z","u":"http://x"}', id="colons-in-strings"),
        pytest.param(b'{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}', id="same-key-in-different-objects"),
        pytest.param(b'{"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87":{"\xf0\x9f\x94\x91":true}}', id="unicode-keys"),
        pytest.param(b'{"e":"\\u00e9\\ud83d\\ude00"}', id="escaped-non-ascii-and-surrogate-pair"),
        pytest.param(b'{"literal":"\\\\u0000"}', id="escaped-backslash-before-u0000"),
        pytest.param(b'{"colon":"\\u003a","COLON":"\\u003A"}', id="escaped-colons"),
        pytest.param(b' \r\n\t{ "a" : [ 1 , 2 ] } \n', id="whitespace-everywhere"),
        pytest.param(b"[]", id="empty-array"),
        pytest.param(b'"just a string"', id="top-level-string"),
        pytest.param(b"null", id="top-level-null"),
        pytest.param(b"-0", id="minus-zero"),
        pytest.param(b"[1e308,-1e308,1e-999,5e-324]", id="edge-of-double-range"),
        pytest.param(b"[" * MAX_DOCUMENT_DEPTH + b"]" * MAX_DOCUMENT_DEPTH, id="64-levels"),
    ],
)
def test_it_accepts_valid_json(raw):
    assert parse_json(raw) == json.loads(raw)


@pytest.mark.parametrize(
    "number",
    [
        pytest.param(2**70, id="2**70"),
        pytest.param(-(2**70), id="minus-2**70"),
        pytest.param(2**64 - 1, id="largest-u64"),
        pytest.param(-(2**63), id="smallest-i64"),
        pytest.param(-(2**63) - 1, id="below-i64"),
        pytest.param(10**308, id="10**308"),
    ],
)
def test_it_keeps_big_integers_exact(number):
    document = parse_json(b'{"properties":{"n":%d}}' % number)

    assert document == {"properties": {"n": number}}
    assert type(document["properties"]["n"]) is int


def test_it_keeps_long_digit_strings_as_strings():
    assert parse_json(b'{"id":"12345678901234567890123"}') == {"id": "12345678901234567890123"}


# ---------------------------------------------------------------------------------------------------------
# validate_event: bad documents
# ---------------------------------------------------------------------------------------------------------

TOO_LATE = (RECEIVED_AT + FUTURE_TOLERANCE + timedelta(microseconds=1)).isoformat()


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        pytest.param([], "", NOT_AN_OBJECT, id="array-body"),
        pytest.param("event", "", NOT_AN_OBJECT, id="string-body"),
        pytest.param(None, "", NOT_AN_OBJECT, id="null-body"),
        pytest.param(1, "", NOT_AN_OBJECT, id="number-body"),
        # version
        pytest.param(canvas(version=DROP), "/version", REQUIRED, id="version-missing"),
        pytest.param(canvas(version=True), "/version", VERSION_INVALID, id="version-true"),
        pytest.param(canvas(version=1.0), "/version", VERSION_INVALID, id="version-float"),
        pytest.param(canvas(version="1"), "/version", VERSION_INVALID, id="version-string"),
        pytest.param(canvas(version=2), "/version", VERSION_INVALID, id="version-2"),
        pytest.param(canvas(version=None), "/version", VERSION_INVALID, id="version-null"),
        # type
        pytest.param(canvas(type=DROP), "/type", REQUIRED, id="type-missing"),
        pytest.param(canvas(type="track"), "/type", CANVAS_TYPE_INVALID, id="type-track"),
        pytest.param(canvas(type="Event"), "/type", CANVAS_TYPE_INVALID, id="type-capitalised"),
        pytest.param(canvas(type=None), "/type", CANVAS_TYPE_INVALID, id="type-null"),
        pytest.param(canvas(type=["event"]), "/type", CANVAS_TYPE_INVALID, id="type-array"),
        # event
        pytest.param(canvas(event=DROP), "/event", REQUIRED, id="event-missing"),
        pytest.param(canvas(event=""), "/event", BLANK, id="event-empty"),
        pytest.param(canvas(event="   "), "/event", BLANK, id="event-spaces"),
        pytest.param(canvas(event="\t\n\u00a0"), "/event", BLANK, id="event-unicode-whitespace"),
        pytest.param(
            canvas(event="x" * (MAX_EVENT_NAME + 1)),
            "/event",
            EVENT_TOO_LONG,
            id="event-201-chars",
        ),
        pytest.param(canvas(event=42), "/event", NOT_A_STRING, id="event-number"),
        pytest.param(canvas(event=None), "/event", NOT_A_STRING, id="event-null"),
        pytest.param(canvas(event=["a"]), "/event", NOT_A_STRING, id="event-array"),
        # properties
        pytest.param(canvas(properties=None), "/properties", NOT_AN_OBJECT, id="properties-null"),
        pytest.param(canvas(properties=[]), "/properties", NOT_AN_OBJECT, id="properties-array"),
        pytest.param(canvas(properties="a=1"), "/properties", NOT_AN_OBJECT, id="properties-string"),
        pytest.param(canvas(properties={"": 1}), "/properties/", KEY_EMPTY, id="properties-empty-key"),
        pytest.param(
            canvas(properties={"a": [{"b": {"": 1}}]}),
            "/properties/a/0/b/",
            KEY_EMPTY,
            id="nested-empty-key",
        ),
        pytest.param(
            canvas(properties={"k" * 256: 1}),
            "/properties/" + "k" * 256,
            KEY_TOO_LONG,
            id="key-256-chars",
        ),
        pytest.param(
            canvas(properties={"a/" + "b" * 254: 1}),
            "/properties/a~1" + "b" * 254,
            KEY_TOO_LONG,
            id="key-256-chars-with-slash",
        ),
        pytest.param(
            canvas(properties={**{f"key{i}": i for i in range(100)}, "k" * 256: 1}),
            "/properties/" + "k" * 256,
            KEY_TOO_LONG,
            id="key-256-chars-among-short-ones",
        ),
        pytest.param(
            canvas(properties=nested_objects(MAX_PROPERTIES_DEPTH + 1)),
            "/properties" + "/a" * 32,
            PROPERTIES_TOO_DEEP,
            id="properties-33-objects-deep",
        ),
        pytest.param(
            canvas(properties={"a": json.loads("[" * 32 + "]" * 32)}),
            "/properties/a" + "/0" * 31,
            PROPERTIES_TOO_DEEP,
            id="arrays-count-as-levels",
        ),
        pytest.param(
            canvas(properties={f"k{i}": i for i in range(MAX_PROPERTIES_KEYS + 1)}),
            "/properties",
            TOO_MANY_KEYS,
            id="1001-keys",
        ),
        pytest.param(
            canvas(properties={"n": {f"k{i}": i for i in range(MAX_PROPERTIES_KEYS)}}),
            "/properties",
            TOO_MANY_KEYS,
            id="1001-keys-counting-nested",
        ),
        pytest.param(
            canvas(properties={"list": [{f"k{i}": i for i in range(501)}, {f"k{i}": i for i in range(500)}]}),
            "/properties",
            TOO_MANY_KEYS,
            id="1002-keys-in-array-items",
        ),
        # timestamp
        pytest.param(canvas(timestamp="2012-12-02"), "/timestamp", TIMESTAMP_INVALID, id="date-without-time"),
        pytest.param(canvas(timestamp="2012-12-02T00:30:08"), "/timestamp", TIMESTAMP_INVALID, id="naive"),
        pytest.param(
            canvas(timestamp="2012-12-02T00:30:08.276"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="naive-with-ms",
        ),
        pytest.param(canvas(timestamp="2012-12-02T00:30Z"), "/timestamp", TIMESTAMP_INVALID, id="no-seconds"),
        pytest.param(canvas(timestamp=1354408208), "/timestamp", TIMESTAMP_INVALID, id="epoch-number"),
        pytest.param(canvas(timestamp=None), "/timestamp", TIMESTAMP_INVALID, id="timestamp-null"),
        pytest.param(canvas(timestamp="yesterday"), "/timestamp", TIMESTAMP_INVALID, id="words"),
        pytest.param(canvas(timestamp=""), "/timestamp", TIMESTAMP_INVALID, id="timestamp-empty"),
        pytest.param(
            canvas(timestamp="2012-13-02T00:30:08Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="month-13",
        ),
        pytest.param(canvas(timestamp="2012-02-30T00:30:08Z"), "/timestamp", TIMESTAMP_INVALID, id="feb-30"),
        pytest.param(canvas(timestamp="2012-12-02T24:00:00Z"), "/timestamp", TIMESTAMP_INVALID, id="hour-24"),
        pytest.param(
            canvas(timestamp="2016-12-31T23:59:60Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="leap-second",
        ),
        pytest.param(
            canvas(timestamp="2012-12-02T00:30:08+24:00"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="offset-24h",
        ),
        pytest.param(
            canvas(timestamp="2012-12-02T00:30:08.Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="empty-fraction",
        ),
        pytest.param(
            canvas(timestamp="2012-12-02T00:30:08.1234567890Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="ten-fraction-digits",
        ),
        pytest.param(
            canvas(timestamp="20121202T003008Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="basic-format",
        ),
        pytest.param(
            canvas(timestamp="2012-W48-7T00:30:08Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="week-date",
        ),
        pytest.param(
            canvas(timestamp=" 2012-12-02T00:30:08Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="leading-space",
        ),
        pytest.param(
            canvas(timestamp="\uff12\uff10\uff11\uff12-12-02T00:30:08Z"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="fullwidth-digits",
        ),
        pytest.param(
            canvas(timestamp="1969-12-31T23:59:59.999999Z"),
            "/timestamp",
            TIMESTAMP_TOO_EARLY,
            id="before-1970",
        ),
        pytest.param(
            canvas(timestamp="1970-01-01T01:00:00+02:00"),
            "/timestamp",
            TIMESTAMP_TOO_EARLY,
            id="before-1970-by-offset",
        ),
        pytest.param(
            canvas(timestamp="0001-01-01T00:00:00+05:00"),
            "/timestamp",
            TIMESTAMP_TOO_EARLY,
            id="year-1",
        ),
        pytest.param(canvas(timestamp=TOO_LATE), "/timestamp", TIMESTAMP_TOO_LATE, id="24h-and-1us-ahead"),
        pytest.param(
            canvas(timestamp="9999-12-31T23:59:59-05:00"),
            "/timestamp",
            TIMESTAMP_TOO_LATE,
            id="year-9999",
        ),
        # sentAt
        pytest.param(canvas(sentAt="2012-12-02"), "/sentAt", TIMESTAMP_INVALID, id="sent-at-date-only"),
        pytest.param(canvas(sentAt=1354408208000), "/sentAt", TIMESTAMP_INVALID, id="sent-at-number"),
        pytest.param(canvas(sentAt=TOO_LATE), "/sentAt", TIMESTAMP_TOO_LATE, id="sent-at-too-late"),
        pytest.param(
            canvas(sentAt="1960-01-01T00:00:00Z"),
            "/sentAt",
            TIMESTAMP_TOO_EARLY,
            id="sent-at-1960",
        ),
        # messageId
        pytest.param(canvas(messageId=""), "/messageId", EMPTY, id="message-id-empty"),
        pytest.param(
            canvas(messageId="m" * (MAX_MESSAGE_ID + 1)),
            "/messageId",
            MESSAGE_ID_TOO_LONG,
            id="message-id-101",
        ),
        pytest.param(canvas(messageId=5), "/messageId", NOT_A_STRING, id="message-id-number"),
        pytest.param(canvas(messageId=None), "/messageId", NOT_A_STRING, id="message-id-null"),
        # unknown fields
        pytest.param(
            canvas(userId="u1"),
            "/userId",
            UNKNOWN_FIELD.format(name="userId"),
            id="unknown-user-id",
        ),
        pytest.param(
            canvas(Event="x"),
            "/Event",
            UNKNOWN_FIELD.format(name="Event"),
            id="unknown-capitalised",
        ),
        pytest.param(
            canvas(**{"a/b": 1}),
            "/a~1b",
            UNKNOWN_FIELD.format(name="a/b"),
            id="unknown-with-slash",
        ),
        pytest.param(canvas(**{"": 1}), "/", UNKNOWN_FIELD.format(name=""), id="unknown-empty-name"),
    ],
)
def test_it_rejects_an_invalid_canvas_event_naming_the_path(document, path, message):
    payload, errors = validate_event(document, received_at=RECEIVED_AT)

    assert payload is None
    assert errors == [FieldError(path, message)]


def test_it_reports_all_problems_of_an_event_at_once():
    document = {
        "version": "1",
        "event": "",
        "properties": {"": 1, "ok": {"k" * 256: 2}},
        "timestamp": "2012-12-02",
        "sentAt": "nope",
        "messageId": "",
        "extra": True,
    }

    payload, errors = validate_event(document, received_at=RECEIVED_AT)

    assert payload is None
    assert errors == [
        FieldError("/version", VERSION_INVALID),
        FieldError("/type", REQUIRED),
        FieldError("/event", BLANK),
        FieldError("/properties/", KEY_EMPTY),
        FieldError("/properties/ok/" + "k" * 256, KEY_TOO_LONG),
        FieldError("/timestamp", TIMESTAMP_INVALID),
        FieldError("/sentAt", TIMESTAMP_INVALID),
        FieldError("/messageId", EMPTY),
        FieldError("/extra", UNKNOWN_FIELD.format(name="extra")),
    ]


def test_it_refuses_a_naive_received_at():
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_event(canvas(), received_at=datetime(2012, 12, 2))


# ---------------------------------------------------------------------------------------------------------
# validate_event: good documents
# ---------------------------------------------------------------------------------------------------------


def test_it_accepts_the_example_event():
    payload = valid(parse_json(EXAMPLE_BODY))

    sent = datetime(2012, 12, 2, 0, 30, 8, 276000, tzinfo=UTC)
    assert payload == EventPayload(
        event="Purchased an Item",
        properties={"revenue": "39.95", "shippingMethod": "2-day"},
        timestamp=sent,
        original_timestamp=sent,
        sent_at=None,
        message_id=None,
        type="track",
    )


def test_it_uses_received_at_when_there_is_no_timestamp():
    payload = valid(canvas(timestamp=DROP, properties=DROP))

    assert payload.timestamp == RECEIVED_AT
    assert payload.original_timestamp is None
    assert payload.properties == {}


def test_it_returns_the_timestamp_in_utc_and_keeps_the_original_offset():
    payload = valid(canvas(timestamp="2012-12-02T00:30:08+02:00"))

    assert payload.timestamp == datetime(2012, 12, 1, 22, 30, 8, tzinfo=UTC)
    assert payload.timestamp.tzinfo is UTC
    assert payload.original_timestamp.utcoffset() == timedelta(hours=2)
    assert payload.original_timestamp.isoformat() == "2012-12-02T00:30:08+02:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2012-12-02T00:30:08Z", datetime(2012, 12, 2, 0, 30, 8, tzinfo=UTC), id="no-fraction"),
        pytest.param(
            "2012-12-02T00:30:08.1Z",
            datetime(2012, 12, 2, 0, 30, 8, 100000, tzinfo=UTC),
            id="tenths",
        ),
        pytest.param(
            "2012-12-02T00:30:08.123456789Z",
            datetime(2012, 12, 2, 0, 30, 8, 123456, tzinfo=UTC),
            id="nanoseconds-truncated",
        ),
        pytest.param(
            "2012-12-02T06:00:08+0530",
            datetime(2012, 12, 2, 0, 30, 8, tzinfo=UTC),
            id="offset-without-colon",
        ),
        pytest.param("2012-12-01T19:30:08-05:00", datetime(2012, 12, 2, 0, 30, 8, tzinfo=UTC), id="negative"),
        pytest.param("2012-12-02 00:30:08-00:00", datetime(2012, 12, 2, 0, 30, 8, tzinfo=UTC), id="space"),
        pytest.param("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC), id="epoch-exactly"),
        pytest.param(
            (RECEIVED_AT + FUTURE_TOLERANCE).isoformat(),
            RECEIVED_AT + FUTURE_TOLERANCE,
            id="24h-ahead-exactly",
        ),
    ],
)
def test_it_accepts_iso_8601_timestamps_with_a_zone(text, expected):
    assert valid(canvas(timestamp=text)).timestamp == expected


def test_it_corrects_clock_skew_exactly_to_the_microsecond():
    payload = valid(
        canvas(timestamp="2012-12-02T00:30:08.276Z", sentAt="2012-12-02T00:30:10.500001Z", messageId="m-1"),
    )

    # received_at - (sentAt - timestamp) = 00:31:00 - 2.224001 s
    assert payload.timestamp == datetime(2012, 12, 2, 0, 30, 57, 775999, tzinfo=UTC)
    assert payload.original_timestamp == datetime(2012, 12, 2, 0, 30, 8, 276000, tzinfo=UTC)
    assert payload.sent_at == datetime(2012, 12, 2, 0, 30, 10, 500001, tzinfo=UTC)
    assert payload.message_id == "m-1"


def test_it_corrects_clock_skew_across_offsets():
    # The client clock is an hour fast and reports in +02:00; the event happened 5 s before sending.
    payload = valid(canvas(timestamp="2012-12-02T03:30:55+02:00", sentAt="2012-12-02T01:31:00Z"))

    assert payload.timestamp == RECEIVED_AT - timedelta(seconds=5)


def test_it_keeps_received_at_as_the_timestamp_when_only_sent_at_is_given():
    payload = valid(canvas(timestamp=DROP, sentAt="2012-12-02T00:30:59Z"))

    assert payload.timestamp == RECEIVED_AT
    assert payload.original_timestamp is None
    assert payload.sent_at == datetime(2012, 12, 2, 0, 30, 59, tzinfo=UTC)


def test_it_returns_the_timestamp_in_utc_when_received_at_has_another_zone():
    received_at = RECEIVED_AT.astimezone(timezone(timedelta(hours=-8)))

    payload = valid(canvas(timestamp=DROP), received_at=received_at)

    assert payload.timestamp == RECEIVED_AT
    assert payload.timestamp.tzinfo is UTC


def test_it_accepts_properties_at_the_limits():
    deep = nested_objects(MAX_PROPERTIES_DEPTH - 1)  # with "properties" itself: 32 levels, 31 keys
    properties = {f"k{i}": i for i in range(MAX_PROPERTIES_KEYS - 2 - 31)}
    properties["deep"] = deep
    properties["x" * MAX_KEY_LENGTH] = [1, 2, 3]  # 1,000 keys in all

    payload = valid(canvas(properties=properties))

    assert payload.properties is properties


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({f"k{i}": i for i in range(MAX_PROPERTIES_KEYS)}, id="exactly-1000-keys"),
        pytest.param({"n": {f"k{i}": i for i in range(MAX_PROPERTIES_KEYS - 1)}}, id="1000-keys-nested"),
        pytest.param(nested_objects(MAX_PROPERTIES_DEPTH), id="32-objects-deep"),
        pytest.param({"a": json.loads("[" * 31 + "]" * 31)}, id="32-levels-with-arrays"),
        pytest.param({"ключ": "значение", "鍵": {"🔑": True}, "a/b~c": 1}, id="unicode-and-pointer-chars"),
        pytest.param({"n": 2**70, "list": [None, True, 1.5, "s"]}, id="big-int-and-mixed-values"),
        pytest.param({}, id="empty"),
    ],
)
def test_it_accepts_valid_properties(properties):
    assert valid(canvas(properties=properties)).properties == properties


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        pytest.param("event", "event", "🛒" * MAX_EVENT_NAME, id="event-200-emoji"),
        pytest.param("event", "event", " padded ", id="event-kept-as-sent"),
        pytest.param("messageId", "message_id", "m" * MAX_MESSAGE_ID, id="message-id-100"),
    ],
)
def test_it_accepts_strings_at_their_limits(name, field, value):
    assert getattr(valid(canvas(**{name: value})), field) == value


# ---------------------------------------------------------------------------------------------------------
# validate_segment_message
# ---------------------------------------------------------------------------------------------------------

TS = "2012-12-02T00:30:08.276Z"
TS_DATETIME = datetime(2012, 12, 2, 0, 30, 8, 276000, tzinfo=UTC)


def segment(document: dict, **kwargs) -> EventPayload:
    payload, errors = validate_segment_message(document, received_at=RECEIVED_AT, **kwargs)
    assert errors == []
    assert payload is not None
    return payload


def test_it_accepts_a_full_segment_track_call():
    document = {
        "type": "track",
        "userId": "019mr8mf4r",
        "anonymousId": "507f191e810c19729de860ea",
        "event": "Item Purchased",
        "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
        "context": {"ip": "24.5.68.47", "library": {"name": "analytics.js", "version": "2.11.1"}},
        "integrations": {"All": True, "Mixpanel": False},
        "timestamp": TS,
        "sentAt": TS,
        "receivedAt": "2030-01-01T00:00:00Z",
        "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
        "writeKey": "wk",
        "version": 2,
        "channel": "browser",
        "_metadata": {"bundled": ["Segment.io"]},
    }

    payload = segment(document, default_type="track")

    assert payload == EventPayload(
        event="Item Purchased",
        properties={"name": "Leap to Conclusions Mat", "revenue": 14.99},
        timestamp=RECEIVED_AT,  # sent the moment it happened: corrected to the receive time
        original_timestamp=TS_DATETIME,
        sent_at=TS_DATETIME,
        message_id="022bb90c-bbac-11e4-8dfc-aa07a5b093db",
        type="track",
        context={"ip": "24.5.68.47", "library": {"name": "analytics.js", "version": "2.11.1"}},
        user_id="019mr8mf4r",
        anonymous_id="507f191e810c19729de860ea",
        integrations={"All": True, "Mixpanel": False},
    )


def test_it_takes_the_type_from_the_endpoint_and_treats_nulls_as_absent():
    # What analytics-python sends for track(user_id, event): nulls for everything it was not given.
    document = {
        "userId": 42,
        "anonymousId": None,
        "event": "Signed Up",
        "properties": None,
        "context": None,
        "integrations": None,
        "timestamp": None,
        "messageId": None,
    }

    payload = segment(document, default_type="track")

    assert (payload.type, payload.event, payload.user_id, payload.anonymous_id) == (
        "track",
        "Signed Up",
        "42",
        None,
    )
    assert payload.properties == {}
    assert payload.timestamp == RECEIVED_AT


def test_it_stores_identify_traits_as_properties():
    traits = {"name": "Peter Gibbons", "email": "peter@example.com"}

    payload = segment({"type": "identify", "userId": "u1", "traits": traits})

    assert (payload.type, payload.event, payload.properties, payload.traits) == (
        "identify",
        "identify",
        traits,
        traits,
    )


@pytest.mark.parametrize(
    ("document", "event"),
    [
        pytest.param({"type": "page", "name": "Pricing", "category": "Docs"}, "Pricing", id="page-named"),
        pytest.param({"type": "page"}, "page", id="page-unnamed"),
        pytest.param({"type": "page", "name": ""}, "page", id="page-empty-name"),
        pytest.param({"type": "screen", "name": "Home", "properties": {"a": 1}}, "Home", id="screen-named"),
        pytest.param({"type": "screen", "name": None}, "screen", id="screen-null-name"),
    ],
)
def test_it_names_page_and_screen_events_after_the_page(document, event):
    payload = segment({**document, "anonymousId": "a1"})

    assert (payload.type, payload.event) == (document["type"], event)
    assert payload.name == (event if event not in ("page", "screen") else None)


def test_it_keeps_the_page_category_and_properties():
    payload = segment(
        {"type": "page", "anonymousId": "a", "name": "P", "category": "C", "properties": {"u": 1}},
    )

    assert (payload.category, payload.properties) == ("C", {"u": 1})


def test_it_accepts_a_group_call():
    payload = segment({"type": "group", "userId": "u1", "groupId": 7, "traits": {"plan": "Enterprise"}})

    assert (payload.event, payload.group_id, payload.properties) == ("group", "7", {"plan": "Enterprise"})


def test_it_accepts_an_alias_call():
    payload = segment({"type": "alias", "userId": "u1", "previousId": "anon-1"}, default_type="alias")

    assert (payload.event, payload.user_id, payload.previous_id) == ("alias", "u1", "anon-1")
    assert payload.properties == {}


def test_it_corrects_segment_clock_skew_from_original_timestamp():
    document = {
        "type": "track",
        "anonymousId": "a",
        "event": "E",
        "originalTimestamp": "2012-12-02T00:30:08.276Z",
        "sentAt": "2012-12-02T00:30:10.500001Z",
    }

    payload = segment(document)

    assert payload.timestamp == datetime(2012, 12, 2, 0, 30, 57, 775999, tzinfo=UTC)
    assert payload.original_timestamp == TS_DATETIME


def test_it_uses_the_batch_sent_at_when_the_item_has_none():
    batch_sent_at = datetime(2012, 12, 2, 0, 30, 10, 500001, tzinfo=UTC)

    payload = segment(
        {"type": "track", "userId": "u", "event": "E", "timestamp": TS},
        batch_sent_at=batch_sent_at,
    )

    assert payload.timestamp == datetime(2012, 12, 2, 0, 30, 57, 775999, tzinfo=UTC)
    assert payload.sent_at == batch_sent_at


def track(**fields) -> dict:
    return {"type": "track", "userId": "u1", "event": "E", **fields}


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        pytest.param([], "", NOT_AN_OBJECT, id="not-an-object"),
        pytest.param({"userId": "u", "event": "E"}, "/type", REQUIRED, id="type-missing-in-batch"),
        pytest.param(track(type="Track"), "/type", SEGMENT_TYPE_INVALID, id="type-capitalised"),
        pytest.param(track(type="event"), "/type", SEGMENT_TYPE_INVALID, id="type-canvas"),
        pytest.param(track(type=["track"]), "/type", SEGMENT_TYPE_INVALID, id="type-array"),
        pytest.param(
            {"type": "track", "event": "E"},
            "",
            IDENTITY_REQUIRED,
            id="no-user-or-anonymous-id",
        ),
        pytest.param(
            {"type": "track", "event": "E", "userId": None, "anonymousId": None},
            "",
            IDENTITY_REQUIRED,
            id="null-user-and-anonymous-id",
        ),
        pytest.param(track(userId=True), "/userId", ID_INVALID, id="user-id-boolean"),
        pytest.param(track(userId=1.5), "/userId", ID_INVALID, id="user-id-float"),
        pytest.param(track(userId=""), "/userId", EMPTY, id="user-id-empty"),
        pytest.param(track(userId="u" * 256), "/userId", ID_TOO_LONG, id="user-id-256-chars"),
        pytest.param(track(anonymousId={}), "/anonymousId", ID_INVALID, id="anonymous-id-object"),
        pytest.param(track(event=None), "/event", REQUIRED, id="track-event-null"),
        pytest.param({"type": "track", "userId": "u"}, "/event", REQUIRED, id="track-event-missing"),
        pytest.param(track(event=" "), "/event", BLANK, id="track-event-blank"),
        pytest.param(track(event="e" * 201), "/event", EVENT_TOO_LONG, id="track-event-201-chars"),
        pytest.param(track(properties=[1]), "/properties", NOT_AN_OBJECT, id="properties-array"),
        pytest.param(track(context="web"), "/context", NOT_AN_OBJECT, id="context-string"),
        pytest.param(track(integrations=[]), "/integrations", NOT_AN_OBJECT, id="integrations-array"),
        pytest.param(track(context={"": 1}), "/context/", KEY_EMPTY, id="context-empty-key"),
        pytest.param(
            {"type": "identify", "userId": "u", "traits": nested_objects(33)},
            "/traits" + "/a" * 32,
            PROPERTIES_TOO_DEEP,
            id="traits-too-deep",
        ),
        pytest.param(
            {"type": "identify", "userId": "u", "traits": 1},
            "/traits",
            NOT_AN_OBJECT,
            id="traits-1",
        ),
        pytest.param(
            {"type": "group", "userId": "u"},
            "/groupId",
            REQUIRED,
            id="group-without-group-id",
        ),
        pytest.param(
            {"type": "alias", "userId": "u"},
            "/previousId",
            REQUIRED,
            id="alias-without-previous",
        ),
        pytest.param(
            {"type": "alias", "anonymousId": "a", "previousId": "p"},
            "/userId",
            REQUIRED,
            id="alias-without-user-id",
        ),
        pytest.param(
            {"type": "page", "userId": "u", "name": 5},
            "/name",
            NOT_A_STRING,
            id="page-name-5",
        ),
        pytest.param(
            {"type": "page", "userId": "u", "category": 5},
            "/category",
            NOT_A_STRING,
            id="category-5",
        ),
        pytest.param(
            track(timestamp="2012-12-02"),
            "/timestamp",
            TIMESTAMP_INVALID,
            id="timestamp-date",
        ),
        pytest.param(
            track(originalTimestamp=12),
            "/originalTimestamp",
            TIMESTAMP_INVALID,
            id="original-number",
        ),
        pytest.param(track(sentAt=TOO_LATE), "/sentAt", TIMESTAMP_TOO_LATE, id="sent-at-too-late"),
        pytest.param(
            track(messageId="m" * 101),
            "/messageId",
            MESSAGE_ID_TOO_LONG,
            id="message-id-101",
        ),
        pytest.param(track(writeKey=5), "/writeKey", NOT_A_STRING, id="write-key-number"),
        pytest.param(track(channel=1), "/channel", NOT_A_STRING, id="channel-number"),
        pytest.param(track(foo=1), "/foo", UNKNOWN_FIELD.format(name="foo"), id="unknown-field"),
        pytest.param(
            track(traits={}),
            "/traits",
            UNKNOWN_FIELD.format(name="traits"),
            id="traits-on-track",
        ),
        pytest.param(
            {"type": "identify", "userId": "u", "event": "E"},
            "/event",
            UNKNOWN_FIELD.format(name="event"),
            id="event-on-identify",
        ),
    ],
)
def test_it_rejects_an_invalid_segment_message_naming_the_path(document, path, message):
    payload, errors = validate_segment_message(document, received_at=RECEIVED_AT)

    assert payload is None
    assert errors == [FieldError(path, message)]


def test_it_rejects_a_type_that_contradicts_the_endpoint():
    payload, errors = validate_segment_message(
        {"type": "identify", "userId": "u"},
        received_at=RECEIVED_AT,
        default_type="track",
    )

    assert payload is None
    assert errors == [FieldError("/type", SEGMENT_TYPE_MISMATCH.format(expected="track"))]


def test_it_reports_all_problems_of_a_segment_message_at_once():
    document = {"type": "group", "traits": [], "timestamp": "soon", "bogus": 1}

    payload, errors = validate_segment_message(document, received_at=RECEIVED_AT)

    assert payload is None
    assert errors == [
        FieldError("", IDENTITY_REQUIRED),
        FieldError("/timestamp", TIMESTAMP_INVALID),
        FieldError("/traits", NOT_AN_OBJECT),
        FieldError("/groupId", REQUIRED),
        FieldError("/bogus", UNKNOWN_FIELD.format(name="bogus")),
    ]


def _nested(depth: int) -> dict:
    document: dict = {"leaf": 1}
    for _ in range(depth - 1):
        document = {"n": document}
    return document


# Values for each field of a track call: good ones, and each kind of bad one.
_GOOD_OBJECTS = [
    {},
    {"revenue": 39.95, "currency": "USD", "ok": True, "none": None},
    {"items": [{"sku": "a"}, [1, {"b": 2}]], "deep": _nested(MAX_PROPERTIES_DEPTH - 1)},
    {"x" * MAX_KEY_LENGTH: 1},
    {"k" * 200: 1, "j" * 200: 2},
    {f"k{n}": n for n in range(MAX_PROPERTIES_KEYS)},
]
_BAD_OBJECTS = [
    {"deep": _nested(MAX_PROPERTIES_DEPTH)},
    {"": 1},
    {"x" * (MAX_KEY_LENGTH + 1): 1},
    {"nested": {"": 1}},
    {"nested": {"x" * (MAX_KEY_LENGTH + 1): 1}},
    {f"k{n}": n for n in range(MAX_PROPERTIES_KEYS + 1)},
    {"many": {f"k{n}": n for n in range(MAX_PROPERTIES_KEYS)}},
    [],
    "{}",
]
_GOOD_MOMENTS = [
    TS,
    "2012-12-02T00:30:08Z",
    "2012-12-02 00:30:08.276+05:30",
    "2012-12-02T00:30:08.123456-0800",
    "2012-12-02T00:30:08+15:59",
    "2012-12-03T00:30:59Z",
]
_BAD_MOMENTS = [
    "2012-12-02T00:30:08+16:00",
    "2012-12-02T00:30:08",
    "2012-12-02",
    "1969-12-31T23:59:59Z",
    "2012-12-03T00:31:01Z",
    "2012-02-30T00:00:00Z",
    "soon",
    1354408208,
]
_GOOD_FIELDS: dict[str, list[Any]] = {
    "event": ["e", "Item Purchased", "x" * MAX_EVENT_NAME],
    "userId": ["u", "x" * 255, 7],
    "anonymousId": ["a", "x" * 255, 7],
    "messageId": ["m-1", "x" * MAX_MESSAGE_ID],
    "properties": _GOOD_OBJECTS,
    "context": _GOOD_OBJECTS,
    "integrations": _GOOD_OBJECTS,
    "timestamp": _GOOD_MOMENTS,
    "originalTimestamp": _GOOD_MOMENTS,
    "sentAt": _GOOD_MOMENTS,
    "writeKey": ["wk"],
    "channel": ["server"],
    "receivedAt": ["whenever", None],
    "version": [2],
    "_metadata": [{"bundled": []}],
}
_BAD_FIELDS: dict[str, list[Any]] = {
    "type": ["event", "TRACK", 1],
    "event": ["", " ", "\t", "x" * (MAX_EVENT_NAME + 1), 3],
    "userId": ["", "x" * 256, True, 1.5, ["u"]],
    "anonymousId": ["", "x" * 256, True],
    "messageId": ["", "x" * (MAX_MESSAGE_ID + 1), 5],
    "properties": _BAD_OBJECTS,
    "context": _BAD_OBJECTS,
    "integrations": _BAD_OBJECTS,
    "timestamp": _BAD_MOMENTS,
    "originalTimestamp": _BAD_MOMENTS,
    "sentAt": _BAD_MOMENTS,
    "writeKey": [1],
    "channel": [False],
    "traits": [{"plan": "pro"}],
    "bogus": [1],
}


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in _GOOD_FIELDS.items() for value in values]
)
def test_a_track_call_takes_each_good_value(name, value):
    payload = segment({"type": "track", "event": "e", "userId": "u", name: value})

    assert payload.type == "track"


@pytest.mark.parametrize(("name", "value"), [(name, value) for name, values in _BAD_FIELDS.items() for value in values])
def test_a_track_call_is_refused_for_each_bad_value_at_its_field(name, value):
    payload, errors = validate_segment_message(
        {"type": "track", "event": "e", "userId": "u", name: value}, received_at=RECEIVED_AT
    )

    assert payload is None
    assert errors
    assert {error.path.split("/")[1] for error in errors} == {name}


def _canvas(**fields) -> dict:
    return {"version": 1, "type": "event", "event": "Signed up", **fields}


# Values for each field of a Canvas event: good ones, and each kind of bad one, null included.
_GOOD_CANVAS_FIELDS = {name: _GOOD_FIELDS[name] for name in ("event", "properties", "timestamp", "sentAt", "messageId")}
_BAD_CANVAS_FIELDS: dict[str, list[Any]] = {
    "version": [2, True, 1.0, "1", None],
    "type": ["track", "EVENT", None, 1],
    **{name: [*_BAD_FIELDS[name], None] for name in ("event", "properties", "timestamp", "sentAt", "messageId")},
    "userId": ["u"],
}


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in _GOOD_CANVAS_FIELDS.items() for value in values]
)
def test_a_canvas_event_takes_each_good_value(name, value):
    assert valid(_canvas(**{name: value})).event == _canvas(**{name: value})["event"]


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in _BAD_CANVAS_FIELDS.items() for value in values]
)
def test_a_canvas_event_is_refused_for_each_bad_value_at_its_field(name, value):
    payload, errors = validate_event(_canvas(**{name: value}), received_at=RECEIVED_AT)

    assert payload is None
    assert errors
    assert {error.path.split("/")[1] for error in errors} == {name}


# ---------------------------------------------------------------------------------------------------------
# validate_batch and validate_batch_item
# ---------------------------------------------------------------------------------------------------------

NO_ENVELOPE = BatchEnvelope(items=[], context=None, sent_at=None)


def envelope(document) -> BatchEnvelope:
    batch, errors = validate_batch(document, received_at=RECEIVED_AT)
    assert errors == []
    assert batch is not None
    return batch


def test_it_accepts_a_batch_with_what_segment_lets_it_say_once():
    items = [track()]
    document = {
        "batch": items,
        "context": {"library": {"name": "analytics-python"}},
        "integrations": {"All": True},
        "sentAt": TS,
        "writeKey": "wk",
        "metadata": {},
        "_metadata": {},
    }

    batch = envelope(document)

    assert batch == BatchEnvelope(items=items, context={"library": {"name": "analytics-python"}}, sent_at=TS_DATETIME)
    assert batch.items is items


def test_a_batch_takes_null_for_absent():
    assert envelope({"batch": [], "context": None, "sentAt": None}) == NO_ENVELOPE


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        pytest.param([], [("", BATCH_NOT_AN_OBJECT)], id="array"),
        pytest.param(None, [("", BATCH_NOT_AN_OBJECT)], id="null"),
        pytest.param({}, [("/batch", BATCH_NOT_AN_ARRAY)], id="batch-missing"),
        pytest.param({"batch": None}, [("/batch", BATCH_NOT_AN_ARRAY)], id="batch-null"),
        pytest.param({"batch": {}}, [("/batch", BATCH_NOT_AN_ARRAY)], id="batch-object"),
        pytest.param({"batch": [], "context": "web"}, [("/context", NOT_AN_OBJECT)], id="context-string"),
        pytest.param({"batch": [], "context": {"": 1}}, [("/context/", KEY_EMPTY)], id="context-empty-key"),
        pytest.param(
            {"batch": [], "context": nested_objects(33)},
            [("/context" + "/a" * 32, PROPERTIES_TOO_DEEP)],
            id="context-too-deep",
        ),
        pytest.param({"batch": [], "sentAt": "now"}, [("/sentAt", TIMESTAMP_INVALID)], id="sent-at-words"),
        pytest.param({"batch": [], "extra": 1}, [("/extra", UNKNOWN_FIELD.format(name="extra"))], id="unknown"),
        pytest.param({"batch": [], "a/b": 1}, [("/a~1b", UNKNOWN_FIELD.format(name="a/b"))], id="unknown-with-slash"),
        pytest.param(
            {"events": [], "sentAt": 1, "context": []},
            [
                ("/batch", BATCH_NOT_AN_ARRAY),
                ("/context", NOT_AN_OBJECT),
                ("/sentAt", TIMESTAMP_INVALID),
                ("/events", UNKNOWN_FIELD.format(name="events")),
            ],
            id="every-problem-in-order",
        ),
    ],
)
def test_it_refuses_a_bad_batch_naming_every_problem(document, errors):
    batch, found = validate_batch(document, received_at=RECEIVED_AT)

    assert batch is None
    assert found == [FieldError(path, message) for path, message in errors]


def test_a_batch_lends_its_sent_at_and_context_to_segment_items_without_their_own():
    batch = envelope({"batch": [], "context": {"ip": "1.2.3.4"}, "sentAt": "2012-12-02T00:30:10.500001Z"})
    own = {"context": {"ip": "5.6.7.8"}, "sentAt": TS}

    lent, _ = validate_batch_item(track(timestamp=TS), index=0, received_at=RECEIVED_AT, batch=batch)
    null, _ = validate_batch_item(track(context=None), index=1, received_at=RECEIVED_AT, batch=batch)
    kept, _ = validate_batch_item(track(**own), index=2, received_at=RECEIVED_AT, batch=batch)
    canvas_event, _ = validate_batch_item(_canvas(timestamp=TS), index=3, received_at=RECEIVED_AT, batch=batch)

    assert (lent.context, lent.sent_at) == ({"ip": "1.2.3.4"}, batch.sent_at)
    assert lent.timestamp == datetime(2012, 12, 2, 0, 30, 57, 775999, tzinfo=UTC)
    assert null.context == {"ip": "1.2.3.4"}
    assert (kept.context, kept.sent_at) == ({"ip": "5.6.7.8"}, TS_DATETIME)
    assert (canvas_event.context, canvas_event.sent_at) == (None, None)


@pytest.mark.parametrize(
    ("item", "errors"),
    [
        pytest.param([], [("/batch/4", NOT_AN_OBJECT)], id="not-an-object"),
        pytest.param({"userId": "u", "event": "E"}, [("/batch/4/type", REQUIRED)], id="segment-type-missing"),
        pytest.param(track(sentAt="now"), [("/batch/4/sentAt", TIMESTAMP_INVALID)], id="segment-sent-at"),
        pytest.param(_canvas(event=""), [("/batch/4/event", BLANK)], id="canvas-event-blank"),
        pytest.param(
            {"version": 1, "type": "track", "event": "E"},
            [("/batch/4/type", CANVAS_TYPE_INVALID)],
            id="a-version-makes-a-canvas-event",
        ),
        pytest.param({"type": "event", "event": "E"}, [("/batch/4/version", REQUIRED)], id="type-event-too"),
    ],
)
def test_a_batch_item_is_checked_as_it_would_be_alone_at_its_own_path(item, errors):
    payload, found = validate_batch_item(item, index=4, received_at=RECEIVED_AT, batch=NO_ENVELOPE)

    assert payload is None
    assert found == [FieldError(path, message) for path, message in errors]


# The same sentAt, as the batch's own and as an item's, meets the one rule: the same message at the same path
# below each. They once differed: a +20:00 offset was "too large" in an item and "invalid" in the envelope.
@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("2012-12-02T00:30:08+20:00", TIMESTAMP_OFFSET_TOO_LARGE, id="offset-plus-20"),
        pytest.param("2012-12-02T00:30:08-20:00", TIMESTAMP_OFFSET_TOO_LARGE, id="offset-minus-20"),
        pytest.param("2012-12-02T00:30:08+2000", TIMESTAMP_OFFSET_TOO_LARGE, id="offset-plus-20-no-colon"),
        pytest.param("2012-12-02T00:30:08+16:00", TIMESTAMP_OFFSET_TOO_LARGE, id="offset-16"),
        pytest.param("2012-12-02T00:30:08-23:59", TIMESTAMP_OFFSET_TOO_LARGE, id="offset-minus-23-59"),
        pytest.param("2012-12-02T00:30:08+24:00", TIMESTAMP_INVALID, id="offset-24"),
        pytest.param("2012-12-02T00:30:08", TIMESTAMP_INVALID, id="naive"),
        pytest.param("2012-12-02", TIMESTAMP_INVALID, id="date-only"),
        pytest.param("now", TIMESTAMP_INVALID, id="words"),
        pytest.param("", TIMESTAMP_INVALID, id="empty"),
        pytest.param(1354408208, TIMESTAMP_INVALID, id="number"),
        pytest.param(True, TIMESTAMP_INVALID, id="true"),
        pytest.param([TS], TIMESTAMP_INVALID, id="array"),
        pytest.param("1969-12-31T23:59:59Z", TIMESTAMP_TOO_EARLY, id="before-1970"),
        pytest.param("1970-01-01T10:00:00+10:30", TIMESTAMP_TOO_EARLY, id="before-1970-by-offset"),
        pytest.param(TOO_LATE, TIMESTAMP_TOO_LATE, id="too-late"),
    ],
)
def test_a_batch_and_its_items_refuse_a_bad_sent_at_alike(value, message):
    _, batch_errors = validate_batch({"batch": [], "sentAt": value}, received_at=RECEIVED_AT)
    _, item_errors = validate_batch_item(track(sentAt=value), index=0, received_at=RECEIVED_AT, batch=NO_ENVELOPE)
    _, event_errors = validate_event(canvas(sentAt=value), received_at=RECEIVED_AT)

    assert batch_errors == [FieldError("/sentAt", message)]
    assert item_errors == [FieldError("/batch/0/sentAt", message)]
    assert event_errors == [FieldError("/sentAt", message)]


@pytest.mark.parametrize("value", [*_GOOD_MOMENTS, "2012-12-02T00:30:08-15:59", "1970-01-01T00:00:00Z", None])
def test_a_batch_and_its_items_take_a_good_sent_at_alike(value):
    batch = envelope({"batch": [], "sentAt": value})
    item, errors = validate_batch_item(track(sentAt=value), index=0, received_at=RECEIVED_AT, batch=NO_ENVELOPE)

    assert errors == []
    assert batch.sent_at == item.sent_at
    assert value is None or batch.sent_at.isoformat(timespec="microseconds") == datetime.fromisoformat(value).isoformat(
        timespec="microseconds"
    )


def test_a_table_that_names_an_attribute_its_result_lacks_is_refused_at_once():
    with pytest.raises(ValueError, match="EventPayload has no attribute userid"):
        validation.MessageKind(
            {"userId": validation.optional(validation._identifier, into="userid")},
            builds=EventPayload,
            nulls_are_absent=True,
        )
