"""events/warehouse/view_definitions.py: what a team's views hold, read through SQL after a sync."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from events.models import CatalogEvent
from events.tests.event_factories import columns_of, fetch, store_event, sync

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse views need PostgreSQL")


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
def test_each_relation_is_a_table_a_live_view_and_the_view_over_both(acme):
    store_event(acme, "Purchased an Item")
    sync()
    event_id = CatalogEvent.objects.get(team=acme, name="Purchased an Item").pk
    relations = fetch(
        "SELECT c.relname, c.relkind, coalesce(c.reloptions, '{}') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'team_acme' AND c.relkind IN ('r', 'v')"
    )
    names = ["tracks", "identifies", "pages", "screens", "groups", "aliases"]
    tables = {f"_{name}" for name in names} | {f"_event_{event_id}"}
    assert {(name, kind) for name, kind, _ in relations} == {
        *((name, "v") for name in [*names, "purchased_an_item"]),
        *((table, "r") for table in tables),
        *((f"{table}_live", "v") for table in tables),
    }
    # Only the live views, which read every team's events_event, are security barriers.
    assert {name for name, _, options in relations if options} == {f"{table}_live" for table in tables}
    assert all(options == ["security_barrier=true"] for _, _, options in relations if options)
