"""A team's warehouse relations as real typed tables, filled set-based from events_event, with a live part.

Each relation a team's catalog calls for (events.warehouse.view_definitions: `tracks`, `purchased_an_item`, ...)
is three objects in the team's schema:
- a table (`_tracks`, `_event_<catalog event id>`) holding the typed rows, PRIMARY KEY (id), indexed on timestamp;
- a live view (`<table>_live`) over a SECURITY DEFINER function of the same name, which reads events_event:
  the team's rows of that type (and name) from the team's live boundary on that are not in the table yet,
  with a plan made for the boundary's value at each call (docs/performance.md#warehouse-live-part);
- the BI-facing view (`tracks`, `purchased_an_item`): the table UNION ALL the live view. It is a plain view, so
  a reader's WHERE and ORDER BY ... LIMIT reach the table's indexes; the live branch, which reads the shared
  events_event, is a function no reader's condition reaches into.

`tables_fill` is called by the catalog sync for each team right after that team's catalog update, in the same
savepoint: it brings the team's tables in line with its catalog when the catalog changed (a new table, ADD
COLUMN for a new property, a retyped column recomputed from events_event in that one table), then copies the
selection's rows in with one INSERT ... SELECT per relation that has rows in it.

The rule a newcomer must know: every row of a team below its live boundary (CatalogSyncState.live_from_id, or
the first id of the team's backlog) is in the tables, so an event is in the relations the moment it is stored
(from the live view) and exactly once (the live view skips ids already in the table).
"""

import hashlib
import re

from django.db import connection
from psycopg import sql

from events.models import CatalogEvent, CatalogSyncState, Event, TeamWarehouse
from events.warehouse.selection import EventSelection
from events.warehouse.sql_text import sql_text
from events.warehouse.view_definitions import View, team_views

_EVENTS = sql.Identifier(Event._meta.db_table)


def _rows_of(view: View, team_id: int) -> sql.Composable:
    """The team's events that belong in the relation. The event's name is looked up by its catalog id so that
    the live view's text (in pg_views, which every login can read) names no event."""
    condition = sql.SQL("e.team_id = {} AND e.type = {}").format(sql.Literal(team_id), sql.Literal(view.event_type))
    if view.catalog_event_id is not None:
        condition = sql.SQL("{} AND e.event = (SELECT name FROM {} WHERE id = {})").format(
            condition, sql.Identifier(CatalogEvent._meta.db_table), sql.Literal(view.catalog_event_id)
        )
    return condition


def _typed_select(view: View, team_id: int, condition: sql.Composable) -> sql.Composable:
    columns = sql.SQL(",\n  ").join(
        sql.SQL("{} AS {}").format(column.expression, sql.Identifier(column.name)) for column in view.columns
    )
    return sql.SQL("SELECT\n  {}\nFROM {} AS e\nWHERE {} AND {}").format(
        columns, _EVENTS, _rows_of(view, team_id), condition
    )


def _column_names(view: View) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(column.name) for column in view.columns)


def live_from_id(team_id: int) -> sql.Composable:
    """The team's live boundary: the lowest of its ids that may not be in the tables yet."""
    return sql.SQL(
        "LEAST(coalesce((SELECT live_from_id FROM {state} WHERE id = 1), 0), "
        "(SELECT (catalog_backlog #>> '{{0,0}}')::bigint FROM {warehouses} WHERE team_id = {team}))"
    ).format(
        state=sql.Identifier(CatalogSyncState._meta.db_table),
        warehouses=sql.Identifier(TeamWarehouse._meta.db_table),
        team=sql.Literal(team_id),
    )


def create_table_sql(*, schema: str, view: View) -> list[sql.Composable]:
    table = sql.Identifier(schema, view.table)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.type)) for column in view.columns
    )
    return [
        sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY (id))").format(table, columns),
        # Serves ORDER BY timestamp DESC LIMIT and time ranges; see docs/performance.md#warehouse-tables.
        sql.SQL("CREATE INDEX {} ON {} (timestamp)").format(sql.Identifier(f"{view.table}_timestamp"), table),
    ]


def _live_function(schema: str, view: View) -> sql.Composable:
    return sql.Identifier(schema, view.live_view)


def views_sql(*, schema: str, team_id: int, view: View) -> list[sql.Composable]:
    """CREATE OR REPLACE the live rows' function and view, then the BI-facing view."""
    table = sql.Identifier(schema, view.table)
    # The live rows are read by a query planned for the boundary's value at each call: planned as a view, with
    # the boundary unknown, PostgreSQL expected a third of the events table and hashed the whole table for
    # NOT EXISTS (docs/performance.md#warehouse-live-part). $1 is the boundary.
    not_in_table = sql.SQL("e.id >= $1 AND NOT EXISTS (SELECT FROM {} AS t WHERE t.id = e.id)").format(table)
    typed = sql.SQL(",\n  ").join(
        sql.SQL("({})::{} AS {}").format(column.expression, sql.SQL(column.type), sql.Identifier(column.name))
        for column in view.columns
    )
    live_rows = sql.SQL("SELECT\n  {}\nFROM {} AS e\nWHERE {} AND {}").format(
        typed, _EVENTS, _rows_of(view, team_id), not_in_table
    )
    names = _column_names(view)
    return [
        # SECURITY DEFINER: the team's login reads events_event only through this function, which returns that
        # team's rows and nothing else; a reader's WHERE clause never reaches inside it.
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS SETOF {table} LANGUAGE plpgsql STABLE "
            "SECURITY DEFINER SET search_path = pg_catalog, public ROWS 100 AS $live$\n"
            "BEGIN\n  RETURN QUERY EXECUTE {query} USING {boundary};\nEND\n$live$"
        ).format(
            function=_live_function(schema, view),
            table=table,
            query=sql.Literal(sql_text(live_rows)),
            boundary=live_from_id(team_id),
        ),
        sql.SQL("CREATE OR REPLACE VIEW {} WITH (security_barrier) AS\nSELECT {} FROM {}()").format(
            sql.Identifier(schema, view.live_view), names, _live_function(schema, view)
        ),
        sql.SQL("CREATE OR REPLACE VIEW {} AS\nSELECT {} FROM {}\nUNION ALL\nSELECT {} FROM {}").format(
            sql.Identifier(schema, view.name), names, table, names, sql.Identifier(schema, view.live_view)
        ),
    ]


def insert_sql(*, schema: str, team_id: int, view: View, condition: sql.Composable) -> sql.Composable:
    return sql.SQL("INSERT INTO {} ({})\n{}\nON CONFLICT (id) DO NOTHING").format(
        sql.Identifier(schema, view.table), _column_names(view), _typed_select(view, team_id, condition)
    )


def _catalogued(warehouse: TeamWarehouse) -> sql.Composable:
    """The team's events the catalog has counted so far: up to its watermark, neither in a gap it waits for
    nor in the team's backlog. What a table built afresh must hold."""
    state = CatalogSyncState.objects.filter(pk=1).first()
    if state is None:
        return sql.SQL("false")
    condition = sql.SQL("e.id <= {}").format(sql.Literal(state.last_event_id))
    gaps = [gap[0] for gap in state.open_gaps]
    if gaps:
        condition = sql.SQL("{} AND e.id <> ALL({}::bigint[])").format(condition, sql.Literal(gaps))
    for first, last in warehouse.catalog_backlog:
        condition = sql.SQL("{} AND e.id NOT BETWEEN {} AND {}").format(
            condition, sql.Literal(first), sql.Literal(last)
        )
    return condition


def existing_views(cursor, schema: str) -> set[str]:
    return {name for name, kind in _relations(cursor, schema).items() if kind == "v"}


def role_exists(cursor, role: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    return cursor.fetchone() is not None


def grant_read(cursor, *, schema: str, role: str) -> None:
    """The team's login may use its schema and read its BI-facing views; not the tables and live views behind
    them (named `_<letter>...`, which no BI name is), and nothing else anywhere."""
    names = {"schema": sql.Identifier(schema), "role": sql.Identifier(role)}
    for statement in (
        "REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC",
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
        "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {schema} FROM PUBLIC",
        # A view's functions run as its reader: the live rows' functions (SECURITY DEFINER, this team's rows only).
        "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}",
        "GRANT USAGE ON SCHEMA {schema} TO {role}",
    ):
        cursor.execute(sql_text(sql.SQL(statement).format(**names)))
    readable = sorted(name for name in existing_views(cursor, schema) if not re.match(r"_[a-z]", name))
    if readable:
        relations = sql.SQL(", ").join(sql.Identifier(schema, name) for name in readable)
        cursor.execute(sql_text(sql.SQL("GRANT SELECT ON {} TO {}").format(relations, sql.Identifier(role))))


def warehouse_grant_if_changed(cursor, *, warehouse: TeamWarehouse, changes: int) -> None:
    """A view created afresh has no grant: give the login its views again after a change."""
    if changes and warehouse.role_name and role_exists(cursor, warehouse.role_name):
        grant_read(cursor, schema=warehouse.schema_name, role=warehouse.role_name)


def _relations(cursor, schema: str) -> dict[str, str]:
    cursor.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'v')",
        [schema],
    )
    return dict(cursor.fetchall())


def _drop(cursor, kind: str, schema: str, name: str) -> None:
    if kind == "TABLE":  # its live rows' function returns the table's row type
        cursor.execute(sql_text(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(schema, name + "_live"))))
    cursor.execute(sql_text(sql.SQL("DROP {} IF EXISTS {}").format(sql.SQL(kind), sql.Identifier(schema, name))))


def tables_define(cursor, *, warehouse: TeamWarehouse, full: bool) -> int:
    """Bring the team's tables and views in line with its catalog; returns how many relations changed.

    A table is created when missing: filled with every event catalogued so far, except in a sync step
    (`full=False`) for a relation the catalog has just added (its events are all in the step's selection). A
    new column is added at the end; a column whose type changed is recomputed from events_event in that table
    alone. Callers hold the CatalogSyncState row, so the catalog does not move meanwhile.
    """
    schema = warehouse.schema_name
    team_id = warehouse.team_id
    built: dict = warehouse.views
    first_build = not built
    if first_build:
        # A schema of this name can only be left over from a deleted team: drop it, with any grants its old
        # login had, before the new team's events go in.
        cursor.execute(sql_text(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))))
    cursor.execute(sql_text(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))))
    existing = _relations(cursor, schema)
    wanted = {view.name: view for view in team_views(team_id=team_id)}
    changes = 0
    for name in sorted(built.keys() - wanted.keys()):
        gone = View.from_record(name, built[name]) if "properties" in built[name] else None
        _drop(cursor, "VIEW", schema, name)
        if gone is not None:
            _drop(cursor, "VIEW", schema, gone.live_view)
            _drop(cursor, "TABLE", schema, gone.table)
        changes += 1
    now_built = {}
    for name, view in wanted.items():
        before = built.get(name)
        statements = views_sql(schema=schema, team_id=team_id, view=view)
        digest = hashlib.sha256(sql_text(sql.Composed(statements)).encode()).hexdigest()
        now_built[name] = {**view.record(), "digest": digest}
        views_there = existing.get(name) == "v" and existing.get(view.live_view) == "v"
        # A record from before the tables (no "properties") has no table behind it.
        kept: dict | None = before if before and "properties" in before and existing.get(view.table) == "r" else None
        old_columns = kept["columns"] if kept else []
        if kept and old_columns == view.signature and views_there and kept["digest"] == digest:
            continue
        changes += 1
        old_names = [column for column, _ in old_columns]
        if kept and [column for column, _ in view.signature[: len(old_columns)]] == old_names:
            retyped = [column for column, old in zip(view.columns, old_columns, strict=False) if old[1] != column.type]
            if retyped:  # PostgreSQL changes no column type under a view
                _drop(cursor, "VIEW", schema, name)
                _drop(cursor, "VIEW", schema, view.live_view)
            alterations = [
                sql.SQL("ALTER COLUMN {} TYPE {} USING NULL").format(sql.Identifier(c.name), sql.SQL(c.type))
                for c in retyped
            ] + [
                sql.SQL("ADD COLUMN {} {}").format(sql.Identifier(c.name), sql.SQL(c.type))
                for c in view.columns[len(old_columns) :]
            ]
            if alterations:
                cursor.execute(
                    sql_text(
                        sql.SQL("ALTER TABLE {} {}").format(
                            sql.Identifier(schema, view.table), sql.SQL(", ").join(alterations)
                        )
                    )
                )
            if retyped:
                cursor.execute(
                    sql_text(
                        sql.SQL("UPDATE {} AS t SET {} FROM {} AS e WHERE e.team_id = {} AND e.id = t.id").format(
                            sql.Identifier(schema, view.table),
                            sql.SQL(", ").join(
                                sql.SQL("{} = {}").format(sql.Identifier(c.name), c.expression) for c in retyped
                            ),
                            _EVENTS,
                            sql.Literal(team_id),
                        )
                    )
                )
        else:
            _drop(cursor, "VIEW", schema, name)
            _drop(cursor, "VIEW", schema, view.live_view)
            _drop(cursor, "TABLE", schema, view.table)
            for statement in create_table_sql(schema=schema, view=view):
                cursor.execute(sql_text(statement))
            if full or first_build or before is not None:
                condition = _catalogued(warehouse)
                cursor.execute(sql_text(insert_sql(schema=schema, team_id=team_id, view=view, condition=condition)))
        if view.signature[: len(old_columns)] != old_columns or len(old_columns) == len(view.signature):
            # CREATE OR REPLACE VIEW may only add columns at the end; any other change needs new views.
            _drop(cursor, "VIEW", schema, name)
            _drop(cursor, "VIEW", schema, view.live_view)
        for statement in statements:
            cursor.execute(sql_text(statement))
    TeamWarehouse.objects.filter(pk=warehouse.pk).update(views=now_built)
    warehouse.views = now_built
    return changes


def tables_fill(*, warehouse: TeamWarehouse, selection: EventSelection) -> None:
    """Copy the selection's rows (one team's) into the team's tables, first bringing the tables in line with
    the catalog if it changed. Runs in the caller's transaction (the catalog's savepoint for the team)."""
    if connection.vendor != "postgresql" or not selection:
        return
    fresh = TeamWarehouse.objects.get(pk=warehouse.pk)
    with connection.cursor() as cursor:
        if fresh.views_version != fresh.catalog_version or not fresh.views:
            changes = tables_define(cursor, warehouse=fresh, full=False)
            warehouse_grant_if_changed(cursor, warehouse=fresh, changes=changes)
            TeamWarehouse.objects.filter(pk=warehouse.pk).update(views_version=fresh.catalog_version)
        condition = selection.condition("e")
        cursor.execute(
            sql_text(sql.SQL("SELECT DISTINCT e.type, e.event FROM {} AS e WHERE {}").format(_EVENTS, condition))
        )
        present = cursor.fetchall()
        types = {event_type for event_type, _ in present}
        names = {name for event_type, name in present if event_type == "track"}
        per_event = {}
        if names:
            per_event = dict(
                CatalogEvent.objects.filter(team_id=warehouse.team_id, type="track", name__in=names)
                .exclude(table_name="")
                .values_list("pk", "name")
            )
        for name, record in fresh.views.items():
            event_id = record["catalog_event_id"]
            if (event_id is None and record["type"] in types) or (event_id is not None and event_id in per_event):
                view = View.from_record(name, record)
                statement = insert_sql(schema=fresh.schema_name, team_id=fresh.team_id, view=view, condition=condition)
                cursor.execute(sql_text(statement))


def tables_forget_before(*, warehouse: TeamWarehouse, received_before) -> int:
    """Delete the team's rows received before `received_before` from each of its tables (retention: the events
    are gone from events_event). One DELETE per table: row locks only, so BI readers are never blocked."""
    if connection.vendor != "postgresql":
        return 0
    deleted = 0
    with connection.cursor() as cursor:
        for name, kind in sorted(_relations(cursor, warehouse.schema_name).items()):
            if kind != "r":
                continue
            table = sql.Identifier(warehouse.schema_name, name)
            statement = sql.SQL("DELETE FROM {} WHERE received_at < %s").format(table)
            cursor.execute(sql_text(statement), [received_before])
            deleted += cursor.rowcount
    return deleted
