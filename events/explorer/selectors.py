"""Reads behind the Events page (events/explorer/views.py): live tail, one event, catalog, volume, warehouse, CSV rows.

Everything is scoped to one team by the caller's `team`; nothing here takes an id without it. Each read holds
a bounded amount whatever the team sends: the tail and the catalog come a page at a time, the volume from the
catalog's hourly and daily counts, the export streamed by PostgreSQL's COPY a chunk at a time. A search by user or
property reads at most the team's latest SEARCH_WINDOW events, and a filtered count stops at COUNT_CAP.

The rule a newcomer must know: the tail, its counters and the export read events in the order they happened,
(timestamp, id), along the index `events_event_team_time_idx`, so a time range starts where the range starts
instead of walking the team's newer events first (docs/performance.md#events-page-time-index).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from django.core.paginator import Page, Paginator
from django.db import connection, transaction
from django.db.models import Count, Prefetch, Q, QuerySet, Subquery, Sum, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Trunc
from django.http import Http404
from django.utils import timezone

from accounts.models import Team
from events.models import (
    CatalogEvent,
    CatalogOther,
    CatalogProperty,
    CatalogSyncState,
    DailyEventVolume,
    Event,
    EventVolume,
    TeamWarehouse,
)
from events.warehouse.catalog import MAX_CATALOG_EVENTS, MAX_CATALOG_PROPERTIES
from events.warehouse.column_types import flatten
from events.warehouse.view_definitions import TYPE_VIEWS

TAIL_LIMIT = 50
PREVIEW_LENGTH = 120
VOLUME_SERIES = 6  # the busiest event names get a series each; the others are added up as "Other"
OTHER_EVENTS = "Other"
# The catalog is read a page at a time, so the Events page stays small whatever a team sends (see
# docs/performance.md#catalog-caps): names per page, properties shown under each name, properties per page of one name.
CATALOG_PAGE_SIZE = 20
PROPERTY_PREVIEW = 5
PROPERTY_PAGE_SIZE = 100
# The Events page names this many of the warehouse's per-event views; the catalog shows each name's view.
EVENT_VIEWS_SHOWN = 20

EVENT_FIELDS = (
    "id",
    "type",
    "event",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "message_id",
    "user_id",
    "anonymous_id",
)
DETAIL_FIELDS = (*EVENT_FIELDS, "properties", "context", "extra")


# A search by user or property value has no index of its own (each would cost every insert on the ingest path):
# it reads the team's latest SEARCH_WINDOW events, newest first along the time index, and no further. See
# docs/performance.md#events-page-search.
SEARCH_WINDOW = 100_000
# Filtered counts stop here: the page says "100,000+" rather than count a team's millions of rows every few seconds.
COUNT_CAP = 100_000
# The catalog is "kept up to date" while its sync has run this recently (`sync_warehouse --watch` runs every 5 s).
SYNC_RUNNING_WITHIN = timedelta(minutes=1)


@dataclass(frozen=True)
class EventFilters:
    event: str = ""
    since: datetime | None = None  # by the event's timestamp, inclusive
    until: datetime | None = None  # exclusive
    user: str = ""  # a user id or an anonymous id, exactly
    property_path: tuple[str, ...] = ()  # a property's keys, as the tail's preview shows them: referrer.source
    property_value: str = ""  # the value as text: "39.95" finds the number 39.95 and the string "39.95"

    @property
    def searching(self) -> bool:
        """Whether a filter reads the events themselves beyond their name and time (bounded by SEARCH_WINDOW)."""
        return bool(self.user or self.property_path)

    @property
    def active(self) -> bool:
        return bool(self.event or self.since or self.until or self.searching)


def events_matching(*, team: Team, filters: EventFilters) -> QuerySet:
    events = Event.objects.for_team(team)
    if filters.event:
        events = events.filter(event=filters.event)
    if filters.since is not None:
        events = events.filter(timestamp__gte=filters.since)
    if filters.until is not None:
        events = events.filter(timestamp__lt=filters.until)
    if filters.searching:
        # The time of the team's SEARCH_WINDOW-th latest event, from the time index alone, read first: as a value
        # the planner sees how few rows it leaves; as a subquery it guessed a third of the table and read it all.
        window = Event.objects.for_team(team).order_by(*NEWEST_FIRST).values_list("timestamp", flat=True)
        window_start = list(window[SEARCH_WINDOW - 1 : SEARCH_WINDOW])
        if window_start:
            events = events.filter(timestamp__gte=window_start[0])
    if filters.user:
        events = events.filter(Q(user_id=filters.user) | Q(anonymous_id=filters.user))
    if filters.property_path:
        # Without a value: the events that have the property at all.
        events = events.annotate(property_text=_property_text(filters.property_path))
        if filters.property_value:
            events = events.filter(property_text=filters.property_value)
        else:
            events = events.filter(property_text__isnull=False)
    return events


def _property_text(path: tuple[str, ...]) -> Cast:
    """The value at a path of property keys as text (`properties #>> '{referrer,source}'` on PostgreSQL; the cast
    makes SQLite's numbers text too)."""
    expression: str | KeyTransform = "properties"
    for key in path[:-1]:
        expression = KeyTransform(key, expression)
    return Cast(KeyTextTransform(path[-1], expression), TextField())


def _preview(properties) -> str:
    """`revenue: 39.95 · shippingMethod: 2-day`, cut to PREVIEW_LENGTH characters."""
    text = " · ".join(f"{'.'.join(path)}: {value}" for path, value in flatten(properties))
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


# The order of the tail, its counters and the export: the index (team_id, timestamp, id) serves it (models.Event).
NEWEST_FIRST = ("-timestamp", "-id")
OLDEST_FIRST = ("timestamp", "id")


@dataclass
class Tail:
    events: list[dict]  # newest first
    older: int | None  # the before_id of the next page back; None when these are the oldest (or new ones)


def events_tail(
    *,
    team: Team,
    filters: EventFilters,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int = TAIL_LIMIT,
) -> Tail:
    """The newest events by when they happened, (timestamp, id) descending; with after_id only those stored after
    it, for the live tail; with before_id the page that comes after event before_id in that order (keyset paging
    on the time index, so a page a month back costs what the first page costs). A before_id that is not one of the
    team's events gives an empty page."""
    events = events_matching(team=team, filters=filters)
    if after_id is not None:
        events = events.filter(id__gt=after_id)
    if before_id is not None:
        # (timestamp, id) < (its timestamp, before_id): the range condition reaches the index, the tie is filtered.
        before = Subquery(Event.objects.for_team(team).filter(pk=before_id).values("timestamp"))
        events = events.filter(timestamp__lte=before).exclude(timestamp=before, id__gte=before_id)
    rows = list(events.order_by(*NEWEST_FIRST).values(*EVENT_FIELDS, "properties")[: limit + 1])
    more = len(rows) > limit  # the one row past the page says whether there is a page after it
    rows = rows[:limit]
    for row in rows:
        row["preview"] = _preview(row.pop("properties"))
    return Tail(events=rows, older=rows[-1]["id"] if more and after_id is None else None)


def event_detail(*, team: Team, event_id: int) -> dict:
    """One event of the team as stored; another team's event is as absent as one that does not exist."""
    row = Event.objects.for_team(team).filter(pk=event_id).values(*DETAIL_FIELDS).first()
    if row is None:
        raise Http404("No such event.")
    return row


class EventCounts(TypedDict):
    events: int
    names: int
    capped: bool  # more events match than COUNT_CAP: `events` and `names` are lower bounds
    other_names: bool  # some names are counted together as Other (unfiltered counts only)
    filtered: bool


def event_counts(*, team: Team, filters: EventFilters) -> EventCounts:
    """The Events page's counters: without filters the catalog's totals (kept by the warehouse sync); with
    filters the matching events themselves, up to COUNT_CAP of them, in one query."""
    if not filters.active:
        totals = CatalogEvent.objects.filter(team=team).aggregate(names=Count("pk"), events=Sum("count"))
        other = CatalogOther.objects.filter(team=team, catalog_event__isnull=True).first()
        return {
            "events": (totals["events"] or 0) + (other.count if other else 0),
            "names": totals["names"],
            "capped": False,
            "other_names": other is not None,
            "filtered": False,
        }
    matching = events_matching(team=team, filters=filters).order_by(*NEWEST_FIRST).values("event")[: COUNT_CAP + 1]
    sql, params = matching.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(DISTINCT event) FROM ({sql}) AS matching", params)  # noqa: S608
        events, names = cursor.fetchone()
    return {
        "events": min(events, COUNT_CAP),
        "names": names,
        "capped": events > COUNT_CAP,
        "other_names": False,
        "filtered": True,
    }


@dataclass
class CatalogPage:
    """One page of a team's catalog, busiest names first, and what the team's catalog holds in all."""

    page: Page  # of CatalogEvent, each with .preview (its first properties), .property_count, .other_properties
    search: str
    names: int  # catalogued names of the team (not only those matching the search)
    other_names: CatalogOther | None  # the names past MAX_CATALOG_EVENTS, counted as Other
    max_names: int
    max_properties: int


def catalog_page(*, team: Team, search: str = "", number: int | str = 1, size: int = CATALOG_PAGE_SIZE) -> CatalogPage:
    """A page of the team's event names whose name contains `search` (any case), with a preview of each one's
    properties and its "Other" properties. A fixed number of queries, each bounded by the page size."""
    names = CatalogEvent.objects.filter(team=team).count()
    events = CatalogEvent.objects.filter(team=team)
    if search:
        events = events.filter(name__icontains=search)
    first_properties = CatalogProperty.objects.filter(team=team).order_by("pk")[:PROPERTY_PREVIEW]
    preview = Prefetch("properties", queryset=first_properties, to_attr="preview")
    page = Paginator(events.order_by("-count", "name", "pk").prefetch_related(preview), size).get_page(number)
    ids = [event.pk for event in page.object_list]
    property_counts = dict(
        CatalogProperty.objects.filter(team=team, catalog_event_id__in=ids)
        .values_list("catalog_event_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    others = {
        other.catalog_event_id: other
        for other in CatalogOther.objects.filter(team=team).filter(
            Q(catalog_event__isnull=True) | Q(catalog_event_id__in=ids)
        )
    }
    for event in page.object_list:
        event.property_count = property_counts.get(event.pk, 0)
        event.other_properties = others.get(event.pk)
    other_names = others.get(None)
    return CatalogPage(
        page=page,
        search=search,
        names=names,
        other_names=other_names,
        max_names=MAX_CATALOG_EVENTS,
        max_properties=MAX_CATALOG_PROPERTIES,
    )


@dataclass
class CatalogEventPage:
    """One event name of the catalog with a page of its properties (in column order) and its "Other" ones."""

    event: CatalogEvent
    page: Page  # of CatalogProperty
    other_properties: CatalogOther | None
    max_properties: int


def catalog_event_page(*, team: Team, event_id: int, number: int | str = 1) -> CatalogEventPage:
    """Raises Http404 for an id that is not one of the team's names, like one that does not exist."""
    event = CatalogEvent.objects.filter(team=team, pk=event_id).first()
    if event is None:
        raise Http404("No such event name.")
    properties = CatalogProperty.objects.filter(catalog_event=event).order_by("pk")
    page = Paginator(properties, PROPERTY_PAGE_SIZE).get_page(number)
    other = CatalogOther.objects.filter(team=team, catalog_event=event).first()
    return CatalogEventPage(event=event, page=page, other_properties=other, max_properties=MAX_CATALOG_PROPERTIES)


def _other_as_json(other: CatalogOther | None) -> dict | None:
    if other is None:
        return None
    return {"count": other.count, "distinct": other.distinct, "first_seen": other.first_seen_at,
            "last_seen": other.last_seen_at}  # fmt: skip


def _property_as_json(prop: CatalogProperty) -> dict:
    return {"path": prop.path, "column": prop.column_name or None, "type": prop.inferred_type, "present": prop.count}


def _event_as_json(event: CatalogEvent) -> dict:
    return {
        "id": event.pk,
        "name": event.name,
        "type": event.type,
        "table": event.table_name or None,
        "count": event.count,
        "first_seen": event.first_seen_at,
        "last_seen": event.last_seen_at,
    }


def catalog_as_json(*, team: Team, search: str = "", number: int | str = 1) -> dict:
    """A page of the catalog as the Events page shows it: each name with its first properties; all of them are
    on the name's own pages (catalog_event_as_json)."""
    catalog = catalog_page(team=team, search=search, number=number)
    return {
        "page": catalog.page.number,
        "pages": catalog.page.paginator.num_pages,
        "names": catalog.names,
        "other_names": _other_as_json(catalog.other_names),
        "events": [
            {
                **_event_as_json(event),
                "property_count": event.property_count,
                "properties": [_property_as_json(prop) for prop in event.preview],
                "other_properties": _other_as_json(event.other_properties),
            }
            for event in catalog.page.object_list
        ],
    }


def catalog_event_as_json(*, team: Team, event_id: int, number: int | str = 1) -> dict:
    entry = catalog_event_page(team=team, event_id=event_id, number=number)
    return {
        **_event_as_json(entry.event),
        "page": entry.page.number,
        "pages": entry.page.paginator.num_pages,
        "property_count": entry.page.paginator.count,
        "properties": [_property_as_json(prop) for prop in entry.page.object_list],
        "other_properties": _other_as_json(entry.other_properties),
    }


class VolumeSeries(TypedDict):
    event: str
    counts: list[int]  # one per bucket start


VOLUME_RANGES = {
    # name: (bucket, number of buckets); hours from EventVolume, days from DailyEventVolume
    "24h": ("hour", 24),
    "30d": ("day", 30),
}


# The names shown, the counts per name and bucket, and every name's total per bucket.
_VolumeCells = tuple[list[str], dict[str, dict[datetime, int]], dict[datetime, int]]


def volume_series(
    *, team: Team, period: str, filters: EventFilters = EventFilters(), now: datetime | None = None
) -> dict:
    """Events per hour over 24 hours or per day over 30 days, ending now or at the filters' `until` and starting no
    earlier than their `since`, one series per event name (the VOLUME_SERIES busiest; the rest, with the names the
    catalog counts as Other, as "Other").

    Filtered by name and time, it reads the catalog's hourly or daily counts, so it costs the same for a team
    sending ten events a day or ten thousand a second: three queries, whose answers are at most VOLUME_SERIES
    names, their buckets, and the buckets' totals (a bucket counts whole, also where the range cuts it). A search
    by user or property counts the matching events themselves, bounded by SEARCH_WINDOW: two queries, the window's
    start and the count."""
    bucket, count = VOLUME_RANGES[period]
    now = now or timezone.now()
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    if filters.until is not None and filters.until <= now:
        last = _bucket_start(filters.until - timedelta(microseconds=1), bucket)  # `until` is exclusive
    else:
        last = _bucket_start(now, bucket)
    starts = [last - step * i for i in reversed(range(count))]
    if filters.since is not None:
        starts = [start for start in starts if start + step > filters.since]
    cells: _VolumeCells
    if not starts:
        cells = [], {}, {}
    elif filters.searching:
        cells = _counted_volume(team=team, filters=filters, bucket=bucket, starts=starts, step=step)
    else:
        cells = _catalog_volume(team=team, event=filters.event, bucket=bucket, starts=starts)
    shown, totals, everything = cells
    series: list[VolumeSeries] = [
        {"event": name, "counts": [totals[name].get(start, 0) for start in starts]} for name in shown
    ]
    others = [everything.get(start, 0) - sum(s["counts"][i] for s in series) for i, start in enumerate(starts)]
    if any(others):
        series.append({"event": OTHER_EVENTS, "counts": others})
    return {
        "period": period,
        "bucket": bucket,
        "starts": starts,
        "series": series,
        "total": sum(sum(s["counts"]) for s in series),
    }


def _bucket_start(moment: datetime, bucket: str) -> datetime:
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if bucket == "day" else start


def _catalog_volume(*, team: Team, event: str, bucket: str, starts: list[datetime]) -> _VolumeCells:
    model = EventVolume if bucket == "hour" else DailyEventVolume
    rows = model.objects.filter(team=team, **{f"{bucket}__gte": starts[0], f"{bucket}__lte": starts[-1]})
    if event:
        rows = rows.filter(event=event)
    shown = list(
        rows.exclude(event=EventVolume.OTHER_NAMES)
        .values("event")
        .annotate(total=Sum("count"))
        .order_by("-total", "event")
        .values_list("event", flat=True)[:VOLUME_SERIES]
    )
    totals: dict[str, dict[datetime, int]] = {name: {} for name in shown}
    for name, start, total in rows.filter(event__in=shown).values_list("event", bucket, "count"):
        totals[name][start] = total
    everything = dict(rows.values(bucket).annotate(n=Sum("count")).values_list(bucket, "n").order_by())
    return shown, totals, everything


def _counted_volume(
    *, team: Team, filters: EventFilters, bucket: str, starts: list[datetime], step: timedelta
) -> _VolumeCells:
    events = events_matching(team=team, filters=filters).filter(
        timestamp__gte=starts[0], timestamp__lt=starts[-1] + step
    )
    cells = (
        events.annotate(start=Trunc("timestamp", bucket, tzinfo=UTC))
        .values_list("event", "start")
        .annotate(n=Count("id"))
        .order_by()
    )
    totals: dict[str, dict[datetime, int]] = {}
    everything: dict[datetime, int] = {}
    for name, start, n in cells:
        totals.setdefault(name, {})[start] = n
        everything[start] = everything.get(start, 0) + n
    shown = sorted(totals, key=lambda name: (-sum(totals[name].values()), name))[:VOLUME_SERIES]
    return shown, totals, everything


def warehouse_summary(*, team: Team) -> dict:
    """What the Events page and Settings say about the team's warehouse."""
    # Not `views` itself: it holds every column of every view; see docs/performance.md#catalog-caps.
    warehouse = TeamWarehouse.objects.filter(team=team).defer("views").first()
    synced_at = catalog_synced_at()
    views = _view_names(warehouse) if warehouse else []
    type_views = [name for name in TYPE_VIEWS.values() if name in views]
    event_views = [name for name in views if name not in type_views]
    return {
        "available": connection.vendor == "postgresql",
        "schema": warehouse.schema_name if warehouse else None,
        "type_views": type_views,
        "event_views": event_views[:EVENT_VIEWS_SHOWN],
        "more_event_views": len(event_views[EVENT_VIEWS_SHOWN:]),
        "views_synced_at": warehouse.views_synced_at if warehouse else None,
        "has_login": bool(warehouse and warehouse.role_name),
        "login": warehouse.role_name if warehouse else "",
        "credentials_rotated_at": warehouse.credentials_rotated_at if warehouse else None,
        "catalog_synced_at": synced_at,
        "catalog_sync_running": bool(synced_at and timezone.now() - synced_at < SYNC_RUNNING_WITHIN),
    }


def catalog_synced_at() -> datetime | None:
    """When the warehouse sync last added events to the catalog (all teams at once)."""
    return CatalogSyncState.objects.filter(pk=1).values_list("synced_at", flat=True).first()


def _view_names(warehouse: TeamWarehouse) -> list[str]:
    """The names of the views built for the team (the keys of TeamWarehouse.views), sorted."""
    if connection.vendor != "postgresql":
        return sorted(TeamWarehouse.objects.get(pk=warehouse.pk).views)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM events_teamwarehouse, jsonb_object_keys(views) AS name "
            'WHERE id = %s ORDER BY name COLLATE "C"',
            [warehouse.pk],
        )
        return [name for (name,) in cursor.fetchall()]


EXPORT_COLUMNS = (*EVENT_FIELDS, "properties", "context")
# A spreadsheet runs a cell that starts with one of these as a formula: such text cells get a leading '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_EXPORT_TEXT = ("type", "event", "message_id", "user_id", "anonymous_id")
_EXPORT_TIMES = ("timestamp", "original_timestamp", "sent_at", "received_at")
_EXPORT_JSON = ("properties", "context")
# Rows go to the server in chunks of about this size: a row at a time would cost a trip through the WSGI server
# and the socket per row.
EXPORT_CHUNK_BYTES = 64 * 1024


def export_available() -> bool:
    """The export is formatted by PostgreSQL's COPY; `make run` on SQLite has no export."""
    return connection.vendor == "postgresql"


def _export_cell(column: str) -> str:
    """The SQL for one CSV cell: ISO 8601 times as Python writes them (2024-03-01T01:00:00+00:00, microseconds
    only when there are some), JSON as jsonb prints it, text that would start a spreadsheet formula behind a '."""
    value = f'e."{column}"'
    if column in _EXPORT_TEXT:
        return f"CASE WHEN left({value}, 1) = ANY(%s) THEN '''' || {value} ELSE {value} END"
    if column in _EXPORT_TIMES:
        utc = f"({value} AT TIME ZONE 'UTC')"
        fraction = f"CASE to_char({utc}, 'US') WHEN '000000' THEN '' ELSE to_char({utc}, '.US') END"
        return f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || {fraction} || '+00:00'"""
    if column in _EXPORT_JSON:
        return f"{value}::text"
    return value


def export_query(*, team: Team, filters: EventFilters) -> tuple[str, list]:
    """The SELECT behind the export: every matching event, oldest first along the time index, one text cell per
    EXPORT_COLUMNS, named as they are."""
    matching = events_matching(team=team, filters=filters).order_by().values(*EXPORT_COLUMNS)
    sql, params = matching.query.sql_with_params()
    cells = ", ".join(f'{_export_cell(column)} AS "{column}"' for column in EXPORT_COLUMNS)
    formula_starts = [list(FORMULA_STARTS) for column in EXPORT_COLUMNS if column in _EXPORT_TEXT]
    order = ", ".join(f'e."{column}"' for column in OLDEST_FIRST)
    return f"SELECT {cells} FROM ({sql}) AS e ORDER BY {order}", [*formula_starts, *params]  # noqa: S608


def export_csv(*, team: Team, filters: EventFilters) -> Iterator[bytes]:
    """The matching events as CSV (RFC 4180 quoting, a header line), in chunks of about EXPORT_CHUNK_BYTES.

    PostgreSQL formats every row (COPY ... TO STDOUT) and the rows pass through here as bytes, a chunk at a
    time, so an export of millions of rows holds one chunk in memory and Python never looks at a value
    (docs/performance.md#csv-export). Nothing is read until the first chunk is asked for."""
    query, params = export_query(team=team, filters=filters)
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # Along the time index, so the first rows leave at once: for a long range the planner would rather sort
        # the whole range first, and the download would wait seconds for its first byte.
        cursor.execute("SET LOCAL enable_sort = off")
        with cursor.cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)", params) as copy:
            chunk = bytearray()
            for row in copy:
                chunk += row
                if len(chunk) >= EXPORT_CHUNK_BYTES:
                    yield bytes(chunk)
                    chunk.clear()
            if chunk:
                yield bytes(chunk)
