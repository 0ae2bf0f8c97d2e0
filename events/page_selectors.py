"""Reads behind the Events page (events/pages.py): live tail, one event, catalog, volume, warehouse, CSV rows.

Everything is scoped to one team by the caller's `team`; nothing here takes an id without it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Prefetch, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.http import Http404
from django.utils import timezone

from accounts.models import Team

from .models import CatalogEvent, CatalogProperty, CatalogSyncState, Event, EventVolume, TeamWarehouse
from .warehouse import TYPE_VIEWS, flatten

TAIL_LIMIT = 50
PREVIEW_LENGTH = 120
VOLUME_SERIES = 6  # the busiest event names get a series each; the others are added up as "Other"
OTHER_EVENTS = "Other"
EXPORT_CHUNK_SIZE = 2000

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


@dataclass(frozen=True)
class EventFilters:
    event: str = ""
    since: datetime | None = None  # by the event's timestamp, inclusive
    until: datetime | None = None  # exclusive


def events_matching(*, team: Team, filters: EventFilters) -> QuerySet:
    events = Event.objects.for_team(team)
    if filters.event:
        events = events.filter(event=filters.event)
    if filters.since is not None:
        events = events.filter(timestamp__gte=filters.since)
    if filters.until is not None:
        events = events.filter(timestamp__lt=filters.until)
    return events


def _preview(properties) -> str:
    """`revenue: 39.95 · shippingMethod: 2-day`, cut to PREVIEW_LENGTH characters."""
    text = " · ".join(f"{'.'.join(path)}: {value}" for path, value in flatten(properties))
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def events_tail(
    *, team: Team, filters: EventFilters, after_id: int | None = None, limit: int = TAIL_LIMIT
) -> list[dict]:
    """The newest events (newest first); with after_id only those stored after it, for the live tail."""
    events = events_matching(team=team, filters=filters)
    if after_id is not None:
        events = events.filter(id__gt=after_id)
    rows = list(events.order_by("-id").values(*EVENT_FIELDS, "properties")[:limit])
    for row in rows:
        row["preview"] = _preview(row.pop("properties"))
    return rows


def event_detail(*, team: Team, event_id: int) -> dict:
    """One event of the team as stored; another team's event is as absent as one that does not exist."""
    row = Event.objects.for_team(team).filter(pk=event_id).values(*DETAIL_FIELDS).first()
    if row is None:
        raise Http404("No such event.")
    return row


def catalog(*, team: Team) -> list[CatalogEvent]:
    """The team's event names, busiest first, each with its properties (in column order)."""
    properties = Prefetch("properties", queryset=CatalogProperty.objects.order_by("pk"))
    return list(CatalogEvent.objects.filter(team=team).order_by("-count", "name").prefetch_related(properties))


def catalog_as_json(*, team: Team) -> list[dict]:
    return [
        {
            "name": event.name,
            "type": event.type,
            "table": event.table_name or None,
            "count": event.count,
            "first_seen": event.first_seen_at,
            "last_seen": event.last_seen_at,
            "properties": [
                {
                    "path": prop.path,
                    "column": prop.column_name or None,
                    "type": prop.inferred_type,
                    "present": prop.count,
                }
                for prop in event.properties.all()
            ],
        }
        for event in catalog(team=team)
    ]


VOLUME_RANGES = {
    # name: (bucket, number of buckets)
    "24h": ("hour", 24),
    "30d": ("day", 30),
}


def volume_series(*, team: Team, period: str, event: str = "", now: datetime | None = None) -> dict:
    """Events per hour over the last 24 hours or per day over the last 30 days, one series per event name
    (the VOLUME_SERIES busiest, the rest as "Other"). From the catalog's hourly counts, so it costs the same
    for a team sending ten events a day or ten thousand a second."""
    bucket, count = VOLUME_RANGES[period]
    now = now or timezone.now()
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    last = now.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        last = last.replace(hour=0)
    starts = [last - step * i for i in reversed(range(count))]
    rows = EventVolume.objects.filter(team=team, hour__gte=starts[0])
    if event:
        rows = rows.filter(event=event)
    truncate = TruncHour("hour") if bucket == "hour" else TruncDay("hour")
    totals: dict[str, dict[datetime, int]] = {}
    for name, start, total in rows.annotate(bucket=truncate).values_list("event", "bucket").annotate(n=Sum("count")):
        totals.setdefault(name, {})[start] = total
    ranked = sorted(totals, key=lambda name: (-sum(totals[name].values()), name))
    shown, others = ranked[:VOLUME_SERIES], ranked[VOLUME_SERIES:]
    series = [{"event": name, "counts": [totals[name].get(start, 0) for start in starts]} for name in shown]
    if others:
        counts = [sum(totals[name].get(start, 0) for name in others) for start in starts]
        series.append({"event": OTHER_EVENTS, "counts": counts})
    return {
        "period": period,
        "bucket": bucket,
        "starts": starts,
        "series": series,
        "total": sum(sum(s["counts"]) for s in series),
    }


def warehouse_summary(*, team: Team) -> dict:
    """What the Events page and Settings say about the team's warehouse."""
    warehouse = TeamWarehouse.objects.filter(team=team).first()
    state = CatalogSyncState.objects.filter(pk=1).first()
    views = sorted((warehouse.views or {}).keys()) if warehouse else []
    type_views = [name for name in TYPE_VIEWS.values() if name in views]
    return {
        "available": connection.vendor == "postgresql",
        "schema": warehouse.schema_name if warehouse else None,
        "type_views": type_views,
        "event_views": [name for name in views if name not in type_views],
        "views_synced_at": warehouse.views_synced_at if warehouse else None,
        "has_login": bool(warehouse and warehouse.role_name),
        "login": warehouse.role_name if warehouse else "",
        "credentials_rotated_at": warehouse.credentials_rotated_at if warehouse else None,
        "catalog_synced_at": state.synced_at if state else None,
    }


EXPORT_COLUMNS = (*EVENT_FIELDS, "properties", "context")


def export_rows(*, team: Team, filters: EventFilters) -> Iterator[tuple]:
    """Every matching event in the order it was stored, read in chunks through a server-side cursor on
    PostgreSQL, so an export of millions of rows holds only one chunk in memory."""
    events = events_matching(team=team, filters=filters).order_by("id").values_list(*EXPORT_COLUMNS)
    return events.iterator(chunk_size=EXPORT_CHUNK_SIZE)
