"""Validation of Canvas Events ingestion bodies: strict JSON parsing, then the rules of each kind of message.

Pure Python, no Django, so it can be tested and timed on its own. The API calls it as

    document = parse_json(request_body)                      # InvalidJSON -> 400 "invalid_json"
    payload, problems = validate_event(document, received_at=now)   # problems -> 400 "invalid_payload"

(validate_segment_message for Segment's endpoints; validate_batch, then validate_batch_item for each item).

Each field rule is written once, as a function of the field's value. A MessageKind is a table of them per kind
(Canvas event, each Segment type, the batch envelope): field name -> rule, required or optional, the attribute of
the payload its value goes into, and whether null counts as absent. check_fields walks a document with its table
and reports every problem as a FieldError whose path is an RFC 6901 JSON Pointer into the request body
("/properties/address/city"; "" is the whole body), built only when there is a problem.
"""

import codecs
import dataclasses
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
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

# Messages: fields (validate_event, validate_segment_message, validate_batch).
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
BATCH_NOT_AN_OBJECT = "Must be a JSON object with a batch array."
BATCH_NOT_AN_ARRAY = "Must be an array of events."


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


# Not frozen, as a batch builds one per event (a frozen dataclass sets each field through object.__setattr__).
@dataclass(slots=True)
class EventPayload:
    """A validated event, ready to store. Timestamps are tz-aware; `timestamp` is corrected to UTC."""

    event: str
    properties: dict[str, Any]
    timestamp: datetime
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = None
    type: str = "track"
    context: dict[str, Any] | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    traits: dict[str, Any] | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    integrations: dict[str, Any] | None = None


# The positions of EventPayload's attributes among the values check_fields returns (it is built positionally).
_SLOTS = {attribute.name: position for position, attribute in enumerate(dataclasses.fields(EventPayload))}
EVENT, PROPERTIES, TIMESTAMP, ORIGINAL_TIMESTAMP, SENT_AT, TYPE, CONTEXT, USER_ID, ANONYMOUS_ID, TRAITS, NAME = (
    _SLOTS[name]
    for name in (
        "event",
        "properties",
        "timestamp",
        "original_timestamp",
        "sent_at",
        "type",
        "context",
        "user_id",
        "anonymous_id",
        "traits",
        "name",
    )
)


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
# Before the walk, orjson's own indented output of the result answers the same three questions in C, more cheaply
# (docs/performance.md#validation): its colons are the keys left plus the colons inside strings (orjson never escapes
# one), so a duplicate key, which drops a key and its value, leaves it fewer colons than the body; an object or array
# below MAX_DOCUMENT_DEPTH starts a line indented by 2 * MAX_DOCUMENT_DEPTH spaces (newlines inside strings are
# escaped); a float of 2**63 or more is written with "e+" (orjson uses an exponent from 1e16). A body whose output has
# such a line or any "+" (in a string, say) is walked as before.
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
        colons: int = value.count(":")
        return colons
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
    key: Any  # a str in an object, an int in an array
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


class _DuplicateKeys(dict[str, Any]):
    """An object that had duplicate keys (the last value wins, as in orjson); `duplicates` names them."""

    __slots__ = ("duplicates",)
    duplicates: list[str]


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
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
# Field rules, each written once. A rule takes a field's value (never absent) and the time the request was
# received, and returns the value to keep or raises _Refused with what is wrong. A MessageKind is a table of
# rules, one per field, in the order problems are reported; check_fields walks a document with it.
# --------------------------------------------------------------------------------------------------------

Rule = Callable[[Any, datetime], Any]


class _Refused(Exception):
    """What a rule found wrong: (path, message) pairs, the path a JSON Pointer below the field ("" is the
    field itself)."""

    def __init__(self, message: str = "", problems: list[tuple[str, str]] | None = None) -> None:
        self.problems = problems if problems is not None else [("", message)]


def _version(value: Any, received_at: datetime) -> int:
    if type(value) is not int or value != 1:  # type() so that true and 1.0 are refused
        raise _Refused(VERSION_INVALID)
    return value


def _canvas_type(value: Any, received_at: datetime) -> str:
    if value != "event":
        raise _Refused(CANVAS_TYPE_INVALID)
    return "event"


def _event_name(value: Any, received_at: datetime) -> str:
    if type(value) is not str:
        raise _Refused(NOT_A_STRING)
    if not value or value.isspace():
        raise _Refused(BLANK)
    if len(value) > MAX_EVENT_NAME:
        raise _Refused(EVENT_TOO_LONG)
    return value


def _page_name(value: Any, received_at: datetime) -> str | None:
    """An event name, but a blank page or screen name is no name: the event is then the type."""
    if type(value) is str and (not value or value.isspace()):
        return None
    return _event_name(value, received_at)


def _message_id(value: Any, received_at: datetime) -> str:
    if type(value) is not str:
        raise _Refused(NOT_A_STRING)
    if not value:
        raise _Refused(EMPTY)
    if len(value) > MAX_MESSAGE_ID:
        raise _Refused(MESSAGE_ID_TOO_LONG)
    return value


def _identifier(value: object, received_at: datetime) -> str:
    """userId, anonymousId, groupId, previousId: a non-empty string, or an integer kept as its string."""
    if type(value) is int:
        value = str(value)
    elif type(value) is not str:
        raise _Refused(ID_INVALID)
    if not value:
        raise _Refused(EMPTY)
    if len(value) > MAX_ID_LENGTH:
        raise _Refused(ID_TOO_LONG)
    return value


def _string(value: Any, received_at: datetime) -> str:
    if type(value) is not str:
        raise _Refused(NOT_A_STRING)
    return value


# RFC 3339 date-time (seconds required, T or space, Z or an offset with or without the colon, up to nine
# fraction digits as .NET and Go send them); fromisoformat does the arithmetic, in C.
_timestamp_shape = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})",
).fullmatch


def _timestamp(value: Any, received_at: datetime) -> datetime:
    """An aware datetime that PostgreSQL can store, from 1970 to a day after the time received."""
    if type(value) is not str or _timestamp_shape(value) is None:
        raise _Refused(TIMESTAMP_INVALID)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:  # month 13, 30 February, second 60, offset +24:00 ...
        raise _Refused(TIMESTAMP_INVALID) from None
    # Most clients send "Z", which fromisoformat gives as the UTC singleton: no offset to compute.
    # The shape requires an offset, so utcoffset() is never None here.
    if moment.tzinfo is not UTC and (offset := moment.utcoffset()) is not None and abs(offset) >= MAX_UTC_OFFSET:
        raise _Refused(TIMESTAMP_OFFSET_TOO_LARGE)
    if moment < EARLIEST_TIMESTAMP:
        raise _Refused(TIMESTAMP_TOO_EARLY)
    if moment - received_at > FUTURE_TOLERANCE:  # timedelta arithmetic: no overflow near year 9999
        raise _Refused(TIMESTAMP_TOO_LATE)
    return moment


# Values that hold nothing further, by exact type (a subclass of dict or list is walked as one).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _object(value: Any, received_at: datetime) -> dict[str, Any]:
    """A JSON object within the properties limits (depth, total keys, key length)."""
    if not isinstance(value, dict):
        raise _Refused(NOT_AN_OBJECT)
    # Flat, with keys that are not long together, as most objects are: nothing to walk.
    if "" not in value and len("".join(value)) <= MAX_KEY_LENGTH and _SCALARS.issuperset(map(type, value.values())):
        return value
    problems: list[tuple[str, str]] = []
    if _check_tree(value, "", 1, problems) > MAX_PROPERTIES_KEYS:
        problems.append(("", TOO_MANY_KEYS))
    if problems:
        raise _Refused(problems=problems)
    return value


def _check_tree(value: dict[str, Any] | list[Any], path: str, depth: int, problems: list[tuple[str, str]]) -> int:
    """Check depth and keys below value (at `depth`, the root object being 1); return the number of keys."""
    if depth > MAX_PROPERTIES_DEPTH:
        problems.append((path, PROPERTIES_TOO_DEEP))
        return 0
    if isinstance(value, dict):
        # The keys are checked in C; only an object with an empty or too long key is walked to name them. Keys
        # that are not that long together are none of them too long: one join instead of a len() per key.
        if "" in value or (len("".join(value)) > MAX_KEY_LENGTH and max(map(len, value)) > MAX_KEY_LENGTH):
            problems.extend(
                (f"{path}/{_escape(key)}", KEY_TOO_LONG if key else KEY_EMPTY)
                for key in value
                if not key or len(key) > MAX_KEY_LENGTH
            )
        count = len(value)
        if _SCALARS.issuperset(map(type, value.values())):  # flat: no walk in Python
            return count
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                count += _check_tree(item, f"{path}/{_escape(key)}", depth + 1, problems)
        return count
    count = 0
    for index, item in enumerate(value):
        if isinstance(item, (dict, list)):
            count += _check_tree(item, f"{path}/{index}", depth + 1, problems)
    return count


def _array(value: Any, received_at: datetime) -> list[Any]:
    if type(value) is not list:
        raise _Refused(BATCH_NOT_AN_ARRAY)
    return value


@dataclass(frozen=True, slots=True)
class Field:
    """How one field of a message is checked, and where the value it keeps goes."""

    rule: Rule | None  # None: accepted and ignored
    into: str | None = None  # the attribute of the result that takes the value; None: checked, not kept
    missing: str | None = None  # the problem when the field is absent; None: the field is optional


def required(rule: Rule, *, into: str | None = None, missing: str = REQUIRED) -> Field:
    return Field(rule, into, missing)


def optional(rule: Rule, *, into: str | None = None) -> Field:
    return Field(rule, into)


IGNORED = Field(None)


class MessageKind:
    """The fields one kind of message may have, in the order their problems are reported, and what it builds
    (EventPayload, BatchEnvelope). Where nulls_are_absent, a field set to null counts as not sent (Segment's
    libraries send null for what is unset); elsewhere null is a value like any other, for the rule to judge.

    The table is kept in the form check_fields walks: per field its rule, the slot of the attribute its value goes
    into (the position among the attributes of what the kind builds, so that it is built positionally) and its
    position in the table."""

    __slots__ = ("defaults", "fields", "missing", "nulls_are_absent")

    def __init__(self, fields: dict[str, Field], *, builds: type, nulls_are_absent: bool) -> None:
        attributes = [attribute.name for attribute in dataclasses.fields(builds)]
        if unknown := {field.into for field in fields.values() if field.into is not None} - set(attributes):
            raise ValueError(f"{builds.__name__} has no attribute {', '.join(sorted(unknown))}")
        self.fields = {
            name: (field.rule, None if field.into is None else attributes.index(field.into), position)
            for position, (name, field) in enumerate(fields.items())
        }
        self.missing = {
            name: (position, field.missing)
            for position, (name, field) in enumerate(fields.items())
            if field.missing is not None
        }
        # What check_fields starts from: each attribute's default, None for the required ones.
        self.defaults = [
            None if attribute.default is dataclasses.MISSING else attribute.default
            for attribute in dataclasses.fields(builds)
        ]
        self.nulls_are_absent = nulls_are_absent


# A problem with the position of its field in its MessageKind, by which problems are reported in order.
Problem = tuple[int, FieldError]


def check_fields(
    document: dict[str, Any], kind: MessageKind, received_at: datetime, problems: list[Problem]
) -> list[Any]:
    """Walk `document` with the rules of `kind`: the values of the attributes of what the kind builds, in their
    order (to build it positionally), each the value its field keeps or the attribute's default. Appends every problem
    found to `problems`, with its JSON Pointer path."""
    fields, nulls_are_absent = kind.fields, kind.nulls_are_absent
    values = kind.defaults.copy()
    for name, value in document.items():
        try:
            rule, slot, position = fields[name]
        except KeyError:
            problems.append((len(fields), FieldError(f"/{_escape(name)}", UNKNOWN_FIELD.format(name=name))))
            continue
        if value is None and nulls_are_absent:
            if name in kind.missing:
                problems.append((position, FieldError(f"/{name}", kind.missing[name][1])))
        elif rule is not None:
            try:
                if slot is None:
                    rule(value, received_at)
                else:
                    values[slot] = rule(value, received_at)
            except _Refused as refused:
                path = f"/{_escape(name)}"
                problems.extend((position, FieldError(path + below, message)) for below, message in refused.problems)
    for name, (position, missing) in kind.missing.items():
        if name not in document:
            problems.append((position, FieldError(f"/{name}", missing)))
    return values


def _in_order(problems: list[Problem]) -> list[FieldError]:
    """Problems by the position of their field (sorted() is stable: a field's own problems keep their order)."""
    return [problem for _, problem in sorted(problems, key=itemgetter(0))]


def _require_aware(received_at: datetime) -> None:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")


def _event_payload(values: list[Any], received_at: datetime, batch_sent_at: datetime | None) -> EventPayload:
    """The payload of a valid event from the values its fields keep (check_fields): the time it happened is its
    timestamp, else its originalTimestamp, corrected for the client's clock by its sentAt (else the batch's);
    properties are {} when it has none."""
    original = values[TIMESTAMP]
    if original is None:
        original = values[ORIGINAL_TIMESTAMP]
    else:
        values[ORIGINAL_TIMESTAMP] = original
    sent_at = values[SENT_AT]
    if sent_at is None:
        values[SENT_AT] = sent_at = batch_sent_at
    values[TIMESTAMP] = _corrected_timestamp(original, sent_at, received_at)
    if values[PROPERTIES] is None:
        values[PROPERTIES] = {}
    return EventPayload(*values)


def _corrected_timestamp(original: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """Segment's clock-skew rule: the client's clock is off by (sentAt - receivedAt), so move the timestamp
    by the same amount. Exact to the microsecond (datetime arithmetic is integral)."""
    if original is None:
        return received_at.astimezone(UTC)
    if sent_at is None:
        return original.astimezone(UTC)
    return (received_at - (sent_at - original)).astimezone(UTC)


# --------------------------------------------------------------------------------------------------------
# Canvas v1 event: POST /v1/event, and the items of /v1/batch in Canvas's format
# --------------------------------------------------------------------------------------------------------

CANVAS_EVENT = MessageKind(
    {
        "version": required(_version),
        "type": required(_canvas_type),  # stored as "track", EventPayload's default
        "event": required(_event_name, into="event"),
        "properties": optional(_object, into="properties"),
        "timestamp": optional(_timestamp, into="timestamp"),
        "sentAt": optional(_timestamp, into="sent_at"),
        "messageId": optional(_message_id, into="message_id"),
    },
    builds=EventPayload,
    nulls_are_absent=False,
)


def validate_event(document: Any, *, received_at: datetime) -> tuple[EventPayload | None, list[FieldError]]:
    """Check a Canvas v1 event (the /v1/event body, already through parse_json). Returns (payload, []) or
    (None, problems) with every problem found. received_at must be tz-aware. Fields may not be null."""
    _require_aware(received_at)
    if not isinstance(document, dict):
        return None, [FieldError("", NOT_AN_OBJECT)]
    problems: list[Problem] = []
    values = check_fields(document, CANVAS_EVENT, received_at, problems)
    if problems:
        return None, _in_order(problems)
    return _event_payload(values, received_at, None), []


# --------------------------------------------------------------------------------------------------------
# Segment HTTP Tracking API message: /v1/track, /v1/identify, ... and the items of /v1/batch
# --------------------------------------------------------------------------------------------------------

# "type" is judged before the walk, as it chooses the table. writeKey (the caller authenticates), version,
# channel, receivedAt (we stamp our own) and _metadata are accepted so that Segment libraries work unchanged.
_SEGMENT_COMMON = {
    "type": IGNORED,
    "userId": optional(_identifier, into="user_id"),
    "anonymousId": optional(_identifier, into="anonymous_id"),
    "context": optional(_object, into="context"),
    "integrations": optional(_object, into="integrations"),
    "timestamp": optional(_timestamp, into="timestamp"),
    "originalTimestamp": optional(_timestamp, into="original_timestamp"),
    "sentAt": optional(_timestamp, into="sent_at"),
    "messageId": optional(_message_id, into="message_id"),
    "writeKey": optional(_string),
    "channel": optional(_string),
    "version": IGNORED,
    "receivedAt": IGNORED,
    "_metadata": IGNORED,
}
_PAGE = {
    "name": optional(_page_name, into="name"),
    "category": optional(_string, into="category"),
    "properties": optional(_object, into="properties"),
}
SEGMENT_MESSAGES = {
    "track": {"event": required(_event_name, into="event"), "properties": optional(_object, into="properties")},
    "identify": {"traits": optional(_object, into="traits")},
    "page": _PAGE,
    "screen": _PAGE,
    "group": {"traits": optional(_object, into="traits"), "groupId": required(_identifier, into="group_id")},
    "alias": {"userId": required(_identifier, into="user_id"), "previousId": required(_identifier, into="previous_id")},
}
# Keyed by str | None so that a message without a valid type looks itself up and gets _ANY_SEGMENT_KIND.
_SEGMENT_KINDS: dict[str | None, MessageKind] = {
    name: MessageKind({**_SEGMENT_COMMON, **fields}, builds=EventPayload, nulls_are_absent=True)
    for name, fields in SEGMENT_MESSAGES.items()
}
# A message whose type is missing or wrong: its common fields are checked, and those of any type allowed.
_ANY_TYPE_FIELDS = sorted({name for fields in SEGMENT_MESSAGES.values() for name in fields} - _SEGMENT_COMMON.keys())
_ANY_SEGMENT_KIND = MessageKind(
    {**_SEGMENT_COMMON, **dict.fromkeys(_ANY_TYPE_FIELDS, IGNORED)}, builds=EventPayload, nulls_are_absent=True
)


def validate_segment_message(
    document: Any,
    *,
    received_at: datetime,
    default_type: str | None = None,
    batch_sent_at: datetime | None = None,
) -> tuple[EventPayload | None, list[FieldError]]:
    """Check one Segment HTTP Tracking API message (track, identify, page, screen, group, alias).

    default_type is the type the endpoint implies (/v1/track -> "track"); a message may repeat it but not
    contradict it. Without it (items of /v1/batch) "type" is required. batch_sent_at is the batch's own sentAt,
    used when the item has none. Null fields count as absent. The event is never empty: track -> event,
    page/screen -> name or the type, identify/group/alias -> the type. identify/group traits are also the
    properties.
    """
    _require_aware(received_at)
    return _segment_message(document, received_at, default_type, batch_sent_at, None)


def _segment_message(
    document: Any,
    received_at: datetime,
    default_type: str | None,
    batch_sent_at: datetime | None,
    batch_context: dict[str, Any] | None,
) -> tuple[EventPayload | None, list[FieldError]]:
    """validate_segment_message, with the context of the batch the message is an item of."""
    if not isinstance(document, dict):
        return None, [FieldError("", NOT_AN_OBJECT)]
    problems: list[Problem] = []
    message_type = _segment_type(document.get("type"), default_type, problems)
    kind = _SEGMENT_KINDS.get(message_type, _ANY_SEGMENT_KIND)
    values = check_fields(document, kind, received_at, problems)
    # The values kept answer first: a message with a valid id skips the look-ups (an invalid id is no id kept).
    if (
        values[USER_ID] is None
        and values[ANONYMOUS_ID] is None
        and message_type != "alias"
        and document.get("userId") is None
        and document.get("anonymousId") is None
    ):
        problems.append((kind.fields["anonymousId"][2], FieldError("", IDENTITY_REQUIRED)))
    if problems:
        return None, _in_order(problems)
    values[TYPE] = message_type
    if message_type in ("identify", "group"):
        values[EVENT] = message_type
        if values[TRAITS] is not None:
            values[PROPERTIES] = values[TRAITS]
    elif message_type != "track":
        values[EVENT] = values[NAME] or message_type
    if values[CONTEXT] is None:
        values[CONTEXT] = batch_context
    return _event_payload(values, received_at, batch_sent_at), []


def _segment_type(value: Any, default_type: str | None, problems: list[Problem]) -> str | None:
    """The message's type, or None with a problem: the one the endpoint implies if it says none."""
    if value is None:
        if default_type is None:
            problems.append((0, FieldError("/type", REQUIRED)))
        return default_type
    if type(value) is not str or value not in SEGMENT_MESSAGES:
        problems.append((0, FieldError("/type", SEGMENT_TYPE_INVALID)))
        return None
    if default_type is not None and value != default_type:
        problems.append((0, FieldError("/type", SEGMENT_TYPE_MISMATCH.format(expected=default_type))))
        return None
    return value


# --------------------------------------------------------------------------------------------------------
# Segment batch: POST /v1/batch and /v1/import
# --------------------------------------------------------------------------------------------------------

MAX_BATCH_EVENTS = 2500  # more is answered 413 by the caller, before any item is looked at


@dataclass(frozen=True, slots=True)
class BatchEnvelope:
    """A batch's items, and what Segment lets a batch say once for all of them."""

    items: list[Any]
    context: dict[str, Any] | None = None
    sent_at: datetime | None = None


BATCH = MessageKind(
    {
        "batch": required(_array, into="items", missing=BATCH_NOT_AN_ARRAY),
        "context": optional(_object, into="context"),
        "integrations": IGNORED,
        "sentAt": optional(_timestamp, into="sent_at"),
        "writeKey": IGNORED,
        "metadata": IGNORED,
        "_metadata": IGNORED,
    },
    builds=BatchEnvelope,
    nulls_are_absent=True,
)


def validate_batch(document: Any, *, received_at: datetime) -> tuple[BatchEnvelope | None, list[FieldError]]:
    """Check a batch's own fields, not its items: (envelope, []) or (None, problems) with every problem found.
    The number of items is the caller's to check against MAX_BATCH_EVENTS."""
    _require_aware(received_at)
    if not isinstance(document, dict):
        return None, [FieldError("", BATCH_NOT_AN_OBJECT)]
    problems: list[Problem] = []
    values = check_fields(document, BATCH, received_at, problems)
    if problems:
        return None, _in_order(problems)
    return BatchEnvelope(*values), []


def validate_batch_item(
    item: Any, *, index: int, received_at: datetime, batch: BatchEnvelope
) -> tuple[EventPayload | None, list[FieldError]]:
    """Check one item of a batch as it would be checked alone: a Canvas event if it has a "version" or the type
    "event", else a Segment message, which takes the batch's sentAt and context when it has none of its own.
    Problems' paths start with the item's own, /batch/<index>."""
    if isinstance(item, dict) and ("version" in item or item.get("type") == "event"):
        payload, problems = validate_event(item, received_at=received_at)
    else:
        if received_at.tzinfo is None:  # validate_segment_message's check, without a call per item
            _require_aware(received_at)
        payload, problems = _segment_message(item, received_at, None, batch.sent_at, batch.context)
    if problems:
        prefix = f"/batch/{index}"
        problems = [FieldError(prefix + problem.path, problem.message) for problem in problems]
    return payload, problems
