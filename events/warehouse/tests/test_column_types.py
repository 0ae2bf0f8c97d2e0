"""events/warehouse/column_types.py: the type each value asks for, and the views' casts agreeing with it."""

import json
from datetime import datetime

import pytest
from django.db import connection
from psycopg import sql

from events.models import infer_column_type
from events.tests.event_factories import fetch
from events.warehouse.column_types import value_type
from events.warehouse.view_definitions import property_column

NUMERIC, BOOLEAN, TIMESTAMPTZ, TEXT = "numeric", "boolean", "timestamptz", "text"
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse views need PostgreSQL")


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param(39.95, NUMERIC, id="json-number"),
        pytest.param(3, NUMERIC, id="json-integer"),
        pytest.param("39.95", NUMERIC, id="numeric-string"),
        pytest.param("-7", NUMERIC, id="negative"),
        pytest.param("0", NUMERIC, id="zero"),
        pytest.param("0.05", NUMERIC, id="zero-point"),
        pytest.param("-0.05", NUMERIC, id="negative-zero-point"),
        pytest.param("1.50", NUMERIC, id="trailing-zero-kept"),
        pytest.param("02134", TEXT, id="zip-code"),
        pytest.param("007", TEXT, id="leading-zeros"),
        pytest.param("00.5", TEXT, id="leading-zeros-before-point"),
        pytest.param("+1", TEXT, id="plus-sign"),
        pytest.param("-1e3", TEXT, id="exponent"),
        pytest.param("1E3", TEXT, id="capital-exponent"),
        pytest.param("-0", TEXT, id="negative-zero"),
        pytest.param("-0.00", TEXT, id="negative-zero-with-point"),
        pytest.param(".5", TEXT, id="no-leading-digit"),
        pytest.param("1.", TEXT, id="no-digit-after-point"),
        pytest.param("+15551234567", TEXT, id="phone-number"),
        pytest.param("١٢٣", TEXT, id="arabic-indic-digits"),
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
        pytest.param("2024-01-05T10:00:00.123456000Z", TIMESTAMPTZ, id="nanoseconds-that-are-zeros"),
        pytest.param("2024-01-05T10:00:00.1234560000Z", TEXT, id="ten-fraction-digits"),
        pytest.param("2024-01-05T10:00:00+05:30:15", TEXT, id="offset-with-seconds"),
        pytest.param("0999-06-01T10:00:00Z", TIMESTAMPTZ, id="year-below-1000"),
        pytest.param("0001-01-01T00:00:00Z", TIMESTAMPTZ, id="first-instant"),
        pytest.param("0001-01-01T00:00:00", TIMESTAMPTZ, id="first-instant-local"),
        pytest.param("0001-01-01T00:00:00+01:00", TEXT, id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:00:00-05:00", TEXT, id="after-year-9999-in-utc"),
        pytest.param("10000-01-01", TEXT, id="five-digit-year"),
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
    39.95, 0, -7, -0.0, 1e300, 1.5e-300, 5e-324, 10**300, "39.95", "-1e3", "1e999", "1e1000", "12abc", ".5",
    "5.", "--5", "1" * 1001, "1" * 1000, "-0", "-0.0", "0.0", "02134", "+1",
    "2024-01-05T10:00:00Z", "2024-01-05T10:00:00.5+05:30", "2024-01-05 10:00-0800", "2024-01-05T10:00",
    "2024-01-05", "2024-02-29", "2023-02-29", "2024-02-30", "2024-04-31", "0000-01-01",
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
    "2024-01-05T10:00:00.123456000Z", "2024-01-05T10:00:00.1234567Z", "2024-01-05T10:00:00+05:30:15",
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
