"""What storing some events would change in a team's warehouse, for the API's dry runs; writes nothing.

`warehouse_changes` answers the way the next catalog pass and sync would: which views would be created,
which columns added or retyped, and which names or properties the catalog has no room for (they would be
counted in its "Other" rows and get no view or column). It reads the catalog as it is now and plays the same
rules on top of it in memory: the names from events.warehouse.naming, the types from
events.warehouse.column_types, the caps from events.warehouse.catalog.

The rule a newcomer must know: a dry run must say what storing the events would do, so it takes every name,
type and cap from the module that applies it for real and states none of them again; only the catalog's
bookkeeping (which names still have room) is replayed here, read-only.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count

from accounts.models import Team
from events.models import CatalogEvent, CatalogProperty, EventType, TeamWarehouse
from events.warehouse.catalog import MAX_CATALOG_EVENTS, MAX_CATALOG_PROPERTIES
from events.warehouse.column_types import TypeCounts, flatten, value_type
from events.warehouse.naming import column_name_for, path_digest, table_name_for, unused_schema_name
from events.warehouse.view_definitions import SHARED_PROPERTY_VIEWS, TYPE_VIEWS


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
    schema = warehouse.schema_name if warehouse else unused_schema_name(team)
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
    changes = {"schema": schema, "views": views, "columns": list(columns.values())}
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
