"""The type of a warehouse column, inferred from every value its property was seen with.

JSON numbers and canonical decimal strings ("39.95", "-7", "0.50") -> numeric; JSON booleans -> boolean;
ISO-8601 date or date-time strings -> timestamptz (those without an offset are UTC); everything else, and any
mixture, -> text. Arrays are text (their JSON); null counts as absent. Nested objects are walked (`flatten`):
each leaf is a property of its own, named by its path.

A type is chosen only if it loses nothing, so a reader gets back what was sent:
- A string is numeric only if numeric's own text of it is the string itself: an optional "-", then "0" or a
  digit 1-9 and any more digits, then optionally "." and one or more digits. So "02134" (a zip code), "+1",
  "1e3", "1." and ".5" stay text, as does "-0" (it would read as 0). Trailing zeros are kept: numeric keeps
  the scale, so "1.50" reads back as 1.50.
- A JSON number is a number: it reads back as the same number, written as jsonb writes it (1e3 as 1000).
- A date-time string is timestamptz only if it reads back as the same instant: at most microseconds (more
  digits only if they are zeros), offsets in hours and minutes up to 15:59, real dates in years 0001-9999,
  and never 0001-01-01 with a "+" offset or 9999-12-31 with a "-" offset, which may leave those years in UTC
  (PostgreSQL writes them BC or with five digits, and many drivers cannot read them). Its text is not kept:
  it reads as the instant, in the reader's time zone.
- Text is kept exactly. A text column reading a JSON number, boolean or array gets its JSON as jsonb writes
  it (1e3 as "1000", [1,2] as "[1, 2]"): the same JSON value, spelled jsonb's way.

The rule a newcomer must know: the patterns below are written once and read by two engines, Python here (to
infer the type) and PostgreSQL in the views (to guard each cast: events.warehouse.view_definitions) and in the
catalog sync (`value_type_sql`, which counts the types of a chunk of events in one query). They use
only syntax both read alike, so a value the inference calls numeric always casts, and any other reads as NULL.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from events.models import CatalogProperty, ColumnType, infer_column_type

# Longer numeric strings are text: PostgreSQL's numeric stops at 16,383 digits after the point.
MAX_NUMERIC_LENGTH = 1000

# Canonical decimals only: no leading zeros but "0.…", no "+", no exponent, no negative zero.
NUMERIC_PATTERN = r"(?:-?[1-9][0-9]*(?:\.[0-9]+)?|0(?:\.[0-9]+)?|-0\.[0-9]*[1-9][0-9]*)"
# Only real dates: day 29 and 30 in every month but February, 31 in the long months, February 29 in leap
# years (divisible by 4, centuries only by 400), and never year 0000, so the cast cannot fail.
_DATE = (
    r"(?:(?!0000)[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)"
)
# Digits past microseconds only if they are zeros: PostgreSQL would round the others away.
_TIME = r"[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6}0{0,3})?)?"
# PostgreSQL accepts offsets up to 15:59.
_OFFSET = r"(?:Z|[+-](?:0[0-9]|1[0-5])(?::?[0-5][0-9])?)"
# The first day with a "+" offset and the last with a "-" one may fall outside years 1-9999 in UTC.
_IN_RANGE = r"(?!0001-01-01[T ][0-9:.]*\+|9999-12-31[T ][0-9:.]*-)"
ZONED_TIMESTAMP_PATTERN = _IN_RANGE + _DATE + _TIME + _OFFSET
LOCAL_TIMESTAMP_PATTERN = _DATE + f"(?:{_TIME})?"
# How every date (so every timestamp) starts: a cheap test that spares most strings the two long patterns.
TIMESTAMP_START_PATTERN = r"[0-9]{4}-"

_NUMERIC = re.compile(NUMERIC_PATTERN)
_ZONED_TIMESTAMP = re.compile(ZONED_TIMESTAMP_PATTERN)
_LOCAL_TIMESTAMP = re.compile(LOCAL_TIMESTAMP_PATTERN)
_TIMESTAMP_START = re.compile(TIMESTAMP_START_PATTERN)


def value_type(value: Any) -> str | None:
    """The column type one JSON value asks for; None for null, which counts as absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ColumnType.BOOLEAN.value
    if isinstance(value, int | float):
        return ColumnType.NUMERIC.value
    if isinstance(value, str):
        if len(value) <= MAX_NUMERIC_LENGTH and _NUMERIC.fullmatch(value):
            return ColumnType.NUMERIC.value
        if _TIMESTAMP_START.match(value) and (_ZONED_TIMESTAMP.fullmatch(value) or _LOCAL_TIMESTAMP.fullmatch(value)):
            return ColumnType.TIMESTAMPTZ.value
    return ColumnType.TEXT.value


def value_type_sql(json_type: sql.Composable, text: sql.Composable) -> sql.Composable:
    """`value_type` in PostgreSQL, given a jsonb value's jsonb_typeof and its text (`value #>> '{}'`): the same
    rule from the same patterns, so the catalog sync counts types in SQL. jsonb_typeof settles numbers, booleans,
    nulls and arrays; only strings reach the patterns, and only those that start like a date the long ones."""
    return sql.SQL(
        "CASE {t} WHEN 'null' THEN NULL WHEN 'boolean' THEN {boolean} WHEN 'number' THEN {numeric} "
        "WHEN 'string' THEN CASE WHEN length({s}) <= {max} AND {s} ~ {numeric_pattern} THEN {numeric} "
        "WHEN {s} ~ {start} AND ({s} ~ {zoned} OR {s} ~ {local}) THEN {timestamp} ELSE {text} END "
        "ELSE {text} END"
    ).format(
        t=json_type,
        s=text,
        max=sql.Literal(MAX_NUMERIC_LENGTH),
        numeric_pattern=sql.Literal(f"^(?:{NUMERIC_PATTERN})$"),
        start=sql.Literal(f"^{TIMESTAMP_START_PATTERN}"),
        zoned=sql.Literal(f"^(?:{ZONED_TIMESTAMP_PATTERN})$"),
        local=sql.Literal(f"^(?:{LOCAL_TIMESTAMP_PATTERN})$"),
        boolean=sql.Literal(ColumnType.BOOLEAN.value),
        numeric=sql.Literal(ColumnType.NUMERIC.value),
        timestamp=sql.Literal(ColumnType.TIMESTAMPTZ.value),
        text=sql.Literal(ColumnType.TEXT.value),
    )


@dataclass
class TypeCounts:
    """How many values of each type a property (or a column) had: what its column type is inferred from."""

    count: int = 0
    numeric: int = 0
    boolean: int = 0
    timestamp: int = 0
    text: int = 0

    _FIELDS = {"numeric": "numeric", "boolean": "boolean", "timestamptz": "timestamp", "text": "text"}

    def add_value(self, kind: str) -> None:
        self.add_values(kind, 1)

    def add_values(self, kind: str, count: int) -> None:
        self.count += count
        name = self._FIELDS[kind]
        setattr(self, name, getattr(self, name) + count)

    def add(self, other: "TypeCounts") -> None:
        for name in ("count", "numeric", "boolean", "timestamp", "text"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def column_type(self) -> str:
        return infer_column_type(numeric=self.numeric, boolean=self.boolean, timestamp=self.timestamp, text=self.text)

    @classmethod
    def of(cls, prop: CatalogProperty) -> "TypeCounts":
        return cls(prop.count, prop.numeric_count, prop.boolean_count, prop.timestamp_count, prop.text_count)


def flatten(properties: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) for every leaf: nested objects are walked, arrays and scalars are leaves."""
    if not isinstance(properties, dict):
        return
    for key, value in properties.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            yield from flatten(value, path)
        else:
            yield path, value
