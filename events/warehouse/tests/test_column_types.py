"""events/warehouse/column_types.py: the type each value asks for, the views' casts agreeing with it, and every value
reading back through the warehouse as it was sent."""

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import DataError, connection, transaction
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from psycopg import sql

from events.models import CatalogEvent, CatalogProperty, TeamWarehouse, infer_column_type
from events.tests.event_factories import columns_of, fetch, store_event, sync
from events.warehouse.column_types import MAX_NUMERIC_LENGTH, value_type, value_type_sql
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
@pytest.mark.parametrize("text", ["1.50", "0.000", "-0.05", "39.95", "1" * MAX_NUMERIC_LENGTH])
def test_a_numeric_string_reads_back_with_its_digits(text):
    assert _cast(text, NUMERIC, select="({})::text") == text  # numeric keeps the scale: trailing zeros too


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


# --- Round trips: what the rules pick never loses the value ------------------------------------------------------

ROUND_TRIP = settings(
    max_examples=8,  # for each family: about 60 examples, each with a sync
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: it would sync once per attempt, for minutes
    derandomize=True,  # the same examples every run: the suite must not wobble
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Strings that look like numbers: signs, leading zeros, points at either end, exponents, and digit runs around
# MAX_NUMERIC_LENGTH.
NUMERIC_ISH = st.from_regex(r"[+-]?0{0,2}[0-9]{0,6}(\.[0-9]{0,4})?([eE][+-]?[0-9]{1,3})?", fullmatch=True) | st.builds(
    lambda head, digits, tail: head + "7" * digits + tail,
    st.sampled_from(["", "-", "0", "-0."]),
    st.integers(MAX_NUMERIC_LENGTH - 5, MAX_NUMERIC_LENGTH + 2),
    st.sampled_from(["", ".5", "0"]),
)


@st.composite
def date_ish(draw) -> str:
    """ISO-8601-like strings, most of them valid, with the edges of every part: years 1 and 9999, day 31 in short
    months, hour 24, more than six fraction digits, offsets with seconds or beyond 15:59."""
    year = draw(st.sampled_from([1, 999, 1000, 1900, 2000, 2024, 9999]) | st.integers(0, 9999))
    month, day = draw(
        st.sampled_from([(1, 1), (2, 29), (4, 31), (12, 31)]) | st.tuples(st.integers(1, 12), st.integers(1, 28))
    )
    text = f"{year:04}-{month:02}-{day:02}"
    if draw(st.booleans()):
        text += draw(st.sampled_from(["T", " "])) + f"{draw(st.integers(0, 24)):02}:{draw(st.integers(0, 59)):02}"
        if draw(st.booleans()):
            text += f":{draw(st.integers(0, 59)):02}"
            text += draw(st.none() | st.from_regex(r"\.[0-9]{1,6}0{0,4}|\.[0-9]{7,9}", fullmatch=True)) or ""
        text += draw(
            st.sampled_from(["", "Z", "+00:00", "-00:00"])
            | st.from_regex(r"[+-](0[0-9]|1[0-6])(:?[0-5][0-9](:[0-5][0-9])?)?", fullmatch=True)
        )
    return text


# What PostgreSQL can store: no NUL, no lone surrogate.
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
JSON_NUMBERS = st.integers(-(10**30), 10**30) | st.floats(allow_nan=False, allow_infinity=False)
# Valid ones too, so that numeric and timestamptz columns come up often.
DECIMALS = st.decimals(-(10**12), 10**12, allow_nan=False, allow_infinity=False).map(lambda number: f"{number:f}")
OFFSETS = st.integers(-959, 959).map(lambda minutes: timezone(timedelta(minutes=minutes)))  # up to ±15:59
DATE_TIMES = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.one_of(st.none(), OFFSETS)).map(
    datetime.isoformat
)
FAMILIES = {
    "numeric-ish": NUMERIC_ISH,
    "decimal": DECIMALS,
    "date-ish": date_ish(),
    "date-time": DATE_TIMES,
    "text": ANY_TEXT,
    "json-number": JSON_NUMBERS,
    "boolean": st.booleans(),
    "array": st.lists(st.integers(-1000, 1000) | ANY_TEXT, max_size=3),
}


@st.composite
def property_values(draw, family: str) -> list:
    """The values one property is sent with: a few of one family (one type, mostly), sometimes with a value of
    any family mixed in (text, then)."""
    values = draw(st.lists(FAMILIES[family], min_size=1, max_size=3))
    if draw(st.integers(0, 3)) == 0:
        values.append(draw(FAMILIES[draw(st.sampled_from(sorted(FAMILIES)))]))
    return values


def _utc_instant(text: str) -> datetime:
    """The instant an ISO-8601 string names, read by Python rather than PostgreSQL; no offset means UTC."""
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _assert_reads_back(sent, column_type: str, value, text: str | None) -> None:
    """`value` and `text` (its ::text) are what a reader gets from a column of `column_type` for `sent`."""
    if column_type == NUMERIC:
        if isinstance(sent, str):
            assert text == sent and value == Decimal(sent)  # canonical: numeric's own text is the string
        else:  # a JSON number: the same number, as stored (floats by their shortest repr)
            assert value == Decimal(repr(sent) if isinstance(sent, float) else sent)
    elif column_type == BOOLEAN:
        assert value is sent
    elif column_type == TIMESTAMPTZ:
        assert value == _utc_instant(sent)
    elif isinstance(sent, str):
        assert value == sent  # text is kept exactly, unicode and all
    elif isinstance(sent, bool):
        assert value == json.dumps(sent)
    elif isinstance(sent, int | float):  # a JSON number in a text column: jsonb's spelling of the same number
        assert Decimal(value) == Decimal(repr(sent) if isinstance(sent, float) else sent)
    else:
        assert json.loads(value) == sent


_examples = itertools.count()
INFORMATION_SCHEMA_TYPES = {TIMESTAMPTZ: "timestamp with time zone"}


def _read_back(relation: sql.Composable, column: str, *, after_id: int = 0) -> list[tuple]:
    """(id, value, value::text) of the relation's rows past `after_id`, as a reader's query gets them."""
    connection.ensure_connection()
    query = sql.SQL("SELECT id, {c}, {c}::text FROM {r} WHERE id > %s ORDER BY id").format(
        c=sql.Identifier(column), r=relation
    )
    return fetch(query.as_string(connection.connection), [after_id])


def _type_counts(values: list) -> dict[str, int]:
    kinds = [value_type(value) for value in values]
    names = {NUMERIC: "numeric", BOOLEAN: "boolean", TIMESTAMPTZ: "timestamp", TEXT: "text"}
    return {name: kinds.count(kind) for kind, name in names.items()}


@postgresql_only
@pytest.mark.django_db
@pytest.mark.parametrize("family", FAMILIES)
@ROUND_TRIP
@given(data=st.data())
def test_a_value_read_back_through_the_warehouse_is_the_value_sent(acme, family, data):
    """Stored as the ingest path stores it, read back through the team's relation for its event, after a sync
    and before the next one: the same number, boolean, instant or text, whatever type the rules pick."""
    values = data.draw(property_values(family), label="values")
    name = f"Round Trip {next(_examples)}"  # a view of its own: earlier examples' values do not mix in
    for value in values:
        store_event(acme, name, {"sent": value})
    sync()
    schema = TeamWarehouse.objects.get(team=acme).schema_name
    table = CatalogEvent.objects.get(team=acme, name=name).table_name
    column = CatalogProperty.objects.get(team=acme, catalog_event__name=name, path=["sent"]).column_name
    column_type = infer_column_type(**_type_counts(values))
    event(column_type)  # --hypothesis-show-statistics shows how many examples each type got
    assert columns_of(schema, table)[column] == INFORMATION_SCHEMA_TYPES.get(column_type, column_type)

    relation = sql.Identifier(schema, table)
    synced = _read_back(relation, column)
    for value in values:
        store_event(acme, name, {"sent": value})
    unsynced = _read_back(relation, column, after_id=synced[-1][0])  # served before any sync catalogues them
    for rows in (synced, unsynced):
        assert len(rows) == len(values)
        for sent, (_, value, text) in zip(values, rows, strict=True):
            _assert_reads_back(sent, column_type, value, text)


def _numeric_text(text: str) -> str | None:
    """PostgreSQL's numeric rendering of `text`, or None if numeric refuses it."""
    try:
        with transaction.atomic():
            return fetch("SELECT %s::numeric::text", [text])[0][0]
    except DataError:
        return None


@postgresql_only
@pytest.mark.django_db
@settings(ROUND_TRIP, max_examples=40)
@given(text=NUMERIC_ISH | ANY_TEXT)
def test_a_string_is_numeric_exactly_when_numeric_gives_it_back_unchanged(text):
    """The canonical-decimal rule, checked against PostgreSQL itself: "02134", "+1", "1e3" and "-0" come back as
    other text, so they are text; every string that comes back unchanged (and is a finite number) is numeric."""
    unchanged = _numeric_text(text) == text and text not in ("NaN", "Infinity", "-Infinity")
    assert (value_type(text) == NUMERIC) == (unchanged and len(text) <= MAX_NUMERIC_LENGTH)


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
@settings(max_examples=60, deadline=None, derandomize=True, database=None)  # the suite must not wobble
@given(values=st.lists(st.one_of(_scalars, st.lists(_scalars, max_size=2)), min_size=1, max_size=40))
def test_sql_typing_agrees_with_value_type_on_any_value(values):
    # NUL cannot be stored in PostgreSQL text, and the API refuses it (events.ingest.validation).
    values = [v.replace("\x00", "") if isinstance(v, str) else v for v in values]
    assert _sql_types(values) == [value_type(value) for value in values]
