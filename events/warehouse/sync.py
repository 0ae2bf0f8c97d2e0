"""Team warehouses: each team's events as typed PostgreSQL views, laid out and named the way Segment does it.

Layout. A team's views live in the schema `team_<slug>` (lower case, dashes become underscores; if another
team already holds that name, `team_<slug>_<team id>`). Every schema has `tracks`, `identifies`, `pages`,
`screens`, `groups` and `aliases`, and one view per track event name (`Purchased an Item` ->
`purchased_an_item`) whose columns are the event's properties, flattened and typed. `identifies` and
`groups` get the traits as columns, `pages` and `screens` the properties of every page or screen.

The views read events_event itself, filtered to the team (they run with the privileges of their owner, the
app's role, and are security barriers), so an event is in them the moment it is stored. Only the *shape*
waits for the sync (`python manage.py sync_warehouse`, run with `--watch` in production): a new event name,
a new property, a type change. `events.warehouse.catalog` records what was seen; `warehouse_sync` rebuilds the views
of the teams whose catalog moved on.

Names (deterministic):
1. snake_case: accents are dropped (é -> e), camelCase is split (shippingMethod -> shipping_method), every
   run of other characters becomes one underscore, nested keys are joined with `_` (address.city ->
   address_city). A name that starts with a digit gets a leading underscore (3ds -> _3ds); a name with no
   letter or digit left becomes `event` (views) or `property` (columns).
2. A PostgreSQL reserved word (order, user, select, ...), a type view's name (tracks, ...) or one of the
   view's own columns (id, timestamp, user_id, ...) gets a trailing underscore: order -> order_.
3. Names are cut to 63 bytes, PostgreSQL's limit.
4. Two event names (or two property paths of one view) that end up with the same name: the one seen first
   keeps it, each later one gets `_` + the first 8 hex digits of the SHA-256 of its original name (or of its
   path as a JSON array) in place of its last 9 characters; if that is taken too (names can be chosen to
   collide), 16 hex digits, then 16 hex digits and a number. Names are kept once given, so they never move.

Types, from every non-null value seen: JSON numbers and numeric strings ("39.95", "-1e3") -> numeric; JSON
booleans -> boolean; ISO-8601 date or date-time strings -> timestamptz (those without an offset are UTC);
everything else, and any mixture, -> text. Arrays are text (their JSON). Each typed column casts behind the
same regular expression the inference uses, inside CASE, so a value that does not fit is NULL and never an
error; the expressions contain nothing that can fail.
"""

import hashlib
import itertools
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone
from psycopg import sql

from accounts.models import Team
from events.models import (
    CatalogEvent,
    CatalogProperty,
    ColumnType,
    Event,
    EventType,
    SyncStep,
    TeamWarehouse,
    infer_column_type,
)

logger = logging.getLogger(__name__)

MAX_IDENTIFIER_BYTES = 63
# Past these, an event name or property is still counted in the catalog but gets no view or column of its own:
# PostgreSQL allows at most 1,664 columns in a view, and thousands of views would make every sync slow.
MAX_EVENT_VIEWS = 1000
MAX_COLUMNS_PER_VIEW = 1000
# Past these, a name or property is not catalogued at all, only counted in its "Other" row (events.warehouse.catalog): a
# tenant making up names must not grow the catalog, or the Events page that lists it, without end.
MAX_CATALOG_EVENTS = 2 * MAX_EVENT_VIEWS  # per team, every type; room for views and for non-track names
MAX_CATALOG_PROPERTIES = MAX_COLUMNS_PER_VIEW  # per event name
# Longer numeric strings are text: PostgreSQL's numeric stops at 16,383 digits after the point.
MAX_NUMERIC_LENGTH = 1000
# A view rebuild waits this long for BI queries holding the view, then gives up until the next sync.
LOCK_TIMEOUT = "5s"

TYPE_VIEWS: dict[str, str] = {
    EventType.TRACK: "tracks",
    EventType.IDENTIFY: "identifies",
    EventType.PAGE: "pages",
    EventType.SCREEN: "screens",
    EventType.GROUP: "groups",
    EventType.ALIAS: "aliases",
}
# Types whose events' properties (traits for identify and group) become columns of the type's view.
SHARED_PROPERTY_VIEWS = (EventType.IDENTIFY, EventType.PAGE, EventType.SCREEN, EventType.GROUP)

# SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T'): words that cannot be a column name unquoted.
# fmt: off
RESERVED_WORDS = frozenset([
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary",
    "both", "case", "cast", "check", "collate", "collation", "column", "concurrently", "constraint", "create",
    "cross", "current_catalog", "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end",
    "except", "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike",
    "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left",
    "like", "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only",
    "or", "order", "outer", "overlaps", "placing", "primary", "references", "returning", "right", "select",
    "session_user", "similar", "some", "symmetric", "table", "tablesample", "then", "to", "trailing", "true",
    "union", "unique", "user", "using", "variadic", "verbose", "when", "where", "window", "with",
])
# fmt: on

POSTGRESQL_ONLY = "Warehouse views and credentials need PostgreSQL; this server uses {vendor}."


class WarehouseUnavailable(Exception):
    """The database is not PostgreSQL (local SQLite): there are no schemas, views or logins to make."""


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise WarehouseUnavailable(POSTGRESQL_ONLY.format(vendor=connection.display_name))


# --------------------------------------------------------------------------------------------------------
# Types. The patterns are written once and used both by Python (inference) and by PostgreSQL (the guard in
# front of each cast); they use only syntax both regular expression engines read the same way.
# --------------------------------------------------------------------------------------------------------

NUMERIC_PATTERN = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,3})?"
# Only real dates: day 29 and 30 in every month but February, 31 in the long months, February 29 in leap
# years (divisible by 4, centuries only by 400), and never year 0000, so the cast cannot fail.
_DATE = (
    r"(?:(?!0000)[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)"
)
_TIME = r"[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
# PostgreSQL accepts offsets up to 15:59.
_OFFSET = r"(?:Z|[+-](?:0[0-9]|1[0-5])(?::?[0-5][0-9])?)"
ZONED_TIMESTAMP_PATTERN = _DATE + _TIME + _OFFSET
LOCAL_TIMESTAMP_PATTERN = _DATE + f"(?:{_TIME})?"

_NUMERIC = re.compile(NUMERIC_PATTERN)
_ZONED_TIMESTAMP = re.compile(ZONED_TIMESTAMP_PATTERN)
_LOCAL_TIMESTAMP = re.compile(LOCAL_TIMESTAMP_PATTERN)


def value_type(value: Any) -> str | None:
    """The column type one JSON value asks for; None for null, which counts as absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ColumnType.BOOLEAN.value
    if isinstance(value, int | float):
        return ColumnType.NUMERIC.value
    if isinstance(value, str):
        if len(value) <= MAX_NUMERIC_LENGTH and _NUMERIC.fullmatch(value):
            return ColumnType.NUMERIC.value
        if _ZONED_TIMESTAMP.fullmatch(value) or _LOCAL_TIMESTAMP.fullmatch(value):
            return ColumnType.TIMESTAMPTZ.value
    return ColumnType.TEXT.value


@dataclass
class TypeCounts:
    """How many values of each type a property (or a column) had: what its column type is inferred from."""

    count: int = 0
    numeric: int = 0
    boolean: int = 0
    timestamp: int = 0
    text: int = 0

    _FIELDS = {"numeric": "numeric", "boolean": "boolean", "timestamptz": "timestamp", "text": "text"}

    def add_value(self, kind: str) -> None:
        self.count += 1
        name = self._FIELDS[kind]
        setattr(self, name, getattr(self, name) + 1)

    def add(self, other: "TypeCounts") -> None:
        for name in ("count", "numeric", "boolean", "timestamp", "text"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def column_type(self) -> str:
        return infer_column_type(numeric=self.numeric, boolean=self.boolean, timestamp=self.timestamp, text=self.text)

    @classmethod
    def of(cls, prop: CatalogProperty) -> "TypeCounts":
        return cls(prop.count, prop.numeric_count, prop.boolean_count, prop.timestamp_count, prop.text_count)


def flatten(properties: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) for every leaf: nested objects are walked, arrays and scalars are leaves."""
    if not isinstance(properties, dict):
        return
    for key, value in properties.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            yield from flatten(value, path)
        else:
            yield path, value


# --------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------


def snake_case(text: str) -> str:
    """`Purchased an Item` -> `purchased_an_item`, `shippingMethod` -> `shipping_method`, `Café` -> `cafe`."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)  # HTTPStatus -> HTTP_Status
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)  # shippingMethod -> shipping_Method
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def path_key(path: Iterable[str]) -> str:
    """A property path as one string: its JSON array (keys may contain dots)."""
    return json.dumps(list(path), ensure_ascii=False)


def path_digest(path: Iterable[str]) -> str:
    return _sha256(path_key(path))


def unique_identifier(base: str, *, original: str, fallback: str, reserved: Iterable[str], taken: set[str]) -> str:
    """Rules 2-4 of the module docstring, applied to a snake_case `base`; adds the result to `taken`.

    The result always fits MAX_IDENTIFIER_BYTES and is never in `taken`, whatever names came before: each
    suffix replaces the end of the same stem (suffixes never pile up), and a numbered one ends the search.
    """
    name = base or fallback
    if name[0].isdigit():
        name = "_" + name
    if name in RESERVED_WORDS or name in reserved:
        name += "_"
    stem = name = _cut(name, MAX_IDENTIFIER_BYTES)
    if name in taken:
        digest = _sha256(original)
        numbered = (f"_{digest[:16]}_{number}" for number in itertools.count(2))
        for suffix in itertools.chain((f"_{digest[:8]}", f"_{digest[:16]}"), numbered):
            name = _cut(stem, MAX_IDENTIFIER_BYTES - len(suffix)) + suffix
            if name not in taken:
                break
    taken.add(name)
    return name


def _cut(name: str, size: int) -> str:
    """At most `size` bytes of `name` in UTF-8, never splitting a character."""
    return name.encode("utf-8")[:size].decode("utf-8", "ignore")


def table_name_for(event_name: str, *, taken: set[str]) -> str:
    """The view name of a track event; '' once the team has MAX_EVENT_VIEWS of them."""
    if len(taken) >= MAX_EVENT_VIEWS:
        return ""
    return unique_identifier(
        snake_case(event_name), original=event_name, fallback="event", reserved=TYPE_VIEWS.values(), taken=taken
    )


def column_name_for(path: tuple[str, ...], *, event_type: str, taken: set[str]) -> str:
    """The column of a property path in a view; '' once the view has MAX_COLUMNS_PER_VIEW property columns."""
    if len(taken) >= MAX_COLUMNS_PER_VIEW:
        return ""
    base = "_".join(part for part in (snake_case(key) for key in path) if part)
    return unique_identifier(
        base, original=path_key(path), fallback="property", reserved=fixed_column_names(event_type), taken=taken
    )


def schema_name_for(team: Team, *, taken: Iterable[str]) -> str:
    """`team_<slug>`, or `team_<slug>_<team id>` when another team has it (slugs `a-b` and `a_b`, say)."""
    taken = set(taken)
    base = name = ("team_" + re.sub(r"[^a-z0-9_]", "_", team.slug.lower()))[:MAX_IDENTIFIER_BYTES]
    attempt = 0
    while name in taken:
        attempt += 1
        suffix = f"_{team.pk}" if attempt == 1 else f"_{team.pk}_{attempt}"
        name = base[: MAX_IDENTIFIER_BYTES - len(suffix)] + suffix
    return name


def warehouse_for_team(*, team: Team) -> TeamWarehouse:
    """The team's warehouse record, created (and its schema name chosen) the first time it is needed."""
    existing = TeamWarehouse.objects.filter(team=team).first()
    if existing is not None:
        return existing
    base = schema_name_for(team, taken=())
    taken = set(TeamWarehouse.objects.filter(schema_name__startswith=base).values_list("schema_name", flat=True))
    warehouse, _ = TeamWarehouse.objects.get_or_create(
        team=team, defaults={"schema_name": schema_name_for(team, taken=taken)}
    )
    return warehouse


# --------------------------------------------------------------------------------------------------------
# View layout
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as PostgreSQL will report it; only compared with earlier builds of the same view
    expression: sql.Composable


@dataclass(frozen=True)
class View:
    name: str
    event_type: str
    event_name: str | None  # per-event views only
    columns: tuple[Column, ...]

    @property
    def signature(self) -> list[list[str]]:
        return [[column.name, column.type] for column in self.columns]


def _text(expression: str) -> sql.Composable:
    return sql.SQL(expression)


def _json_text(column: str, keys: Iterable[str]) -> sql.Composable:
    """`e.<column> #>> ARRAY['a', 'b']`: the value at a path as text (JSON text for objects and arrays)."""
    return sql.SQL("(e.{} #>> ARRAY[{}]::text[])").format(
        sql.Identifier(column), sql.SQL(", ").join(sql.Literal(key) for key in keys)
    )


_IDENTITY_COLUMNS = (
    Column("user_id", "text", _text("e.user_id")),
    Column("anonymous_id", "text", _text("e.anonymous_id")),
    Column("message_id", "text", _text("e.message_id")),
)
_TIME_COLUMNS = tuple(
    Column(name, "timestamptz", sql.SQL("e.{}").format(sql.Identifier(name)))
    for name in ("timestamp", "original_timestamp", "sent_at", "received_at")
)
_CONTEXT_COLUMNS = tuple(
    Column(name, "text", _json_text("context", keys))
    for name, keys in (
        ("context_ip", ("ip",)),
        ("context_library_name", ("library", "name")),
        ("context_library_version", ("library", "version")),
        ("context_locale", ("locale",)),
        ("context_user_agent", ("userAgent",)),
        ("context_page_url", ("page", "url")),
        ("context_page_path", ("page", "path")),
        ("context_page_referrer", ("page", "referrer")),
        ("context_page_title", ("page", "title")),
    )
)
_TYPE_COLUMNS: dict[str, tuple[Column, ...]] = {
    EventType.TRACK: (),  # event and event_text differ between tracks and the per-event views: see team_views
    EventType.IDENTIFY: (),
    EventType.PAGE: (
        Column("name", "text", _json_text("extra", ["name"])),
        Column("category", "text", _json_text("extra", ["category"])),
    ),
    EventType.SCREEN: (
        Column("name", "text", _json_text("extra", ["name"])),
        Column("category", "text", _json_text("extra", ["category"])),
    ),
    EventType.GROUP: (Column("group_id", "text", _json_text("extra", ["groupId"])),),
    EventType.ALIAS: (Column("previous_id", "text", _json_text("extra", ["previousId"])),),
}


def fixed_column_names(event_type: str) -> frozenset[str]:
    """The columns a view of this type has before any property: a property column may not take them."""
    names = {"id", *(c.name for c in (*_IDENTITY_COLUMNS, *_TIME_COLUMNS, *_CONTEXT_COLUMNS))}
    names.update(column.name for column in _TYPE_COLUMNS[event_type])
    if event_type == EventType.TRACK:
        names.update(("event", "event_text"))
    return frozenset(names)


def _fixed_columns(event_type: str, leading: tuple[Column, ...] = ()) -> tuple[Column, ...]:
    return (
        Column("id", "bigint", _text("e.id")),
        *leading,
        *_TYPE_COLUMNS[event_type],
        *_IDENTITY_COLUMNS,
        *_TIME_COLUMNS,
        *_CONTEXT_COLUMNS,
    )


def property_column(name: str, path: tuple[str, ...], column_type: str) -> Column:
    """A property column: the value at `path`, cast to `column_type` behind a guard, so it is NULL if it
    does not fit rather than an error."""
    value = _json_text("properties", path)
    expression: sql.Composable
    if column_type == ColumnType.NUMERIC:
        expression = sql.SQL("CASE WHEN length({v}) <= {max} AND {v} ~ {pattern} THEN {v}::numeric END").format(
            v=value, max=sql.Literal(MAX_NUMERIC_LENGTH), pattern=sql.Literal(f"^(?:{NUMERIC_PATTERN})$")
        )
    elif column_type == ColumnType.BOOLEAN:
        keys = sql.SQL(", ").join(sql.Literal(key) for key in path)
        expression = sql.SQL(
            "CASE WHEN jsonb_typeof(e.properties #> ARRAY[{keys}]::text[]) = 'boolean' THEN {v}::boolean END"
        ).format(keys=keys, v=value)
    elif column_type == ColumnType.TIMESTAMPTZ:
        expression = sql.SQL(
            "CASE WHEN {v} ~ {zoned} THEN {v}::timestamptz "
            "WHEN {v} ~ {local} THEN ({v}::timestamp AT TIME ZONE 'UTC') END"
        ).format(
            v=value,
            zoned=sql.Literal(f"^(?:{ZONED_TIMESTAMP_PATTERN})$"),
            local=sql.Literal(f"^(?:{LOCAL_TIMESTAMP_PATTERN})$"),
        )
    else:
        expression = value
    return Column(name, column_type, expression)


@dataclass
class _PlannedColumn:
    path: tuple[str, ...]
    counts: TypeCounts


def _property_columns(properties: Iterable[CatalogProperty]) -> tuple[Column, ...]:
    """Columns in the order their properties were first catalogued; properties sharing a column (the same
    path under several page names, say) add up their counts."""
    planned: dict[str, _PlannedColumn] = {}
    for prop in properties:  # ordered by id
        entry = planned.get(prop.column_name)
        if entry is None:
            if len(planned) >= MAX_COLUMNS_PER_VIEW:
                continue
            entry = planned[prop.column_name] = _PlannedColumn(tuple(prop.path), TypeCounts())
        entry.counts.add(TypeCounts.of(prop))
    return tuple(property_column(name, entry.path, entry.counts.column_type) for name, entry in planned.items())


def team_views(*, team_id: int) -> list[View]:
    """Every view of a team's schema, as its catalog says they should be now."""
    events = list(CatalogEvent.objects.filter(team_id=team_id).order_by("pk"))
    properties: dict[int, list[CatalogProperty]] = {}
    for prop in CatalogProperty.objects.filter(team_id=team_id).exclude(column_name="").order_by("pk"):
        properties.setdefault(prop.catalog_event_id, []).append(prop)
    tracked = [e for e in events if e.type == EventType.TRACK and e.table_name]

    # tracks.event is the event's view name, as in Segment; NULL for names without a view (yet).
    mapping = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(e.name), sql.Literal(e.table_name)) for e in tracked
    )
    event_name = sql.SQL("CASE e.event {} END").format(mapping) if tracked else _text("NULL::text")
    event_column = Column("event", "text", event_name)
    event_text = Column("event_text", "text", _text("e.event::text"))

    views = []
    for event_type, view_name in TYPE_VIEWS.items():
        if event_type == EventType.TRACK:
            columns = _fixed_columns(event_type, (event_column, event_text))
        elif event_type in SHARED_PROPERTY_VIEWS:
            shared = sorted(
                (p for e in events if e.type == event_type for p in properties.get(e.pk, ())), key=lambda p: p.pk
            )
            columns = _fixed_columns(event_type) + _property_columns(shared)
        else:
            columns = _fixed_columns(event_type)
        views.append(View(view_name, event_type, None, columns))
    for event in tracked:
        own_name = Column("event", "text", sql.SQL("{}::text").format(sql.Literal(event.table_name)))
        columns = _fixed_columns(EventType.TRACK, (own_name, event_text))
        columns += _property_columns(properties.get(event.pk, ()))
        views.append(View(event.table_name, EventType.TRACK, event.name, columns))
    return views


def view_sql(*, schema: str, team_id: int, view: View) -> sql.Composed:
    condition = sql.SQL("e.team_id = {} AND e.type = {}").format(sql.Literal(team_id), sql.Literal(view.event_type))
    if view.event_name is not None:
        condition = sql.SQL("{} AND e.event = {}").format(condition, sql.Literal(view.event_name))
    columns = sql.SQL(",\n  ").join(
        sql.SQL("{} AS {}").format(column.expression, sql.Identifier(column.name)) for column in view.columns
    )
    # security_barrier: a reader's own WHERE clause (a function that raises, a failing cast) is applied only
    # to the rows the view lets through, so it can never run on, or leak, another team's events.
    return sql.SQL(
        "CREATE OR REPLACE VIEW {schema}.{view} WITH (security_barrier) AS\nSELECT\n  {columns}\n"
        "FROM {events} AS e\nWHERE {condition}"
    ).format(
        schema=sql.Identifier(schema),
        view=sql.Identifier(view.name),
        columns=columns,
        events=sql.Identifier(Event._meta.db_table),
        condition=condition,
    )


# --------------------------------------------------------------------------------------------------------
# Applying the layout
# --------------------------------------------------------------------------------------------------------


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
            digest = _sha256(statement)
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


# --------------------------------------------------------------------------------------------------------
# Dry run
# --------------------------------------------------------------------------------------------------------


def _view_of(event_type: str, name: str, *, tables: dict[str, str], taken_tables: set[str]) -> str:
    """The view events of this type and name go to; new track names are named as the sync would."""
    if event_type != EventType.TRACK:
        return TYPE_VIEWS[event_type]
    if name not in tables:
        tables[name] = table_name_for(name, taken=taken_tables)
    return tables[name]


def warehouse_changes(*, team: Team, payloads: Iterable) -> dict:
    """What storing these validated events (events.ingest.validation.EventPayload) would change in the team's
    warehouse: views that would be created, columns that would be added or change type. Writes nothing.

    Returns {"schema": name, "views": [{"view", "event", "type", "change": "create"}], "columns": [{"view",
    "column", "property", "type", "change": "add"} or {..., "previous_type", "change": "type"}]}, and
    "counted_as_other": {"events": [{"type", "event"}], "properties": [{"type", "event", "property"}]} when
    some names or properties are past the catalog's caps (they get no view or column; events.warehouse.catalog).
    Names are the ones the next sync would give, unless events sent meanwhile take them first.
    """
    payloads = list(payloads)
    warehouse = TeamWarehouse.objects.filter(team=team).first()
    schema = warehouse.schema_name if warehouse else schema_name_for(team, taken=_taken_schemas(team))
    names = {p.event for p in payloads}
    known = {(e.type, e.name): e for e in CatalogEvent.objects.filter(team=team, name__in=names)}
    tables = {name: e.table_name for (kind, name), e in known.items() if kind == EventType.TRACK}
    taken_tables = set(
        CatalogEvent.objects.filter(team=team, type=EventType.TRACK)
        .exclude(table_name="")
        .values_list("table_name", flat=True)
    )

    views: list[dict] = []
    if warehouse is None:
        views += [{"view": TYPE_VIEWS[t], "event": None, "type": t, "change": "create"} for t in _types_in(payloads)]
    columns: dict[tuple[str, str], dict] = {}  # (view, column) -> change
    layouts: dict[str, _ViewColumns] = {}
    other = _CountedAsOther.load(team, known)
    for payload in payloads:
        if other.takes_name(payload, known):
            continue
        view = _view_of(payload.type, payload.event, tables=tables, taken_tables=taken_tables)
        if not view:
            continue  # past the view limit: no view to change
        if payload.type == EventType.TRACK and (payload.type, payload.event) not in known:
            change = {"view": view, "event": payload.event, "type": payload.type, "change": "create"}
            if change not in views:
                views.append(change)
        if payload.type not in SHARED_PROPERTY_VIEWS and payload.type != EventType.TRACK:
            continue
        layout = layouts.get(view) or layouts.setdefault(view, _ViewColumns.load(team, payload.type, view))
        for path, value in flatten(payload.properties):
            kind = value_type(value)
            if kind is not None and not other.takes_property(payload, path, known):
                layout.add(path, kind, event_type=payload.type, changes=columns, view=view)
    changes: dict[str, Any] = {"schema": schema, "views": views, "columns": list(columns.values())}
    if other.report:
        changes["counted_as_other"] = other.report
    return changes


@dataclass
class _CountedAsOther:
    """For the dry run: the names and properties the catalog has no room for, which it would count as Other."""

    team: Team
    full: dict[int, set[str]]  # catalog event id -> its property digests, for names at MAX_CATALOG_PROPERTIES
    room: int | None = None  # names the team's catalog still takes; counted when first needed
    new: set[tuple[str, str]] = field(default_factory=set)
    names: dict[tuple[str, str], None] = field(default_factory=dict)  # (type, name), in the order seen
    paths: dict[tuple[str, str, str], None] = field(default_factory=dict)  # (type, name, property)

    @classmethod
    def load(cls, team: Team, known: dict[tuple[str, str], CatalogEvent]) -> "_CountedAsOther":
        full: dict[int, set[str]] = {}
        if known:
            at_cap = (
                CatalogProperty.objects.filter(catalog_event__in=known.values())
                .values("catalog_event")
                .annotate(n=Count("pk"))
                .filter(n__gte=MAX_CATALOG_PROPERTIES)
                .values_list("catalog_event", flat=True)
            )
            for event_id, digest in CatalogProperty.objects.filter(catalog_event__in=at_cap).values_list(
                "catalog_event", "path_digest"
            ):
                full.setdefault(event_id, set()).add(digest)
        return cls(team, full)

    def takes_name(self, payload, known: dict) -> bool:
        key = (payload.type, payload.event)
        if key in known or key in self.new:
            return False
        if key not in self.names:
            if self.room is None:
                self.room = MAX_CATALOG_EVENTS - CatalogEvent.objects.filter(team=self.team).count()
            if self.room > 0:
                self.room -= 1
                self.new.add(key)
                return False
            self.names[key] = None
        return True

    def takes_property(self, payload, path: tuple[str, ...], known: dict) -> bool:
        event = known.get((payload.type, payload.event))
        if event is None or event.pk not in self.full or path_digest(path) in self.full[event.pk]:
            return False
        self.paths[(payload.type, payload.event, ".".join(path))] = None
        return True

    @property
    def report(self) -> dict | None:
        if not self.names and not self.paths:
            return None
        return {
            "events": [{"type": kind, "event": name} for kind, name in self.names],
            "properties": [{"type": kind, "event": name, "property": path} for kind, name, path in self.paths],
        }


def _taken_schemas(team: Team) -> set[str]:
    base = schema_name_for(team, taken=())
    return set(TeamWarehouse.objects.filter(schema_name__startswith=base).values_list("schema_name", flat=True))


def _types_in(payloads: list) -> list[str]:
    return list(dict.fromkeys(p.type for p in payloads))


@dataclass
class _ViewColumns:
    """A view's property columns as the catalog has them, for the dry run to compare new values with."""

    by_path: dict[str, tuple[str, TypeCounts]]  # path digest -> (column, counts)
    taken: set[str]

    @classmethod
    def load(cls, team: Team, event_type: str, view: str) -> "_ViewColumns":
        props = CatalogProperty.objects.filter(team=team, catalog_event__type=event_type).exclude(column_name="")
        if event_type == EventType.TRACK:
            props = props.filter(catalog_event__table_name=view)
        by_path: dict[str, tuple[str, TypeCounts]] = {}
        for prop in props.order_by("pk"):
            _, counts = by_path.setdefault(prop.path_digest, (prop.column_name, TypeCounts()))
            counts.add(TypeCounts.of(prop))
        return cls(by_path, {column for column, _ in by_path.values()})

    def add(self, path: tuple[str, ...], kind: str, *, event_type: str, changes: dict, view: str) -> None:
        digest = path_digest(path)
        entry = self.by_path.get(digest)
        if entry is None:
            column = column_name_for(path, event_type=event_type, taken=self.taken)
            if not column:
                return
            entry = self.by_path[digest] = (column, TypeCounts())
            changes[(view, column)] = {
                "view": view, "column": column, "property": ".".join(path), "type": kind, "change": "add"
            }  # fmt: skip
        column, counts = entry
        before = counts.column_type if counts.count else None
        counts.add_value(kind)
        change = changes.get((view, column))
        if change is not None and change["change"] == "add":
            change["type"] = counts.column_type
        elif before is not None and counts.column_type != before:
            changes[(view, column)] = {
                "view": view,
                "column": column,
                "property": ".".join(path),
                "type": counts.column_type,
                "previous_type": before,
                "change": "type",
            }
