"""events/warehouse/tables.py: a team's relations are typed tables filled by the catalog sync, plus a live part,
so an event is readable the moment it is stored and exactly once; a catalog change alters one table only."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from psycopg import sql

from events.models import CatalogEvent, CatalogSyncState
from events.tests.event_factories import fetch, store_event, sync
from events.warehouse.catalog import LIVE_GAP_SECONDS

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse tables need PostgreSQL")


def _table_of(acme, name: str) -> str:
    """The table behind one of acme's per-event relations."""
    return f"_event_{CatalogEvent.objects.get(team=acme, table_name=name).pk}"


def _run(statement: str, table: str) -> list[tuple]:
    """`statement` with {table} standing for acme's table of that name."""
    connection.ensure_connection()
    query = sql.SQL(statement).format(table=sql.Identifier("team_acme", table)).as_string(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall() if cursor.description else []


def _relfilenodes() -> dict[str, int]:
    rows = fetch(
        "SELECT c.relname, c.relfilenode FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'team_acme' AND c.relkind = 'r'"
    )
    return dict(rows)


def test_an_event_is_readable_right_after_it_is_stored_and_once_after_a_sync(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    sync()
    table = _table_of(acme, "purchased_an_item")

    second = store_event(acme, "Purchased an Item", {"revenue": 2})
    assert _run("SELECT count(*) FROM {table}", table) == [(1,)]  # not copied yet: served by the live part
    assert sorted(fetch("SELECT id, revenue FROM team_acme.purchased_an_item"))[-1] == (second, 2)
    assert fetch("SELECT count(*) FROM team_acme.tracks WHERE id = %s", [second]) == [(1,)]

    sync()
    assert _run("SELECT count(*) FROM {table}", table) == [(2,)]
    assert fetch("SELECT count(*), count(DISTINCT id) FROM team_acme.purchased_an_item") == [(2, 2)]
    assert fetch("SELECT count(*), count(DISTINCT id) FROM team_acme.tracks") == [(2, 2)]


def test_a_row_copied_before_the_boundary_moves_is_still_read_once(acme):
    # A gap below the new row keeps the live boundary low: the row is both copied and past the boundary.
    store_event(acme, "Signed Up")
    sync()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('events_event', 'id'))")  # an id that never commits
    store_event(acme, "Signed Up")
    sync()

    assert fetch("SELECT count(*) FROM team_acme._tracks") == [(2,)]
    assert fetch("SELECT count(*), count(DISTINCT id) FROM team_acme.tracks") == [(2, 2)]


def test_only_a_recent_gap_holds_the_live_boundary_back(acme):
    # An id drawn and never used (a duplicate, a reserve let go) must not keep every live read scanning from it.
    store_event(acme, "Signed Up")
    sync()  # earlier tests' rolled-back ids are gaps noticed now, long before the travel below
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('events_event', 'id'))")
        (never_used,) = cursor.fetchone()
    later = store_event(acme, "Signed Up")
    with time_machine.travel(datetime(2031, 1, 1, 12, tzinfo=UTC), tick=False):
        sync()
        assert CatalogSyncState.objects.get().live_from_id == never_used  # it may still be in flight
    with time_machine.travel(datetime(2031, 1, 1, 12, tzinfo=UTC) + timedelta(seconds=LIVE_GAP_SECONDS), tick=False):
        sync()
        assert CatalogSyncState.objects.get().live_from_id == later + 1
    assert fetch("SELECT count(*), count(DISTINCT id) FROM team_acme.tracks") == [(2, 2)]


def test_a_new_property_adds_a_column_to_its_table_only(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    store_event(acme, "Signed Up", {"plan": "pro"})
    sync()
    before = _relfilenodes()
    view_oid = fetch("SELECT 'team_acme.purchased_an_item'::regclass::oid")

    store_event(acme, "Purchased an Item", {"revenue": 2, "coupon": "SPRING"})
    sync()

    assert _relfilenodes() == before  # ADD COLUMN rewrites no table
    assert fetch("SELECT 'team_acme.purchased_an_item'::regclass::oid") == view_oid  # BI tools keep their view
    assert sorted(fetch("SELECT revenue, coupon FROM team_acme.purchased_an_item")) == [(1, None), (2, "SPRING")]


def test_a_type_change_recomputes_that_table_alone_from_the_events(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    store_event(acme, "Signed Up", {"plan": "pro"})
    sync()
    before = _relfilenodes()
    purchases = _table_of(acme, "purchased_an_item")

    store_event(acme, "Purchased an Item", {"revenue": "free"})
    sync()

    after = _relfilenodes()
    assert {name for name in after if after[name] != before[name]} == {purchases}
    assert fetch(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'team_acme' "
        "AND table_name = 'purchased_an_item' AND column_name = 'revenue'"
    ) == [("text",)]
    assert sorted(fetch("SELECT revenue FROM team_acme.purchased_an_item")) == [("1",), ("free",)]


def test_events_of_a_team_in_its_backlog_are_read_live_until_it_catches_up(acme, monkeypatch):
    store_event(acme, "Signed Up")
    sync()

    def refuse(*args, **kwargs):
        raise RuntimeError("catalog refused")

    monkeypatch.setattr("events.warehouse.catalog._update_volume", refuse)
    waiting = store_event(acme, "Signed Up")
    sync()
    assert fetch("SELECT count(*) FROM team_acme._tracks") == [(1,)]
    assert fetch("SELECT count(*) FROM team_acme.tracks WHERE id = %s", [waiting]) == [(1,)]

    monkeypatch.undo()
    sync()
    assert fetch("SELECT count(*) FROM team_acme._tracks") == [(2,)]
    assert fetch("SELECT count(*), count(DISTINCT id) FROM team_acme.tracks") == [(2, 2)]


def _plan_nodes(plan: dict) -> list[tuple[str, str]]:
    nodes = [(plan["Node Type"], plan.get("Index Name", ""))]
    for child in plan.get("Plans", ()):
        nodes += _plan_nodes(child)
    return nodes


def test_the_latest_rows_come_from_the_timestamp_index_merged_with_the_live_part(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    sync()
    table = _table_of(acme, "purchased_an_item")
    # Enough rows that sorting the whole table would cost more than reading the index.
    _run(
        "INSERT INTO {table} (id, event, timestamp) SELECT -n, 'purchased_an_item', now() - n * interval '1 second' "
        "FROM generate_series(1, 20000) n",
        table,
    )
    _run("ANALYZE {table}", table)
    (plan,) = fetch(
        "EXPLAIN (FORMAT JSON) SELECT * FROM team_acme.purchased_an_item ORDER BY timestamp DESC LIMIT 100"
    )[0]
    nodes = _plan_nodes(json.loads(plan)[0]["Plan"] if isinstance(plan, str) else plan[0]["Plan"])

    assert ("Merge Append", "") in nodes
    assert any(node.startswith("Index Scan") and index == f"{table}_timestamp" for node, index in nodes)
    assert not any(node == "Seq Scan" for node, _ in nodes)
