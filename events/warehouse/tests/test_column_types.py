"""events/warehouse/column_types.py: the type each value asks for, and the views' casts agreeing with it."""

import json
from datetime import datetime

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from events.models import infer_column_type
from events.tests.event_factories import fetch
from events.warehouse.column_types import value_type, value_type_sql
from events.warehouse.view_definitions import property_column

NUMERIC, BOOLEAN, TIMESTAMPTZ, TEXT = "numeric", "boolean", "timestamptz", "text"
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse views need PostgreSQL")


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param(39.95, NUMERIC, id="json-number"),
        pytest.param(3, NUMERIC, id="json-integer"),
        pytest.param("39.95", NUMERIC, id="numeric-string"),
        pytest.param("-1e3", NUMERIC, id="exponent"),
        pytest.param("1e1000", TEXT, id="exponent-too-long"),
        pytest.param(".5", TEXT, id="no-leading-digit"),
        pytest.param("39.95\n", TEXT, id="trailing-newline"),
        pytest.param("1" * 1001, TEXT, id="too-many-digits"),
        pytest.param(True, BOOLEAN, id="json-true"),
        pytest.param("true", TEXT, id="string-true"),
        pytest.param("2024-01-05T10:00:00Z", TIMESTAMPTZ, id="iso-utc"),
        pytest.param("2024-01-05T10:00:00.123456+05:30", TIMESTAMPTZ, id="iso-offset"),
        pytest.param("2024-01-05 10:00-0800", TIMESTAMPTZ, id="space-and-short-offset"),
        pytest.param("2024-01-05T10:00", TIMESTAMPTZ, id="no-offset"),
        pytest.param("2024-01-05", TIMESTAMPTZ, id="date"),
        pytest.param("2024-02-29", TIMESTAMPTZ, id="leap-day"),
        pytest.param("2000-02-29", TIMESTAMPTZ, id="leap-century"),
        pytest.param("2023-02-29", TEXT, id="not-a-leap-year"),
        pytest.param("1900-02-29", TEXT, id="century-not-leap"),
        pytest.param("2024-04-31", TEXT, id="april-31"),
        pytest.param("0000-01-01", TEXT, id="year-zero"),
        pytest.param("2024-01-05T24:00:00Z", TEXT, id="hour-24"),
        pytest.param("2024-01-05T10:00:00+16:00", TEXT, id="offset-too-large"),
        pytest.param("2024-01-05T10:00:00.1234567Z", TEXT, id="seven-fraction-digits"),
        pytest.param("hello", TEXT, id="text"),
        pytest.param("", TEXT, id="empty"),
        pytest.param([1, 2], TEXT, id="array"),
        pytest.param(None, None, id="null-is-absent"),
    ],
)
def test_value_type(value, expected):
    assert value_type(value) == expected


@pytest.mark.parametrize(
    "counts, expected",
    [
        pytest.param({"numeric": 5}, NUMERIC, id="all-numeric"),
        pytest.param({"boolean": 1}, BOOLEAN, id="all-boolean"),
        pytest.param({"timestamp": 2}, TIMESTAMPTZ, id="all-timestamps"),
        pytest.param({"numeric": 5, "text": 1}, TEXT, id="mixed"),
        pytest.param({"numeric": 5, "boolean": 1}, TEXT, id="numbers-and-booleans"),
        pytest.param({}, TEXT, id="nothing-seen"),
    ],
)
def test_column_type_inference(counts, expected):
    assert infer_column_type(**{"numeric": 0, "boolean": 0, "timestamp": 0, "text": 0, **counts}) == expected


# The guard in front of each cast must accept exactly what the inference calls that type, and never fail.
GUARD_SAMPLES = [
    39.95, 0, -7, 1e300, 1.5e-300, "39.95", "-1e3", "1e999", "1e1000", "12abc", ".5", "5.", "--5", "1" * 1001,
    "2024-01-05T10:00:00Z", "2024-01-05T10:00:00.5+05:30", "2024-01-05 10:00-0800", "2024-01-05T10:00",
    "2024-01-05", "2024-02-29", "2023-02-29", "2024-02-30", "2024-04-31", "0000-01-01",
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "2024-13-01", "2024-01-05T24:00:00Z", "2024-01-05T10:00:00+16:00", "now", "today", "epoch", "infinity",
    "true", True, False, None, [1, 2], {"a": 1}, "", "hello",
]  # fmt: skip


def _cast(value, column_type: str, *, select: str = "{}"):
    expression = sql.SQL(select).format(property_column("v", ("v",), column_type).expression)
    query = sql.SQL("SELECT {} FROM (SELECT %s::jsonb AS properties) AS e").format(expression)
    connection.ensure_connection()
    return fetch(query.as_string(connection.connection), [json.dumps({"v": value})])[0][0]


@postgresql_only
@pytest.mark.django_db
@pytest.mark.parametrize("column_type", [NUMERIC, BOOLEAN, TIMESTAMPTZ])
def test_the_cast_guards_agree_with_the_inference_and_never_fail(column_type):
    for value in GUARD_SAMPLES:
        result = _cast(value, column_type)
        assert (result is not None) == (value_type(value) == column_type), value


@postgresql_only
@pytest.mark.django_db
@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("2024-01-05T10:00:00+05:30", datetime(2024, 1, 5, 4, 30), id="offset"),
        pytest.param("2024-01-05T10:00", datetime(2024, 1, 5, 10, 0), id="no-offset-is-utc"),
        pytest.param("2024-01-05", datetime(2024, 1, 5), id="date-is-midnight-utc"),
    ],
)
def test_timestamps_are_read_as_their_offset_says_or_as_utc(text, expected):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'America/New_York'")  # the reader's time zone must not matter
        assert _cast(text, TIMESTAMPTZ, select="({}) AT TIME ZONE 'UTC'") == expected


# --- The catalog sync types values in SQL (value_type_sql): the same answer as value_type, for every value ---


def _sql_types(values: list) -> list[str | None]:
    """value_type_sql of each value, in one query, as the catalog sync runs it (on the value's type and text)."""
    kind = value_type_sql(sql.SQL("jsonb_typeof(v)"), sql.SQL("v #>> '{}'"))
    query = sql.SQL("SELECT {} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t (v, n) ORDER BY n").format(
        kind
    )
    connection.ensure_connection()
    return [row[0] for row in fetch(query.as_string(connection.connection), [json.dumps(values)])]


TRICKY_VALUES = [
    *GUARD_SAMPLES,
    "02134", "0.5", "00", "0", "-0", "+1", "1e3", "1E3", "1e-3", "-0.0", "007", " 1", "1 ", "1_000", "\uff11\uff12",
    "\u0661\u0662", "2024-01-05T10:00:00", "2024-01-05t10:00:00Z", "2024-01-05T10:00:00z", "2024-1-5", "20240105",
    "2024-01-05T10:00:00+0530", "2024-01-05T10:00:00+05", "2024-01-05\n", "2024-01-05\n10:00", "\u00e9",
    "1" * 1000, "1" * 1000 + "0", [], [None], "null", "NaN", 1.0, -0.0, 10**30,
]  # fmt: skip


@postgresql_only
@pytest.mark.django_db
def test_sql_typing_agrees_with_value_type_on_tricky_values():
    assert _sql_types(TRICKY_VALUES) == [value_type(value) for value in TRICKY_VALUES]


_numberish = st.from_regex(r"[-+]?[0-9]{0,4}(\.[0-9]{0,3})?([eE][-+]?[0-9]{0,4})?", fullmatch=True)
_dateish = st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,7})?)?)?"
                         r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?", fullmatch=True)  # fmt: skip
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(), _numberish, _dateish,
)  # fmt: skip


@postgresql_only
@pytest.mark.django_db
@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(_scalars, st.lists(_scalars, max_size=2)), min_size=1, max_size=40))
def test_sql_typing_agrees_with_value_type_on_any_value(values):
    # NUL cannot be stored in PostgreSQL text, and the API refuses it (events.ingest.validation).
    values = [v.replace("\x00", "") if isinstance(v, str) else v for v in values]
    assert _sql_types(values) == [value_type(value) for value in values]
