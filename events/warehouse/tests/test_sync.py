"""events/warehouse/sync.py: bringing a team's tables and views in line with its catalog, and only when needed;
one team's failure holding back no other."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from events.models import CatalogEvent, CatalogSyncState, TeamWarehouse
from events.tests.event_factories import fetch, store_event, sync
from events.warehouse.catalog import catalog_sync
from events.warehouse.naming import MAX_IDENTIFIER_BYTES
from events.warehouse.sync import warehouse_sync

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse views need PostgreSQL")


def _oid(view: str) -> int:
    return fetch("SELECT %s::regclass::oid", [view])[0][0]


@postgresql_only
def test_sync_is_idempotent(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    sync()
    views_before = TeamWarehouse.objects.get(team=acme).views
    assert warehouse_sync(everything=True).relations_changed == 0
    assert catalog_sync().events == 0
    assert TeamWarehouse.objects.get(team=acme).views == views_before
    assert CatalogEvent.objects.get(team=acme).count == 1


@postgresql_only
def test_the_command_builds_every_view_and_a_second_run_changes_nothing(acme, capsys):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    call_command("sync_warehouse")
    # The catalog sync built the team's 7 relations as it catalogued the event; the full pass finds them in line.
    assert "Catalog: 1 new events. Relations: 0 changed in 1 teams checked." in capsys.readouterr().out
    assert len(TeamWarehouse.objects.get(team=acme).views) == 7
    call_command("sync_warehouse")
    assert "Catalog: 0 new events. Relations: 0 changed in 1 teams checked." in capsys.readouterr().out
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
    assert warehouse_sync(everything=True).relations_changed == 1
    assert fetch("SELECT count(*) FROM team_acme.purchased_an_item") == [(1,)]


@postgresql_only
def test_a_table_dropped_by_hand_is_filled_again_by_the_next_full_sync(acme):
    store_event(acme, "Signed Up")
    store_event(acme, "Signed Up")
    sync()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE team_acme._tracks CASCADE")
    assert warehouse_sync(everything=True).relations_changed == 1
    assert fetch("SELECT count(*) FROM team_acme._tracks") == [(2,)]
    assert fetch("SELECT count(*) FROM team_acme.tracks") == [(2,)]


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
def test_a_team_whose_relations_fail_holds_back_no_other_team(acme, globex, capsys):
    store_event(acme, "Signed Up")
    sync()
    with connection.cursor() as cursor:  # a table where the sync must put a view: acme's catalog step fails
        cursor.execute("CREATE TABLE team_acme.purchased_an_item (x int)")
    store_event(acme, "Purchased an Item")
    store_event(globex, "Purchased an Item")

    with pytest.raises(CommandError, match="could not be synced"):
        call_command("sync_warehouse")

    assert "1 teams failed" in capsys.readouterr().out
    assert fetch("SELECT count(*) FROM team_globex.purchased_an_item") == [(1,)]
    failing = TeamWarehouse.objects.get(team=acme)
    assert failing.sync_error_step == "catalog"  # the tables are filled in the team's catalog savepoint
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


@postgresql_only
def test_metrics_show_how_far_the_catalog_is_behind(client, acme, time_machine):
    time_machine.move_to(datetime(2026, 12, 8, 12, 0, tzinfo=UTC), tick=False)
    catalog_sync()
    CatalogSyncState.objects.update(open_gaps=[])
    store_event(acme, "Signed Up", received_at=timezone.now() - timedelta(seconds=90))

    def samples() -> dict[str, float]:
        page = client.get("/metrics").content.decode()
        return {
            sample.name: sample.value for family in text_string_to_metric_families(page) for sample in family.samples
        }

    behind = samples()
    assert (behind["canvas_warehouse_sync_lag_events"], behind["canvas_warehouse_sync_lag_seconds"]) == (1, 90)
    catalog_sync()
    caught_up = samples()
    assert (caught_up["canvas_warehouse_sync_lag_events"], caught_up["canvas_warehouse_sync_lag_seconds"]) == (0, 0)
