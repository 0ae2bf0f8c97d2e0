"""events/warehouse/sync.py: names, type inference, and SQL through the views returning typed values."""

import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from accounts.models import Team
from events.ingest.validation import EventPayload
from events.models import CatalogEvent, CatalogProperty, TeamWarehouse, infer_column_type
from events.tests.event_factories import columns_of, fetch, fill_catalog, store_event, sync
from events.warehouse.catalog import catalog_sync
from events.warehouse.sync import (
    MAX_CATALOG_EVENTS,
    MAX_CATALOG_PROPERTIES,
    MAX_IDENTIFIER_BYTES,
    column_name_for,
    property_column,
    schema_name_for,
    snake_case,
    table_name_for,
    value_type,
    warehouse_changes,
    warehouse_sync,
)

NUMERIC, BOOLEAN, TIMESTAMPTZ, TEXT = "numeric", "boolean", "timestamptz", "text"
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse views need PostgreSQL")


# --- Names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("Purchased an Item", "purchased_an_item", id="words"),
        pytest.param("shippingMethod", "shipping_method", id="camel-case"),
        pytest.param("HTTPStatus", "http_status", id="acronym"),
        pytest.param("userID", "user_id", id="trailing-acronym"),
        pytest.param("item2Count", "item2_count", id="digit"),
        pytest.param("Café crème", "cafe_creme", id="accents"),
        pytest.param("$browser", "browser", id="dollar"),
        pytest.param("  Signed -- Up!  ", "signed_up", id="punctuation"),
        pytest.param("日本語", "", id="nothing-left"),
    ],
)
def test_snake_case(text, expected):
    assert snake_case(text) == expected


@pytest.mark.parametrize(
    "path, expected",
    [
        pytest.param(("address", "city"), "address_city", id="nested"),
        pytest.param(("shippingMethod",), "shipping_method", id="camel-case"),
        pytest.param(("order",), "order_", id="reserved-word"),
        pytest.param(("user",), "user_", id="reserved-user"),
        pytest.param(("timestamp",), "timestamp_", id="fixed-column"),
        pytest.param(("3ds",), "_3ds", id="leading-digit"),
        pytest.param(("🎉",), "property", id="no-letters"),
    ],
)
def test_property_column_names(path, expected):
    assert column_name_for(path, event_type="track", taken=set()) == expected


@pytest.mark.parametrize(
    "event, expected",
    [
        pytest.param("Purchased an Item", "purchased_an_item", id="segment-example"),
        pytest.param("Tracks", "tracks_", id="type-view-name"),
        pytest.param("Select", "select_", id="reserved-word"),
        pytest.param("🎉", "event", id="no-letters"),
    ],
)
def test_view_names(event, expected):
    assert table_name_for(event, taken=set()) == expected


def test_page_views_keep_name_and_category_for_the_page_itself():
    assert column_name_for(("name",), event_type="page", taken=set()) == "name_"
    assert column_name_for(("name",), event_type="track", taken=set()) == "name"


def test_names_are_cut_to_postgresqls_63_bytes():
    name = table_name_for("Checkout " * 20, taken=set())
    assert len(name.encode()) == MAX_IDENTIFIER_BYTES
    assert name.startswith("checkout_checkout_")


def test_the_name_seen_first_keeps_it_and_later_ones_get_a_digest():
    taken: set[str] = set()
    first = table_name_for("Signed Up", taken=taken)
    second = table_name_for("signed-up", taken=taken)
    assert first == "signed_up"
    assert second == "signed_up_" + hashlib.sha256(b"signed-up").hexdigest()[:8]
    # Deterministic: the same names in the same order give the same result.
    again: set[str] = set()
    assert [table_name_for(n, taken=again) for n in ("Signed Up", "signed-up")] == [first, second]


def test_a_long_clashing_name_still_fits_63_bytes():
    taken: set[str] = set()
    table_name_for("a" * 100, taken=taken)
    second = table_name_for("A" * 100, taken=taken)
    assert len(second) == MAX_IDENTIFIER_BYTES
    assert second.endswith("_" + hashlib.sha256(("A" * 100).encode()).hexdigest()[:8])


def test_property_paths_that_snake_case_alike_get_distinct_columns():
    taken: set[str] = set()
    flat = column_name_for(("address_city",), event_type="track", taken=taken)
    nested = column_name_for(("address", "city"), event_type="track", taken=taken)
    assert flat == "address_city"
    assert nested == "address_city_" + hashlib.sha256(json.dumps(["address", "city"]).encode()).hexdigest()[:8]


def test_schema_names_replace_dashes_and_avoid_another_teams_schema(db):
    team = Team.objects.create(name="Acme Corp", slug="acme-corp")
    assert schema_name_for(team, taken=set()) == "team_acme_corp"
    assert schema_name_for(team, taken={"team_acme_corp"}) == f"team_acme_corp_{team.pk}"
    taken = {"team_acme_corp", f"team_acme_corp_{team.pk}"}  # another team's slug was acme-corp-<our id>
    assert schema_name_for(team, taken=taken) == f"team_acme_corp_{team.pk}_2"


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def _assert_usable_identifiers(names: list[str]) -> None:
    """What PostgreSQL needs of every name the warehouse makes: at most 63 bytes, and no two alike."""
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name.encode()) <= MAX_IDENTIFIER_BYTES, name
        assert _IDENTIFIER.fullmatch(name), name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=200), max_size=30))
def test_any_event_names_get_distinct_identifiers_that_fit(event_names):
    taken: set[str] = set()
    _assert_usable_identifiers([table_name_for(name, taken=taken) for name in event_names])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(max_size=80), min_size=1, max_size=4).map(tuple), max_size=30))
def test_any_property_paths_get_distinct_columns_that_fit(paths):
    taken: set[str] = set()
    _assert_usable_identifiers([column_name_for(path, event_type="track", taken=taken) for path in paths])


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@st.composite
def colliding_names(draw) -> list[str]:
    """Names a tenant picks to collide with what the rules make: names already given, sent again in other
    letters; and names given, plus the digest suffixes the rules would add for a name still to come."""
    names: list[str] = []
    given_names: list[str] = []
    taken: set[str] = set()
    for _ in range(draw(st.integers(1, 25))):
        move = draw(st.sampled_from(["fresh", "again", "upper", "suffix", "long"]))
        if move == "fresh" or not given_names:
            name = draw(st.text(min_size=1, max_size=70))
        elif move == "again":
            name = draw(st.sampled_from(given_names))
        elif move == "upper":
            name = draw(st.sampled_from(given_names)).upper()
        elif move == "long":
            name = draw(st.sampled_from(given_names)) + "_" + "x" * draw(st.integers(0, 70))
        else:
            stem = draw(st.sampled_from(given_names))
            future = draw(st.sampled_from(names))
            parts = [_digest(future, length) for length in draw(st.lists(st.sampled_from([8, 16, 64]), max_size=3))]
            name = "_".join([stem, *parts])
        names.append(name)
        given_names.append(table_name_for(name, taken=taken))
    return names


@settings(max_examples=500, deadline=None)
@given(colliding_names())
def test_names_built_to_collide_still_get_distinct_identifiers_that_fit(names):
    taken: set[str] = set()
    _assert_usable_identifiers([table_name_for(name, taken=taken) for name in names])


def test_a_chain_of_names_taking_each_digest_suffix_in_turn_still_fits():
    a_digest = hashlib.sha256(b"A").hexdigest()
    # "a" takes its name, then a tenant takes both names the rules would give "A" next.
    chain = ["a", f"a_{a_digest[:8]}", f"a_{a_digest[:16]}", f"a_{a_digest[:8]}_{a_digest[:16]}", "A"]
    taken: set[str] = set()
    names = [table_name_for(name, taken=taken) for name in chain]
    _assert_usable_identifiers(names)
    assert names[-1] == f"a_{a_digest[:16]}_2"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(), min_size=1, max_size=50), st.integers(1, 10**9))
def test_schema_names_fit_for_any_slug(slug, team_id):
    team = Team(pk=team_id, slug=slug)
    taken: set[str] = set()
    names = []
    for _ in range(4):  # other teams whose slugs give the same schema name
        names.append(schema_name_for(team, taken=taken))
        taken.add(names[-1])
    _assert_usable_identifiers(names)


# --- Types ------------------------------------------------------------------------------------------------


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


# --- Views ------------------------------------------------------------------------------------------------


@postgresql_only
def test_views_return_typed_values(acme):
    store_event(
        acme,
        "Purchased an Item",
        {
            "revenue": "39.95",
            "shippingMethod": "2-day",
            "gift": True,
            "deliveredAt": "2024-01-05T10:00:00Z",
            "address": {"city": "Paris", "zip": 75001},
        },
    )
    sync()
    types = columns_of("team_acme", "purchased_an_item")
    assert {name: types[name] for name in list(types)[-6:]} == {
        "revenue": "numeric",
        "shipping_method": "text",
        "gift": "boolean",
        "delivered_at": "timestamp with time zone",
        "address_city": "text",
        "address_zip": "numeric",
    }
    row = fetch(
        "SELECT revenue, shipping_method, gift, delivered_at, address_city, address_zip, event, event_text "
        "FROM team_acme.purchased_an_item"
    )
    assert row == [
        (
            Decimal("39.95"),
            "2-day",
            True,
            datetime(2024, 1, 5, 10, tzinfo=UTC),
            "Paris",
            Decimal(75001),
            "purchased_an_item",
            "Purchased an Item",
        )
    ]


@postgresql_only
def test_mixed_values_make_a_text_column(acme):
    store_event(acme, "Rated", {"score": 5})
    store_event(acme, "Rated", {"score": "five"})
    sync()
    assert columns_of("team_acme", "rated")["score"] == "text"
    assert sorted(fetch("SELECT score FROM team_acme.rated")) == [("5",), ("five",)]


@postgresql_only
def test_a_value_that_does_not_fit_its_column_reads_as_null(acme):
    store_event(acme, "Purchased an Item", {"revenue": 10, "at": "2024-01-05", "gift": False})
    sync()
    # Sent after the sync typed the columns: the views must still answer, with NULL for what does not cast.
    store_event(acme, "Purchased an Item", {"revenue": "n/a", "at": "2024-02-30", "gift": "yes"})
    rows = fetch("SELECT revenue, at, gift FROM team_acme.purchased_an_item ORDER BY id")
    assert rows == [(Decimal(10), datetime(2024, 1, 5, tzinfo=UTC), False), (None, None, None)]


@postgresql_only
def test_tracks_has_every_track_with_its_identity_and_times(acme):
    sent = datetime(2024, 1, 5, 10, tzinfo=UTC)
    event_id = store_event(acme, "Signed Up", {"plan": "pro"}, timestamp=sent, message_id="m-1", anonymous_id="a-1")
    store_event(acme, "Purchased an Item", {"revenue": 1})
    store_event(acme, "Home", type="page", name="Home")
    sync()
    assert list(columns_of("team_acme", "tracks"))[:10] == [
        "id",
        "event",
        "event_text",
        "user_id",
        "anonymous_id",
        "message_id",
        "timestamp",
        "original_timestamp",
        "sent_at",
        "received_at",
    ]
    rows = fetch("SELECT id, event, event_text, user_id, anonymous_id, message_id, timestamp FROM team_acme.tracks")
    assert len(rows) == 2
    assert (event_id, "signed_up", "Signed Up", "user-1", "a-1", "m-1", sent) in rows


@postgresql_only
def test_every_segment_type_has_its_view(acme):
    store_event(acme, "identify", {"email": "ann@acme.test", "age": 33}, type="identify")
    store_event(acme, "Pricing", {"url": "/pricing", "ab": True}, type="page", name="Pricing", category="Docs")
    store_event(acme, "Settings", {"tab": "profile"}, type="screen", name="Settings")
    store_event(acme, "group", {"plan": "enterprise", "seats": "40"}, type="group", group_id="g-1")
    store_event(acme, "alias", type="alias", previous_id="anon-7")
    sync()
    assert fetch("SELECT user_id, email, age FROM team_acme.identifies") == [("user-1", "ann@acme.test", 33)]
    assert fetch("SELECT name, category, url, ab FROM team_acme.pages") == [("Pricing", "Docs", "/pricing", True)]
    assert fetch("SELECT name, tab FROM team_acme.screens") == [("Settings", "profile")]
    assert fetch("SELECT group_id, plan, seats FROM team_acme.groups") == [("g-1", "enterprise", 40)]
    assert fetch("SELECT user_id, previous_id FROM team_acme.aliases") == [("user-1", "anon-7")]
    assert fetch("SELECT count(*) FROM team_acme.tracks") == [(0,)]


@postgresql_only
def test_pages_of_different_names_share_their_columns(acme):
    store_event(acme, "Home", {"url": "/"}, type="page", name="Home")
    store_event(acme, "Pricing", {"url": "/pricing", "plan": "pro"}, type="page", name="Pricing")
    sync()
    assert list(columns_of("team_acme", "pages"))[-2:] == ["url", "plan"]
    assert sorted(fetch("SELECT name, url FROM team_acme.pages")) == [("Home", "/"), ("Pricing", "/pricing")]


@postgresql_only
def test_a_teams_views_show_only_its_own_events(acme, globex):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    store_event(globex, "Purchased an Item", {"revenue": 2})
    sync()
    assert fetch("SELECT revenue FROM team_acme.purchased_an_item") == [(Decimal(1),)]
    assert fetch("SELECT revenue FROM team_globex.purchased_an_item") == [(Decimal(2),)]
    assert fetch("SELECT count(*) FROM team_acme.tracks") == [(1,)]


@postgresql_only
def test_views_are_security_barriers(acme):
    store_event(acme, "Purchased an Item")
    sync()
    options = fetch(
        "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'team_acme'"
    )
    assert {name for name, _ in options} == {
        "tracks", "identifies", "pages", "screens", "groups", "aliases", "purchased_an_item"
    }  # fmt: skip
    assert all(reloptions == ["security_barrier=true"] for _, reloptions in options)


def _oid(view: str) -> int:
    return fetch("SELECT %s::regclass::oid", [view])[0][0]


@postgresql_only
def test_a_new_property_is_added_in_place_and_a_type_change_rebuilds_the_view(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    sync()
    first = _oid("team_acme.purchased_an_item")

    store_event(acme, "Purchased an Item", {"revenue": 2, "coupon": "SPRING"})
    sync()
    assert _oid("team_acme.purchased_an_item") == first  # CREATE OR REPLACE: BI tools keep their view
    assert list(columns_of("team_acme", "purchased_an_item"))[-2:] == ["revenue", "coupon"]

    store_event(acme, "Purchased an Item", {"revenue": "free"})
    sync()
    assert columns_of("team_acme", "purchased_an_item")["revenue"] == "text"
    assert sorted(fetch("SELECT revenue FROM team_acme.purchased_an_item")) == [("1",), ("2",), ("free",)]


@postgresql_only
def test_sync_is_idempotent(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    sync()
    views_before = TeamWarehouse.objects.get(team=acme).views
    assert warehouse_sync(everything=True).views_changed == 0
    assert catalog_sync().events == 0
    assert TeamWarehouse.objects.get(team=acme).views == views_before
    assert CatalogEvent.objects.get(team=acme).count == 1


@postgresql_only
def test_the_command_builds_every_view_and_a_second_run_changes_nothing(acme, capsys):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    call_command("sync_warehouse")
    assert "Catalog: 1 new events. Views: 7 changed in 1 teams checked." in capsys.readouterr().out
    call_command("sync_warehouse")
    assert "Catalog: 0 new events. Views: 0 changed in 1 teams checked." in capsys.readouterr().out
    assert fetch("SELECT count(*) FROM team_acme.purchased_an_item") == [(1,)]


@postgresql_only
def test_a_schema_left_by_a_deleted_team_is_replaced_on_first_build(acme):
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA team_acme")
        cursor.execute("CREATE VIEW team_acme.leftover AS SELECT 1 AS x")
    store_event(acme, "Purchased an Item")
    sync()
    assert "leftover" not in {name for (name,) in fetch("SELECT viewname FROM pg_views WHERE schemaname = 'team_acme'")}


@postgresql_only
def test_a_view_dropped_by_hand_is_rebuilt_by_the_next_full_sync(acme):
    store_event(acme, "Purchased an Item")
    sync()
    with connection.cursor() as cursor:
        cursor.execute("DROP VIEW team_acme.purchased_an_item")
    assert warehouse_sync(everything=True).views_changed == 1
    assert fetch("SELECT count(*) FROM team_acme.purchased_an_item") == [(1,)]


# --- One team's names or views never stop another team ---------------------------------------------------


@postgresql_only
def test_names_built_to_collide_are_synced_into_views_with_those_names(acme, globex):
    a_digest = hashlib.sha256(b"A").hexdigest()
    chain = ["a", f"a_{a_digest[:8]}", f"a_{a_digest[:16]}", f"a_{a_digest[:8]}_{a_digest[:16]}", "A"]
    for name in chain:
        store_event(acme, name, {name: 1, name.upper(): "x"})
    store_event(globex, "Signed Up")

    call_command("sync_warehouse")

    tables = list(CatalogEvent.objects.filter(team=acme).order_by("pk").values_list("table_name", flat=True))
    assert len(tables) == len(chain) and all(len(name) <= MAX_IDENTIFIER_BYTES for name in tables)
    views = {name for (name,) in fetch("SELECT viewname FROM pg_views WHERE schemaname = 'team_acme'")}
    assert set(tables) <= views
    assert fetch("SELECT count(*) FROM team_globex.signed_up") == [(1,)]


@postgresql_only
def test_a_team_whose_views_fail_holds_back_no_other_team(acme, globex, capsys):
    store_event(acme, "Signed Up")
    sync()
    with connection.cursor() as cursor:  # a table where the sync must put a view: acme's rebuild fails
        cursor.execute("CREATE TABLE team_acme.purchased_an_item (x int)")
    store_event(acme, "Purchased an Item")
    store_event(globex, "Purchased an Item")

    with pytest.raises(CommandError, match="could not be synced"):
        call_command("sync_warehouse")

    assert "1 failed" in capsys.readouterr().out
    assert fetch("SELECT count(*) FROM team_globex.purchased_an_item") == [(1,)]
    failing = TeamWarehouse.objects.get(team=acme)
    assert failing.sync_error_step == "views"
    assert "purchased_an_item" in failing.sync_error
    assert failing.sync_failing_since is not None
    assert TeamWarehouse.objects.get(team=globex).sync_failing_since is None

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE team_acme.purchased_an_item")
    call_command("sync_warehouse")
    assert fetch("SELECT count(*) FROM team_acme.purchased_an_item") == [(1,)]
    assert TeamWarehouse.objects.get(team=acme).sync_failing_since is None


@postgresql_only
def test_metrics_count_the_teams_whose_sync_fails(client, acme, globex):
    store_event(acme, "Signed Up")
    sync()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE team_acme.purchased_an_item (x int)")
    store_event(acme, "Purchased an Item")
    sync()
    sync()

    page = client.get("/metrics").content.decode()
    samples = {
        sample.name: sample.value for family in text_string_to_metric_families(page) for sample in family.samples
    }
    assert samples["canvas_warehouse_sync_failing_teams"] == 1
    assert samples["canvas_warehouse_sync_failures_total"] == 2


# --- Dry run ----------------------------------------------------------------------------------------------


def _payload(event: str, properties: dict, *, type: str = "track") -> EventPayload:
    now = timezone.now()
    return EventPayload(
        event=event, properties=properties, timestamp=now, original_timestamp=None, sent_at=None, message_id=None,
        type=type,
    )  # fmt: skip


@pytest.mark.django_db
def test_dry_run_reports_new_views_and_columns_for_a_new_team(acme):
    changes = warehouse_changes(team=acme, payloads=[_payload("Purchased an Item", {"revenue": "39.95"})])
    assert changes == {
        "schema": "team_acme",
        "views": [
            {"view": "tracks", "event": None, "type": "track", "change": "create"},
            {"view": "purchased_an_item", "event": "Purchased an Item", "type": "track", "change": "create"},
        ],
        "columns": [
            {
                "view": "purchased_an_item",
                "column": "revenue",
                "property": "revenue",
                "type": NUMERIC,
                "change": "add",
            }
        ],
    }


@pytest.mark.django_db
def test_dry_run_reports_added_columns_and_type_changes_and_nothing_else(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1, "coupon": "A"})
    store_event(acme, "Home", {"url": "/"}, type="page", name="Home")
    catalog_sync()
    payloads = [
        _payload("Purchased an Item", {"revenue": "free", "coupon": "B", "address": {"city": "Paris"}}),
        _payload("Home", {"url": "/about", "referrer": "x"}, type="page"),
    ]
    changes = warehouse_changes(team=acme, payloads=payloads)
    assert changes["views"] == []
    assert changes["columns"] == [
        {
            "view": "purchased_an_item",
            "column": "revenue",
            "property": "revenue",
            "type": TEXT,
            "previous_type": NUMERIC,
            "change": "type",
        },
        {
            "view": "purchased_an_item",
            "column": "address_city",
            "property": "address.city",
            "type": TEXT,
            "change": "add",
        },
        {"view": "pages", "column": "referrer", "property": "referrer", "type": TEXT, "change": "add"},
    ]


@pytest.mark.django_db
def test_dry_run_reports_names_and_properties_the_catalog_would_count_as_other(acme):
    store_event(acme, "Purchased an Item", {f"p{i}": i for i in range(MAX_CATALOG_PROPERTIES)})
    catalog_sync()
    fill_catalog(acme, MAX_CATALOG_EVENTS - 2)  # room for one name more
    payloads = [
        _payload("Signed Up", {"plan": "pro"}),  # takes the last place
        _payload("Viewed 1", {"sku": "a"}),
        _payload("Viewed 1", {"sku": "b"}),
        _payload("Purchased an Item", {"p0": 1, "coupon": "A"}),
        _payload("Home", {"url": "/"}, type="page"),
    ]
    changes = warehouse_changes(team=acme, payloads=payloads)
    assert [view["event"] for view in changes["views"]] == ["Signed Up"]
    assert {column["column"] for column in changes["columns"]} == {"plan"}
    assert changes["counted_as_other"] == {
        "events": [{"type": "track", "event": "Viewed 1"}, {"type": "page", "event": "Home"}],
        "properties": [{"type": "track", "event": "Purchased an Item", "property": "coupon"}],
    }


@pytest.mark.django_db
def test_dry_run_writes_nothing(acme, django_assert_max_num_queries):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    catalog_sync()
    counts = (CatalogEvent.objects.count(), CatalogProperty.objects.count(), TeamWarehouse.objects.count())
    with django_assert_max_num_queries(6) as captured:
        warehouse_changes(team=acme, payloads=[_payload("Signed Up", {"plan": "pro"}) for _ in range(50)])
    assert not [q for q in captured.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert (CatalogEvent.objects.count(), CatalogProperty.objects.count(), TeamWarehouse.objects.count()) == counts
