"""Validation of Canvas Events ingestion bodies: strict JSON parsing and the event schemas.

Pure Python, no Django, so it can be tested and timed on its own. The API views call it as

    document = parse_json(request_body)                      # InvalidJSON -> 400 "invalid_json"
    payload, errors = validate_event(document, received_at=now)   # errors -> 400 "invalid_payload"

Every problem is a FieldError whose path is an RFC 6901 JSON Pointer into the request body
("/properties/address/city"; "" is the whole body), so clients can find the offending value.
"""

import codecs
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from events.tokens import secret

# Limits. Event.event is varchar(200), Event.message_id varchar(100), the id columns varchar(255).
MAX_DOCUMENT_DEPTH = 64
MAX_EVENT_NAME = 200
MAX_PROPERTIES_DEPTH = 32
MAX_PROPERTIES_KEYS = 1000
MAX_KEY_LENGTH = 255
MAX_MESSAGE_ID = 100
MAX_ID_LENGTH = 255
FUTURE_TOLERANCE = timedelta(hours=24)
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
# PostgreSQL's timestamptz refuses UTC offsets of 16 hours or more; Python's parser takes them up to 23:59.
MAX_UTC_OFFSET = timedelta(hours=16)

SEGMENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")

# Messages: the body as a whole (parse_json).
EMPTY_BODY = "The body is empty."
BYTE_ORDER_MARK = "The body must not start with a UTF-8 byte order mark."
INVALID_UTF8 = "The body is not valid UTF-8 (bad byte at offset {offset})."
SYNTAX_ERROR = "The body is not valid JSON: {detail}."
DOCUMENT_TOO_DEEP = f"Nested more than {MAX_DOCUMENT_DEPTH} levels deep."
NOT_A_NUMBER = "NaN, Infinity and -Infinity are not valid JSON numbers."
NUMBER_OUT_OF_RANGE = "The number is outside the range of a double-precision float."
LONE_SURROGATE = "The string contains an unpaired UTF-16 surrogate (\\ud800-\\udfff)."
LONE_SURROGATE_IN_KEY = "The key contains an unpaired UTF-16 surrogate (\\ud800-\\udfff)."
NUL_CHARACTER = "The string contains the NUL character (\\u0000), which cannot be stored."
NUL_CHARACTER_IN_KEY = "The key contains the NUL character (\\u0000), which cannot be stored."
DUPLICATE_KEY = 'The key "{key}" appears more than once in this object.'

# Messages: fields (validate_event, validate_segment_message).
REQUIRED = "This field is required."
UNKNOWN_FIELD = 'Unknown field "{name}".'
NOT_AN_OBJECT = "Must be a JSON object."
NOT_A_STRING = "Must be a string."
BLANK = "Must not be blank."
EMPTY = "Must not be empty."
VERSION_INVALID = "Must be the integer 1."
CANVAS_TYPE_INVALID = 'Must be the string "event".'
EVENT_TOO_LONG = f"Must be at most {MAX_EVENT_NAME} characters long."
MESSAGE_ID_TOO_LONG = f"Must be at most {MAX_MESSAGE_ID} characters long."
TIMESTAMP_INVALID = "Must be an ISO-8601 date and time with Z or a UTC offset, e.g. 2012-12-02T00:30:08.276Z."
TIMESTAMP_TOO_EARLY = "Must not be before 1970-01-01T00:00:00Z."
TIMESTAMP_TOO_LATE = "Must not be more than 24 hours after the time Canvas received it."
TIMESTAMP_OFFSET_TOO_LARGE = "The UTC offset must be less than 16 hours (time zones run from -12:00 to +14:00)."
PROPERTIES_TOO_DEEP = f"Nested more than {MAX_PROPERTIES_DEPTH} levels deep."
TOO_MANY_KEYS = f"Has more than {MAX_PROPERTIES_KEYS} keys in all, counting nested objects."
KEY_EMPTY = "Keys must not be empty."
KEY_TOO_LONG = f"Keys must be at most {MAX_KEY_LENGTH} characters long."
ID_INVALID = "Must be a string or an integer."
ID_TOO_LONG = f"Must be at most {MAX_ID_LENGTH} characters long."
SEGMENT_TYPE_INVALID = f"Must be one of: {', '.join(sorted(SEGMENT_TYPES))}."
SEGMENT_TYPE_MISMATCH = 'Must be "{expected}" on this endpoint.'
IDENTITY_REQUIRED = 'Needs "userId" or "anonymousId".'


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str  # RFC 6901 JSON Pointer; "" is the whole body
    message: str


class InvalidJSON(Exception):
    """The body is not acceptable JSON at all. `errors` has at least one entry."""

    errors: list[FieldError]

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.path or '(body)'}: {e.message}" for e in errors))
        self.errors = errors


# Not frozen: a frozen dataclass sets each of its sixteen fields through object.__setattr__, and a batch builds
# one per event. Nothing changes a payload after validation. validate_segment_message passes the fields by
# position: keep their order.
@dataclass(slots=True)
class EventPayload:
    """A validated event, ready to store. Timestamps are tz-aware; `timestamp` is corrected to UTC."""

    event: str
    properties: dict
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    message_id: str | None
    type: str = "track"
    context: dict | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    traits: dict | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    integrations: dict | None = None


# --------------------------------------------------------------------------------------------------------
# parse_json
#
# Fast path: orjson, then one cheap walk of the result. orjson already rejects invalid UTF-8, NaN/Infinity,
# 1e999, lone surrogates and nesting over 1024, but it keeps the last of duplicate keys, decodes "\u0000"
# and turns integers beyond 64 bits into floats. The walk checks the depth and counts keys plus the
# colons inside strings: in JSON every other colon separates a key from its value, so without duplicates
# the total equals raw.count(b":"). Anything the fast path cannot judge goes to the slow path, which parses
# again with the json module and hooks, and finds and names every problem.
#
# Before the walk, orjson's own indented output of the result answers the same three questions in C, at less
# than half the walk's cost: its colons are the keys left plus the colons inside strings (orjson never escapes
# one), so a duplicate key, which drops a key and its value, leaves it fewer colons than the body; an object or
# array below MAX_DOCUMENT_DEPTH starts a line indented by 2 * MAX_DOCUMENT_DEPTH spaces (newlines inside
# strings are escaped); a float of 2**63 or more is written with "e+" (orjson uses an exponent from 1e16). A
# body whose output has such a line or any "+" (in a string, say) is walked as before.
# --------------------------------------------------------------------------------------------------------

# "\u0000" decodes to NUL and "\u003a" to a colon missing from the raw bytes (it would upset the count).
_RISKY_ESCAPE = re.compile(rb"\\u00(?:00|3[aA])")
# orjson turns integers beyond 64 bits into floats (>= 2**64, or < -2**63): such floats send the body to the
# slow path, which keeps integers exact.
_LOSSY_FLOAT = 2.0**63
_TOO_DEEP_LINE = b"\n" + b" " * (2 * MAX_DOCUMENT_DEPTH)
_BAD_CHARACTER = re.compile(r"[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"
_LARGEST_DOUBLE = int(sys.float_info.max)


def parse_json(raw: bytes) -> Any:
    """Parse a request body strictly. Raises InvalidJSON for invalid UTF-8 (and a BOM), syntax errors,
    NaN/Infinity, numbers beyond the double range, lone surrogates and NUL in any key or value, duplicate
    keys (at the path of the duplicate) and nesting deeper than MAX_DOCUMENT_DEPTH. Integers beyond 64 bits
    are kept exact. Safe on hostile input: no recursion deeper than MAX_DOCUMENT_DEPTH + 1.

    Tokens and writeKey values in the document are replaced by their hints (events.tokens.secret.scrub_document), so
    that no event stored, no dry run and no receipt holds one."""
    return secret.scrub_document(_parse_strictly(raw), raw)


def _parse_strictly(raw: bytes) -> Any:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson stops at 1024 levels, without recursing
            raise InvalidJSON([FieldError("", DOCUMENT_TOO_DEEP)]) from None
        return _parse_slowly(raw, fast_error=exc.msg)
    if _RISKY_ESCAPE.search(raw) is None:
        if _plainly_valid(document, raw):
            return document
        try:
            if _tally(document, 1) == raw.count(b":"):
                return document
        except _TooDeep as exc:
            raise InvalidJSON([FieldError("".join(reversed(exc.tokens)), DOCUMENT_TOO_DEEP)]) from None
        except _LossyNumber:
            pass
    return _parse_slowly(raw, fast_error=None)


def _plainly_valid(document: Any, raw: bytes) -> bool:
    """True when orjson's indented output of document shows no duplicate key, no nesting past
    MAX_DOCUMENT_DEPTH and no float that may be an integer orjson could not keep exact (see above); False when
    the walk must judge."""
    try:
        echo = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    except orjson.JSONEncodeError:  # nesting past orjson's own limit for writing (255)
        return False
    return b"+" not in echo and _TOO_DEEP_LINE not in echo and echo.count(b":") == raw.count(b":")


class _TooDeep(Exception):
    """Raised by _tally; each frame adds its pointer token while the exception unwinds."""

    def __init__(self) -> None:
        self.tokens: list[str] = []


class _LossyNumber(Exception):
    """Raised by _tally on a float that may be an integer orjson could not keep exact."""


def _tally(value: Any, depth: int) -> int:
    """Keys of all objects plus colons inside all strings, in value and below. Written for speed: it runs on
    every body."""
    kind = type(value)
    if kind is str:
        return value.count(":")
    if kind is float and not -_LOSSY_FLOAT < value < _LOSSY_FLOAT:
        raise _LossyNumber
    if kind is not dict and kind is not list:
        return 0
    if depth > MAX_DOCUMENT_DEPTH:
        raise _TooDeep
    # One loop for both containers: an object's members are (key, item), an array's (index, item); only an
    # object counts its keys and the colons in them.
    is_object = kind is dict
    total = len(value) if is_object else 0
    for key, item in value.items() if is_object else enumerate(value):
        if is_object and ":" in key:
            total += key.count(":")
        item_kind = type(item)
        if item_kind is str:
            if ":" in item:
                total += item.count(":")
        elif item_kind is dict or item_kind is list:
            try:
                total += _tally(item, depth + 1)
            except _TooDeep as exc:
                exc.tokens.append(f"/{_escape(key)}" if is_object else f"/{key}")
                raise
        elif item_kind is float and not -_LOSSY_FLOAT < item < _LOSSY_FLOAT:
            raise _LossyNumber
    return total


class _Rejected:
    """Stands in for a number the slow parser refused, so the walk can report it with its path."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _DuplicateKeys(dict):
    """An object that had duplicate keys (the last value wins, as in orjson); `duplicates` names them."""

    __slots__ = ("duplicates",)


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    flagged = _DuplicateKeys(obj)
    seen: set[str] = set()
    duplicates: dict[str, None] = {}  # ordered, each key once
    for key, _ in pairs:
        if key in seen:
            duplicates[key] = None
        seen.add(key)
    flagged.duplicates = list(duplicates)
    return flagged


def _parse_constant(name: str) -> _Rejected:
    return _Rejected(NOT_A_NUMBER)


def _parse_float(text: str) -> float | _Rejected:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        return _Rejected(NUMBER_OUT_OF_RANGE)
    return number


def _parse_int(text: str) -> int | _Rejected:
    # Python refuses to convert more than 4300 digits; anything over 309 digits is beyond a double anyway.
    if len(text.lstrip("-")) > 309:
        return _Rejected(NUMBER_OUT_OF_RANGE)
    number = int(text)
    if abs(number) > _LARGEST_DOUBLE:
        return _Rejected(NUMBER_OUT_OF_RANGE)
    return number


def _parse_slowly(raw: bytes, *, fast_error: str | None) -> Any:
    """Parse with the json module to find and name every problem. fast_error is orjson's complaint, if any."""
    if raw.startswith(codecs.BOM_UTF8):
        raise InvalidJSON([FieldError("", BYTE_ORDER_MARK)])
    try:
        text = raw.decode("utf-8")  # strict: also refuses UTF-8-encoded surrogates and overlong forms
    except UnicodeDecodeError as exc:
        raise InvalidJSON([FieldError("", INVALID_UTF8.format(offset=exc.start))]) from None
    if not text.strip(" \t\r\n"):
        raise InvalidJSON([FieldError("", EMPTY_BODY)])
    try:
        document = json.loads(
            text,
            object_pairs_hook=_object_from_pairs,
            parse_constant=_parse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except RecursionError:  # nesting near Python's recursion limit, which is below orjson's 1024
        raise InvalidJSON([FieldError("", DOCUMENT_TOO_DEEP)]) from None
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg.removesuffix(' at')} at line {exc.lineno}, column {exc.colno}"
        raise InvalidJSON([FieldError("", SYNTAX_ERROR.format(detail=detail))]) from None
    errors: list[FieldError] = []
    _inspect(document, "", 1, errors)
    if errors:
        raise InvalidJSON(errors)
    if fast_error is not None:  # orjson refused something json accepts and the walk did not catch
        raise InvalidJSON([FieldError("", SYNTAX_ERROR.format(detail=fast_error))])
    return document


def _inspect(value: Any, path: str, depth: int, errors: list[FieldError]) -> None:
    """Report duplicate keys, refused numbers, NUL and lone surrogates, and excess depth, with paths."""
    kind = type(value)
    if kind is str:
        if _BAD_CHARACTER.search(value):
            errors.append(FieldError(path, NUL_CHARACTER if "\x00" in value else LONE_SURROGATE))
    elif kind is _Rejected:
        errors.append(FieldError(path, value.message))
    elif kind is dict or kind is _DuplicateKeys or kind is list:
        if depth > MAX_DOCUMENT_DEPTH:
            errors.append(FieldError(path, DOCUMENT_TOO_DEEP))
            return
        if kind is list:
            for index, item in enumerate(value):
                _inspect(item, f"{path}/{index}", depth + 1, errors)
            return
        if kind is _DuplicateKeys:
            for key in value.duplicates:
                shown = _BAD_CHARACTER.sub(_REPLACEMENT, key)
                errors.append(FieldError(f"{path}/{_escape(shown)}", DUPLICATE_KEY.format(key=shown)))
        for key, item in value.items():
            # A path must itself be valid JSON text, so NUL and surrogates in it become U+FFFD.
            item_path = f"{path}/{_escape(_BAD_CHARACTER.sub(_REPLACEMENT, key))}"
            if _BAD_CHARACTER.search(key):
                message = NUL_CHARACTER_IN_KEY if "\x00" in key else LONE_SURROGATE_IN_KEY
                errors.append(FieldError(item_path, message))
            _inspect(item, item_path, depth + 1, errors)


def _escape(key: str) -> str:
    """One JSON Pointer reference token (RFC 6901: ~ becomes ~0, / becomes ~1)."""
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


# --------------------------------------------------------------------------------------------------------
# Field checks shared by both schemas. Each appends its errors and returns the clean value or None.
# Paths are built only when there is an error, to keep the good path cheap.
# --------------------------------------------------------------------------------------------------------

_MISSING: Any = object()

# RFC 3339 date-time (seconds required, T or space, Z or an offset with or without the colon, up to nine
# fraction digits as .NET and Go send them); fromisoformat does the arithmetic, in C.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})",
)


def _parse_timestamp(value: Any) -> datetime | None:
    if type(value) is not str or _TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # month 13, 30 February, second 60, offset +24:00 ...
        return None


def _storable_offset(moment: datetime) -> bool:
    # Most clients send UTC ("Z"), which fromisoformat gives as the UTC singleton: no offset to compute.
    return moment.tzinfo is UTC or abs(moment.utcoffset()) < MAX_UTC_OFFSET


def _timestamp(value: Any, prefix: str, name: str, received_at: datetime, errors: list) -> datetime | None:
    if value is _MISSING:
        return None
    moment = _parse_timestamp(value)
    if moment is None:
        errors.append(FieldError(f"{prefix}/{name}", TIMESTAMP_INVALID))
    elif not _storable_offset(moment):
        errors.append(FieldError(f"{prefix}/{name}", TIMESTAMP_OFFSET_TOO_LARGE))
    elif moment < EARLIEST_TIMESTAMP:
        errors.append(FieldError(f"{prefix}/{name}", TIMESTAMP_TOO_EARLY))
    elif moment - received_at > FUTURE_TOLERANCE:  # timedelta arithmetic: no overflow near year 9999
        errors.append(FieldError(f"{prefix}/{name}", TIMESTAMP_TOO_LATE))
    else:
        return moment
    return None


def _corrected_timestamp(
    original: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
) -> datetime:
    """Segment's clock-skew rule: the client's clock is off by (sentAt - receivedAt), so move the timestamp
    by the same amount. Exact to the microsecond (datetime arithmetic is integral)."""
    if original is None:
        return received_at.astimezone(UTC)
    if sent_at is None:
        return original.astimezone(UTC)
    return (received_at - (sent_at - original)).astimezone(UTC)


def _event_name(value: Any, prefix: str, name: str, errors: list, *, required: bool) -> str | None:
    if value is _MISSING:
        if required:
            errors.append(FieldError(f"{prefix}/{name}", REQUIRED))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(f"{prefix}/{name}", NOT_A_STRING))
    elif not value or value.isspace():
        errors.append(FieldError(f"{prefix}/{name}", BLANK))
    elif len(value) > MAX_EVENT_NAME:
        errors.append(FieldError(f"{prefix}/{name}", EVENT_TOO_LONG))
    else:
        return value
    return None


def _message_id(value: Any, prefix: str, errors: list) -> str | None:
    if value is _MISSING:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(f"{prefix}/messageId", NOT_A_STRING))
    elif not value:
        errors.append(FieldError(f"{prefix}/messageId", EMPTY))
    elif len(value) > MAX_MESSAGE_ID:
        errors.append(FieldError(f"{prefix}/messageId", MESSAGE_ID_TOO_LONG))
    else:
        return value
    return None


def _object(value: Any, path: str, errors: list) -> dict | None:
    """A JSON object within the properties limits (depth, total keys, key length)."""
    if not isinstance(value, dict):
        errors.append(FieldError(path, NOT_AN_OBJECT))
        return None
    before = len(errors)
    if _check_tree(value, path, 1, errors) > MAX_PROPERTIES_KEYS:
        errors.append(FieldError(path, TOO_MANY_KEYS))
    return value if len(errors) == before else None


# Values that hold nothing further, by exact type (a subclass of dict or list is walked as one).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _check_tree(value: dict | list, path: str, depth: int, errors: list) -> int:
    """Check depth and keys below value (at `depth`, the root object being 1); return the number of keys."""
    if depth > MAX_PROPERTIES_DEPTH:
        errors.append(FieldError(path, PROPERTIES_TOO_DEEP))
        return 0
    if isinstance(value, dict):
        # The keys are checked in C; only an object with an empty or too long key is walked to name them. Keys
        # that are not that long together are none of them too long: one join instead of a len() per key.
        if "" in value or (len("".join(value)) > MAX_KEY_LENGTH and max(map(len, value)) > MAX_KEY_LENGTH):
            errors.extend(
                FieldError(f"{path}/{_escape(key)}", KEY_TOO_LONG if key else KEY_EMPTY)
                for key in value
                if not key or len(key) > MAX_KEY_LENGTH
            )
        count = len(value)
        if _SCALARS.issuperset(map(type, value.values())):  # flat, as most properties are: no walk in Python
            return count
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                count += _check_tree(item, f"{path}/{_escape(key)}", depth + 1, errors)
        return count
    count = 0
    for index, item in enumerate(value):
        if isinstance(item, (dict, list)):
            count += _check_tree(item, f"{path}/{index}", depth + 1, errors)
    return count


def _unknown_fields(document: dict, allowed: frozenset[str], prefix: str) -> list[FieldError]:
    return [
        FieldError(f"{prefix}/{_escape(name)}", UNKNOWN_FIELD.format(name=name))
        for name in document
        if name not in allowed
    ]


def _require_aware(received_at: datetime) -> None:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")


# --------------------------------------------------------------------------------------------------------
# Canvas v1 event: POST /v1/event
# --------------------------------------------------------------------------------------------------------

_CANVAS_FIELDS = frozenset({"version", "type", "event", "properties", "timestamp", "sentAt", "messageId"})


def validate_event(document: Any, *, received_at: datetime) -> tuple[EventPayload | None, list[FieldError]]:
    """Check a Canvas v1 event (the /v1/event body, already through parse_json). Returns (payload, []) or
    (None, errors) with every problem found. received_at must be tz-aware. Fields may not be null."""
    _require_aware(received_at)
    if not isinstance(document, dict):
        return None, [FieldError("", NOT_AN_OBJECT)]
    errors: list[FieldError] = []
    get = document.get

    version = get("version", _MISSING)
    if version is _MISSING:
        errors.append(FieldError("/version", REQUIRED))
    elif type(version) is not int or version != 1:  # type() so that true and 1.0 are refused
        errors.append(FieldError("/version", VERSION_INVALID))

    kind = get("type", _MISSING)
    if kind is _MISSING:
        errors.append(FieldError("/type", REQUIRED))
    elif kind != "event":
        errors.append(FieldError("/type", CANVAS_TYPE_INVALID))

    event = _event_name(get("event", _MISSING), "", "event", errors, required=True)
    properties = get("properties", _MISSING)
    properties = {} if properties is _MISSING else _object(properties, "/properties", errors)
    timestamp = _timestamp(get("timestamp", _MISSING), "", "timestamp", received_at, errors)
    sent_at = _timestamp(get("sentAt", _MISSING), "", "sentAt", received_at, errors)
    message_id = _message_id(get("messageId", _MISSING), "", errors)
    if not document.keys() <= _CANVAS_FIELDS:
        errors.extend(_unknown_fields(document, _CANVAS_FIELDS, ""))

    if errors:
        return None, errors
    payload = EventPayload(
        event=event,
        properties=properties,
        timestamp=_corrected_timestamp(timestamp, sent_at, received_at),
        original_timestamp=timestamp,
        sent_at=sent_at,
        message_id=message_id,
    )
    return payload, []


# --------------------------------------------------------------------------------------------------------
# Segment HTTP Tracking API message: /v1/track, /v1/identify, ... and the items of /v1/batch
# --------------------------------------------------------------------------------------------------------

# writeKey (the caller authenticates), version, channel, receivedAt (we stamp our own) and _metadata are
# accepted so that Segment libraries work unchanged, and otherwise ignored.
_SEGMENT_COMMON = frozenset(
    {
        "type", "userId", "anonymousId", "context", "integrations", "timestamp", "sentAt",
        "originalTimestamp", "receivedAt", "messageId", "writeKey", "version", "channel", "_metadata",
    }
)  # fmt: skip
_SEGMENT_ALLOWED = {
    "track": _SEGMENT_COMMON | {"event", "properties"},
    "identify": _SEGMENT_COMMON | {"traits"},
    "page": _SEGMENT_COMMON | {"name", "category", "properties"},
    "screen": _SEGMENT_COMMON | {"name", "category", "properties"},
    "group": _SEGMENT_COMMON | {"groupId", "traits"},
    "alias": _SEGMENT_COMMON | {"previousId"},
}
_SEGMENT_ANY = frozenset().union(*_SEGMENT_ALLOWED.values())


def _identifier(value: Any, prefix: str, name: str, errors: list, *, required: bool = False) -> str | None:
    """userId, anonymousId, groupId, previousId: a non-empty string, or an integer stored as its string."""
    if value is _MISSING:
        if required:
            errors.append(FieldError(f"{prefix}/{name}", REQUIRED))
        return None
    if type(value) is int:
        value = str(value)
    if not isinstance(value, str):
        errors.append(FieldError(f"{prefix}/{name}", ID_INVALID))
    elif not value:
        errors.append(FieldError(f"{prefix}/{name}", EMPTY))
    elif len(value) > MAX_ID_LENGTH:
        errors.append(FieldError(f"{prefix}/{name}", ID_TOO_LONG))
    else:
        return value
    return None


def _segment_type(value: Any, default_type: str | None, prefix: str, errors: list) -> str | None:
    if value is _MISSING:
        if default_type is None:
            errors.append(FieldError(f"{prefix}/type", REQUIRED))
        return default_type
    if not isinstance(value, str) or value not in _SEGMENT_ALLOWED:
        errors.append(FieldError(f"{prefix}/type", SEGMENT_TYPE_INVALID))
        return None
    if default_type is not None and value != default_type:
        errors.append(FieldError(f"{prefix}/type", SEGMENT_TYPE_MISMATCH.format(expected=default_type)))
        return None
    return value


def _optional_object(value: Any, prefix: str, name: str, errors: list) -> dict | None:
    return None if value is _MISSING else _object(value, f"{prefix}/{name}", errors)


def _optional_string(value: Any, prefix: str, name: str, errors: list) -> str | None:
    if value is _MISSING:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(f"{prefix}/{name}", NOT_A_STRING))
        return None
    return value


def validate_segment_message(
    document: Any,
    *,
    received_at: datetime,
    default_type: str | None = None,
    path_prefix: str = "",
    batch_sent_at: datetime | None = None,
) -> tuple[EventPayload | None, list[FieldError]]:
    """Check one Segment HTTP Tracking API message (track, identify, page, screen, group, alias).

    default_type is the type the endpoint implies (/v1/track -> "track"); a message may repeat it but not
    contradict it. Without it (items of /v1/batch) "type" is required. path_prefix is prepended to every
    error path (e.g. "/batch/3"). batch_sent_at is the batch's own sentAt, used when the item has none.
    Null optional fields count as absent. The event is never empty: track -> event, page/screen -> name or
    the type, identify/group/alias -> the type. identify/group traits are also the properties.
    """
    _require_aware(received_at)
    prefix = path_prefix
    if not isinstance(document, dict):
        return None, [FieldError(prefix, NOT_AN_OBJECT)]
    errors: list[FieldError] = []
    # Segment libraries send null for unset optional fields (analytics-python's anonymousId): absent. What is
    # set, read with dict.get (in C) rather than a function call per field: this runs for every batch item.
    get = document.get if None not in document.values() else {k: v for k, v in document.items() if v is not None}.get

    kind = _segment_type(get("type", _MISSING), default_type, prefix, errors)
    user_value = get("userId", _MISSING)
    anonymous_value = get("anonymousId", _MISSING)
    user_id = _identifier(user_value, prefix, "userId", errors, required=kind == "alias")
    anonymous_id = None
    if anonymous_value is not _MISSING:
        anonymous_id = _identifier(anonymous_value, prefix, "anonymousId", errors)
    elif kind != "alias" and user_value is _MISSING:
        errors.append(FieldError(prefix, IDENTITY_REQUIRED))

    # Most of these are absent from most messages: each is looked at only when it is there (a call per absent
    # field was a tenth of the time of a batch item).
    context = integrations = timestamp = original = sent_at = message_id = None
    if (value := get("context", _MISSING)) is not _MISSING:
        context = _object(value, f"{prefix}/context", errors)
    if (value := get("integrations", _MISSING)) is not _MISSING:
        integrations = _object(value, f"{prefix}/integrations", errors)
    if (value := get("timestamp", _MISSING)) is not _MISSING:
        timestamp = _timestamp(value, prefix, "timestamp", received_at, errors)
    if (value := get("originalTimestamp", _MISSING)) is not _MISSING:
        original = _timestamp(value, prefix, "originalTimestamp", received_at, errors)
    if (value := get("sentAt", _MISSING)) is not _MISSING:
        sent_at = _timestamp(value, prefix, "sentAt", received_at, errors)
    if (value := get("messageId", _MISSING)) is not _MISSING:
        message_id = _message_id(value, prefix, errors)
    if (value := get("writeKey", _MISSING)) is not _MISSING:
        _optional_string(value, prefix, "writeKey", errors)
    if (value := get("channel", _MISSING)) is not _MISSING:
        _optional_string(value, prefix, "channel", errors)

    event = name = category = group_id = previous_id = None
    properties = traits = None
    if kind == "track":
        event = _event_name(get("event", _MISSING), prefix, "event", errors, required=True)
        properties = _optional_object(get("properties", _MISSING), prefix, "properties", errors)
    elif kind in ("page", "screen"):
        name = get("name", _MISSING)
        if isinstance(name, str) and (not name or name.isspace()):
            name = _MISSING  # an empty page name is no name: the event becomes "page"
        name = _event_name(name, prefix, "name", errors, required=False)
        category = _optional_string(get("category", _MISSING), prefix, "category", errors)
        properties = _optional_object(get("properties", _MISSING), prefix, "properties", errors)
        event = name or kind
    elif kind in ("identify", "group"):
        traits = _optional_object(get("traits", _MISSING), prefix, "traits", errors)
        properties = traits
        if kind == "group":
            group_id = _identifier(get("groupId", _MISSING), prefix, "groupId", errors, required=True)
        event = kind
    elif kind == "alias":
        previous = get("previousId", _MISSING)
        previous_id = _identifier(previous, prefix, "previousId", errors, required=True)
        event = kind

    allowed = _SEGMENT_ALLOWED.get(kind, _SEGMENT_ANY)
    if not document.keys() <= allowed:
        errors.extend(_unknown_fields(document, allowed, prefix))

    if errors:
        return None, errors
    fields = (kind, context, user_id, anonymous_id, traits, name, category, group_id, previous_id, integrations)
    return _segment_payload(
        event, properties, timestamp, original, sent_at, message_id, fields, received_at, batch_sent_at
    ), []


def _segment_payload(
    event: str,
    properties: dict | None,
    timestamp: datetime | None,
    original: datetime | None,
    sent_at: datetime | None,
    message_id: str | None,
    fields: tuple,
    received_at: datetime,
    batch_sent_at: datetime | None,
) -> EventPayload:
    """The payload of a valid Segment message: its timestamps settled (timestamp, else originalTimestamp; the
    batch's sentAt when it has none), `fields` the rest of EventPayload's fields, from `type` on."""
    original_timestamp = timestamp if timestamp is not None else original
    if sent_at is None:
        sent_at = batch_sent_at
    # Positional, in the field order of EventPayload: sixteen keywords cost three times as much to match, and a
    # batch builds one payload per event (tests/test_validation.py compares with payloads built by keyword).
    return EventPayload(
        event,
        properties if properties is not None else {},
        _corrected_timestamp(original_timestamp, sent_at, received_at),
        original_timestamp,
        sent_at,
        message_id,
        *fields,
    )


def plain_event(document: Any, received_at: datetime) -> EventPayload | None:
    """validate_event's payload for a Canvas event that has nothing wrong with it, or None.

    Every /v1/event request is validated, and the general path spends a function call and an error list on each
    field: this checks the same rules inline and answers with the same payload (tests/test_validation.py holds the
    two to that). None is no verdict: whatever is unusual or wrong about the event, the general path judges it and
    names each problem. Fields may not be null, as there.
    """
    if type(document) is not dict or not document.keys() <= _CANVAS_FIELDS or received_at.tzinfo is None:
        return None
    get = document.get
    version, event = get("version"), get("event")
    if (
        type(version) is not int
        or version != 1
        or get("type") != "event"
        or type(event) is not str
        or not 0 < len(event) <= MAX_EVENT_NAME
        or event.isspace()
    ):
        return None
    properties = get("properties", _MISSING)
    if properties is _MISSING:
        properties = {}
    elif type(properties) is not dict or not _plain_object(properties):
        return None
    message_id = get("messageId", _MISSING)
    if message_id is _MISSING:
        message_id = None
    elif type(message_id) is not str or not 0 < len(message_id) <= MAX_MESSAGE_ID:
        return None
    timestamp, sent_at = get("timestamp", _MISSING), get("sentAt", _MISSING)
    if timestamp is _MISSING:
        timestamp = None
    elif (timestamp := _good_moment(timestamp, received_at)) is None:
        return None
    if sent_at is _MISSING:
        sent_at = None
    elif (sent_at := _good_moment(sent_at, received_at)) is None:
        return None
    # Positional, in the field order of EventPayload (see _segment_payload).
    return EventPayload(
        event, properties, _corrected_timestamp(timestamp, sent_at, received_at), timestamp, sent_at, message_id
    )


# The fields a plain track call may have (plain_track). No "version": a batch item with one is a Canvas event.
_PLAIN_TRACK_FIELDS = _SEGMENT_ALLOWED["track"] - {"version"}


def plain_track(document: Any, received_at: datetime, batch_sent_at: datetime | None) -> EventPayload | None:
    """validate_segment_message's payload for a Segment track call that has nothing wrong with it, or None.

    Most batch items are such calls, and the general path spends a function call on each of their fields: this
    checks the same rules inline and answers with the same payload (tests/test_validation.py holds the two to
    that). None is no verdict: whatever is unusual or wrong about the message, the general path judges it and
    names each problem. Nulls count as absent, as there.
    """
    if type(document) is not dict or not document.keys() <= _PLAIN_TRACK_FIELDS or received_at.tzinfo is None:
        return None
    get = document.get
    event, user_id, anonymous_id = get("event"), get("userId"), get("anonymousId")
    if (
        get("type") != "track"
        or type(event) is not str
        or not 0 < len(event) <= MAX_EVENT_NAME
        or event.isspace()
        or (user_id is None and anonymous_id is None)
        or (user_id is not None and (type(user_id) is not str or not 0 < len(user_id) <= MAX_ID_LENGTH))
        or (anonymous_id is not None and (type(anonymous_id) is not str or not 0 < len(anonymous_id) <= MAX_ID_LENGTH))
    ):
        return None
    message_id = get("messageId")
    if message_id is not None and (type(message_id) is not str or not 0 < len(message_id) <= MAX_MESSAGE_ID):
        return None
    properties, context, integrations = get("properties"), get("context"), get("integrations")
    if not (_plain_object(properties) and _plain_object(context) and _plain_object(integrations)):
        return None
    timestamp, original, sent_at = get("timestamp"), get("originalTimestamp"), get("sentAt")
    if timestamp is not None and (timestamp := _good_moment(timestamp, received_at)) is None:
        return None
    if original is not None and (original := _good_moment(original, received_at)) is None:
        return None
    if sent_at is not None and (sent_at := _good_moment(sent_at, received_at)) is None:
        return None
    write_key, channel = get("writeKey"), get("channel")
    if (write_key is not None and type(write_key) is not str) or (channel is not None and type(channel) is not str):
        return None
    fields = ("track", context, user_id, anonymous_id, None, None, None, None, None, integrations)
    return _segment_payload(
        event, properties, timestamp, original, sent_at, message_id, fields, received_at, batch_sent_at
    )


def _plain_object(value: Any) -> bool:
    """Absent, or an object within the properties limits (what _object accepts)."""
    if value is None:
        return True
    if type(value) is not dict:
        return False
    # Flat, with keys that are not long together (most properties, context and integrations): no walk.
    if "" not in value and len("".join(value)) <= MAX_KEY_LENGTH and _SCALARS.issuperset(map(type, value.values())):
        return True
    problems: list[FieldError] = []
    return _check_tree(value, "", 1, problems) <= MAX_PROPERTIES_KEYS and not problems


def _good_moment(value: Any, received_at: datetime) -> datetime | None:
    """What _timestamp answers for a timestamp it finds nothing wrong with, else None."""
    moment = _parse_timestamp(value)
    if (
        moment is None
        or not _storable_offset(moment)
        or moment < EARLIEST_TIMESTAMP
        or moment - received_at > FUTURE_TOLERANCE
    ):
        return None
    return moment


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 string with Z or an offset PostgreSQL can store as an aware datetime, else None (for a
    batch's own sentAt)."""
    moment = _parse_timestamp(value)
    return moment if moment is not None and _storable_offset(moment) else None
