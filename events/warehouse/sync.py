"""Bringing each team's warehouse schema in line with its catalog: the views, and the grants of the team's login.

A team's events are typed PostgreSQL views in its own schema, laid out and named the way Segment does it
(events.warehouse.view_definitions, events.warehouse.naming). `python manage.py sync_warehouse` (run with
`--watch` in production) first adds the events stored since the last pass to the catalog
(events.warehouse.catalog), then `warehouse_sync` rebuilds the views of the teams whose catalog moved on.

The rule a newcomer must know: the views read events_event live, so an event is in them the moment it is
stored; only their *shape* waits for the sync (a new event name, a new property, a type change). A team is
rebuilt in one transaction, so readers see its old views or its new ones; a view whose SQL did not change is
left alone, a new column is added in place (CREATE OR REPLACE keeps BI tools' view), and a type change drops
and recreates the view. One team whose views fail holds back no other team.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import sql

from events.models import SyncStep, TeamWarehouse
from events.warehouse.view_definitions import team_views, view_sql

logger = logging.getLogger(__name__)

# A view rebuild waits this long for BI queries holding the view, then gives up until the next sync.
LOCK_TIMEOUT = "5s"

POSTGRESQL_ONLY = "Warehouse views and credentials need PostgreSQL; this server uses {vendor}."


class WarehouseUnavailable(Exception):
    """The database is not PostgreSQL (local SQLite): there are no schemas, views or logins to make."""


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise WarehouseUnavailable(POSTGRESQL_ONLY.format(vendor=connection.display_name))


def _as_string(statement: sql.Composable) -> str:
    connection.ensure_connection()
    return statement.as_string(connection.connection)


def _existing_views(cursor, schema: str) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'v'",
        [schema],
    )
    return {row[0] for row in cursor.fetchall()}


def _drop_view(cursor, schema: str, name: str, *, if_exists: bool = False) -> None:
    statement = "DROP VIEW IF EXISTS {}.{}" if if_exists else "DROP VIEW {}.{}"
    cursor.execute(_as_string(sql.SQL(statement).format(sql.Identifier(schema), sql.Identifier(name))))


def role_exists(cursor, role: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    return cursor.fetchone() is not None


def grant_read(cursor, *, schema: str, role: str) -> None:
    """The team's login may use its schema and read its views; nothing else is granted to it anywhere."""
    names = {"schema": sql.Identifier(schema), "role": sql.Identifier(role)}
    for statement in (
        "REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC",
        "GRANT USAGE ON SCHEMA {schema} TO {role}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
    ):
        cursor.execute(_as_string(sql.SQL(statement).format(**names)))


def warehouse_sync_team(*, warehouse_id: int) -> int:
    """Bring one team's schema in line with its catalog, in one transaction (readers see the old views or
    the new ones). Returns how many views were created, replaced or dropped: 0 when nothing changed."""
    require_postgresql()
    with transaction.atomic(), connection.cursor() as cursor:
        warehouse = TeamWarehouse.objects.select_for_update().get(pk=warehouse_id)
        version = warehouse.catalog_version
        schema = warehouse.schema_name
        cursor.execute(_as_string(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT))))
        if not warehouse.views:
            # First build. A schema of this name can only be left over from a deleted team: drop it, with any
            # grants its old login had, before the new team's events go in.
            cursor.execute(_as_string(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))))
        cursor.execute(_as_string(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))))

        wanted = {view.name: view for view in team_views(team_id=warehouse.team_id)}
        existing = _existing_views(cursor, schema)
        built: dict = warehouse.views
        changes = 0
        for name in sorted(existing - wanted.keys()):
            _drop_view(cursor, schema, name)
            changes += 1
        now_built = {}
        for name, view in wanted.items():
            statement = _as_string(view_sql(schema=schema, team_id=warehouse.team_id, view=view))
            digest = hashlib.sha256(statement.encode()).hexdigest()
            before = built.get(name) if name in existing else None
            now_built[name] = {"columns": view.signature, "digest": digest}
            if before is not None and before["digest"] == digest:
                continue
            # CREATE OR REPLACE VIEW can only add columns at the end; a type change needs a new view.
            if before is None or view.signature[: len(before["columns"])] != before["columns"]:
                _drop_view(cursor, schema, name, if_exists=True)
            cursor.execute(statement)
            changes += 1
        if changes and warehouse.role_name and role_exists(cursor, warehouse.role_name):
            grant_read(cursor, schema=schema, role=warehouse.role_name)
        TeamWarehouse.objects.filter(pk=warehouse.pk).update(
            views=now_built, views_version=version, views_synced_at=timezone.now()
        )
    return changes


@dataclass
class WarehouseSyncResult:
    teams: int = 0
    views_changed: int = 0
    failed: int = 0


def warehouse_sync(*, everything: bool = False) -> WarehouseSyncResult:
    """Rebuild the views of every team whose catalog moved on since its last build (of every team with
    `everything`; unchanged views are left alone either way). One failing team does not stop the others."""
    require_postgresql()
    result = WarehouseSyncResult()
    warehouses = TeamWarehouse.objects.all()
    if not everything:
        warehouses = warehouses.filter(views_version__lt=F("catalog_version"))
    for warehouse in warehouses.order_by("pk"):
        try:
            result.views_changed += warehouse_sync_team(warehouse_id=warehouse.pk)
        except Exception as error:  # whatever one team's views do, the other teams are synced
            logger.exception("Could not update the warehouse views of %s; will retry on the next sync.", warehouse)
            warehouse.record_sync_failure(step=SyncStep.VIEWS, error=error)
            result.failed += 1
        else:
            warehouse.clear_sync_failure(step=SyncStep.VIEWS)
            result.teams += 1
    return result


def warehouse_drop_views() -> None:
    """Drop every team's views (the next sync builds them again). A migration that changes the type of an
    events_event column the views read must call this first: PostgreSQL refuses to while views use it."""
    require_postgresql()
    with transaction.atomic(), connection.cursor() as cursor:
        for warehouse in TeamWarehouse.objects.select_for_update():
            for name in sorted(_existing_views(cursor, warehouse.schema_name)):
                _drop_view(cursor, warehouse.schema_name, name)
        TeamWarehouse.objects.update(views={}, views_version=0)
