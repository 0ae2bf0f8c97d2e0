"""Bringing each team's warehouse schema in line with its catalog (a full pass), and the grants of its login.

A team's events are typed tables in its own schema behind views laid out and named the way Segment does it
(events.warehouse.tables, events.warehouse.view_definitions, events.warehouse.naming). `python manage.py
sync_warehouse` (run with `--watch` in production) adds the events stored since the last pass to the catalog,
which fills the tables as it goes (events.warehouse.catalog); then `warehouse_sync` checks the relations of the
teams whose catalog moved on (of every team on a full pass) and repairs what is missing or out of line.

The rule a newcomer must know: the relations read the events past the last sync live, so an event is in them
the moment it is stored; only their *shape* waits for the sync. A team is brought in line in one transaction,
holding the catalog's state row so the catalog does not move meanwhile; readers see its old relations or its
new ones. One team whose relations fail holds back no other team.
"""

import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import sql

from events.models import CatalogSyncState, SyncStep, TeamWarehouse
from events.warehouse.sql_text import sql_text
from events.warehouse.tables import existing_views, tables_define, warehouse_grant_if_changed

logger = logging.getLogger(__name__)

# A view rebuild waits this long for BI queries holding the view, then gives up until the next sync.
LOCK_TIMEOUT = "5s"

POSTGRESQL_ONLY = "Warehouse views and credentials need PostgreSQL; this server uses {vendor}."


class WarehouseUnavailable(Exception):
    """The database is not PostgreSQL (local SQLite): there are no schemas, views or logins to make."""


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise WarehouseUnavailable(POSTGRESQL_ONLY.format(vendor=connection.display_name))


def warehouse_sync_team(*, warehouse_id: int) -> int:
    """Bring one team's tables and views in line with its catalog, in one transaction (readers see the old
    relations or the new ones). Returns how many relations were created, changed or dropped: 0 when none."""
    require_postgresql()
    with transaction.atomic(), connection.cursor() as cursor:
        # Taken before the team, as the catalog sync does: the catalog must not move while tables are filled.
        CatalogSyncState.objects.get_or_create(pk=1)
        CatalogSyncState.objects.select_for_update().get(pk=1)
        warehouse = TeamWarehouse.objects.select_for_update().get(pk=warehouse_id)
        version = warehouse.catalog_version
        cursor.execute(sql_text(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT))))
        changes = tables_define(cursor, warehouse=warehouse, full=True)
        warehouse_grant_if_changed(cursor, warehouse=warehouse, changes=changes)
        TeamWarehouse.objects.filter(pk=warehouse.pk).update(views_version=version, views_synced_at=timezone.now())
    return changes


@dataclass
class WarehouseSyncResult:
    teams: int = 0
    relations_changed: int = 0
    failed: int = 0


def warehouse_sync(*, everything: bool = False) -> WarehouseSyncResult:
    """Bring in line the relations of every team whose catalog moved on since its last build (of every team
    with `everything`; unchanged relations are left alone either way). One failing team does not stop the
    others."""
    require_postgresql()
    result = WarehouseSyncResult()
    warehouses = TeamWarehouse.objects.all()
    if not everything:
        warehouses = warehouses.filter(views_version__lt=F("catalog_version"))
    for warehouse in warehouses.order_by("pk"):
        try:
            result.relations_changed += warehouse_sync_team(warehouse_id=warehouse.pk)
        except Exception as error:  # whatever one team's relations do, the other teams are synced
            logger.exception("Could not update the warehouse tables of %s; will retry on the next sync.", warehouse)
            warehouse.record_sync_failure(step=SyncStep.VIEWS, error=error)
            result.failed += 1
        else:
            warehouse.clear_sync_failure(step=SyncStep.VIEWS)
            result.teams += 1
    return result


def warehouse_drop_views() -> None:
    """Drop every team's views, keeping its tables (the next sync makes the views again). A migration that
    changes the type of an events_event column the live views read must call this first: PostgreSQL refuses
    to while views use it."""
    require_postgresql()
    with transaction.atomic(), connection.cursor() as cursor:
        for warehouse in TeamWarehouse.objects.select_for_update():
            for name in sorted(existing_views(cursor, warehouse.schema_name)):
                cursor.execute(
                    sql_text(
                        sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(sql.Identifier(warehouse.schema_name, name))
                    )
                )
        TeamWarehouse.objects.update(views_version=0)
