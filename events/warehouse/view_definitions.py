"""The relations of a team's warehouse schema, as its catalog says they should be now: their columns and the SQL
that computes each column from an events_event row.

A schema has one relation per message type (`tracks`, `identifies`, `pages`, `screens`, `groups`, `aliases`) and
one per track event name (`purchased_an_item`). Each starts with the fixed columns (id, identity, times,
context), then one column per property in the order the catalog first saw it: a track event's relation has its
event's properties, `identifies` and `groups` the traits, `pages` and `screens` the properties of every page or
screen. `team_views` plans them (plain data); events.warehouse.tables makes them tables and views.

The rule a newcomer must know: a column never fails on a value: every typed column casts behind the pattern the
inference uses (events.warehouse.column_types), inside CASE, so a value that does not fit reads as NULL. The
same expressions fill the tables and compute the live rows, so both parts of a relation agree.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from psycopg import sql

from events.models import CatalogEvent, CatalogProperty, ColumnType, EventType
from events.warehouse.column_types import (
    LOCAL_TIMESTAMP_PATTERN,
    MAX_NUMERIC_LENGTH,
    NUMERIC_PATTERN,
    ZONED_TIMESTAMP_PATTERN,
    TypeCounts,
)

# Past these, an event name or property is still counted in the catalog but gets no view or column of its own:
# PostgreSQL allows at most 1,664 columns in a view, and thousands of views would make every sync slow.
MAX_EVENT_VIEWS = 1000
MAX_COLUMNS_PER_VIEW = 1000

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


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as PostgreSQL will report it; only compared with earlier builds of the same view
    expression: sql.Composable
    path: tuple[str, ...] | None = None  # property columns only


@dataclass(frozen=True)
class View:
    name: str  # the BI-facing relation
    event_type: str
    catalog_event_id: int | None  # per-event relations only
    columns: tuple[Column, ...]

    @property
    def table(self) -> str:
        """The table holding the relation's rows. BI names never start with `_` and a letter (naming.py), so
        these never collide with one."""
        return f"_event_{self.catalog_event_id}" if self.catalog_event_id is not None else f"_{self.name}"

    @property
    def live_view(self) -> str:
        return f"{self.table}_live"

    @property
    def signature(self) -> list[list[str]]:
        return [[column.name, column.type] for column in self.columns]

    def record(self) -> dict:
        """What TeamWarehouse.views keeps of a relation: enough to fill it again without reading the catalog."""
        return {
            "type": self.event_type,
            "catalog_event_id": self.catalog_event_id,
            "columns": self.signature,
            "properties": [[c.name, list(c.path), c.type] for c in self.columns if c.path is not None],
        }

    @classmethod
    def from_record(cls, name: str, record: dict) -> "View":
        properties = tuple(property_column(column, tuple(path), kind) for column, path, kind in record["properties"])
        return relation(name, record["type"], record["catalog_event_id"], properties)


def _text(expression: str) -> sql.Composable:
    return sql.SQL(expression)


def _json_text(column: str, keys: Iterable[str]) -> sql.Composable:
    """`e.<column> #>> ARRAY['a', 'b']`: the value at a path as text (JSON text for objects and arrays)."""
    return sql.SQL("(e.{} #>> ARRAY[{}]::text[])").format(
        sql.Identifier(column), sql.SQL(", ").join(sql.Literal(key) for key in keys)
    )


# Cast to the tables' types: the live branch of a relation must have exactly the table's column types, or
# PostgreSQL cannot merge the branches' ordered scans (ORDER BY timestamp DESC LIMIT would sort every row).
_IDENTITY_COLUMNS = (
    Column("user_id", "text", _text("e.user_id::text")),
    Column("anonymous_id", "text", _text("e.anonymous_id::text")),
    Column("message_id", "text", _text("e.message_id::text")),
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
    return Column(name, column_type, expression, path)


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


# tracks.event is the event's relation name, as in Segment; NULL for names without one. Looked up rather than
# spelt out, so that no view's text (pg_views, readable by every login) names another team's events.
_TRACKS_EVENT = Column(
    "event",
    "text",
    sql.SQL(
        "(SELECT c.table_name FROM {catalog} c WHERE c.team_id = e.team_id AND c.type = 'track' "
        "AND c.name = e.event AND c.table_name <> '')"
    ).format(catalog=sql.Identifier(CatalogEvent._meta.db_table)),
)
_EVENT_TEXT = Column("event_text", "text", _text("e.event::text"))


def relation(name: str, event_type: str, catalog_event_id: int | None, properties: tuple[Column, ...]) -> View:
    """A relation's fixed columns followed by its property columns."""
    if catalog_event_id is not None:
        own_name = Column("event", "text", sql.SQL("{}::text").format(sql.Literal(name)))
        columns = _fixed_columns(EventType.TRACK, (own_name, _EVENT_TEXT))
    elif event_type == EventType.TRACK:
        columns = _fixed_columns(event_type, (_TRACKS_EVENT, _EVENT_TEXT))
    else:
        columns = _fixed_columns(event_type)
    return View(name, event_type, catalog_event_id, columns + properties)


def team_views(*, team_id: int) -> list[View]:
    """Every relation of a team's schema, as its catalog says they should be now."""
    events = list(CatalogEvent.objects.filter(team_id=team_id).order_by("pk"))
    properties: dict[int, list[CatalogProperty]] = {}
    for prop in CatalogProperty.objects.filter(team_id=team_id).exclude(column_name="").order_by("pk"):
        properties.setdefault(prop.catalog_event_id, []).append(prop)
    views = []
    for event_type, view_name in TYPE_VIEWS.items():
        shared: tuple[Column, ...] = ()
        if event_type in SHARED_PROPERTY_VIEWS:
            shared = _property_columns(
                sorted(
                    (p for e in events if e.type == event_type for p in properties.get(e.pk, ())), key=lambda p: p.pk
                )
            )
        views.append(relation(view_name, event_type, None, shared))
    for event in events:
        if event.type == EventType.TRACK and event.table_name:
            views.append(
                relation(event.table_name, EventType.TRACK, event.pk, _property_columns(properties.get(event.pk, ())))
            )
    return views
