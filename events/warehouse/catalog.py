"""The catalog: per team, every event name and property seen, with counts and inferred types, and the hourly
volume behind the Events page's chart.

Computed incrementally, off the request path: `catalog_sync` reads the events stored since the last sync
(by id), adds them up in memory and adds the totals to the catalog tables, one transaction per chunk of ids.
Ingest writes nothing but the event row, so there is no per-event write to a shared row anywhere.

Why a list of gaps next to the watermark: ids are handed out by a sequence when a row is inserted, but rows
become visible when their transaction commits, and concurrent transactions (group commits of many events)
commit in any order. A sync can therefore see id 105 while 104 is still in flight. Each id the sync passes
without finding it goes into `open_gaps`; later syncs look for those ids again and count them when they
appear. Ids that never appear (a duplicate messageId still takes an id; a rolled-back insert too) are let go
after GAP_TTL, far longer than any insert transaction runs.

One team's data can never stop the others: each team's rows are counted in a savepoint of its own. When a
team's fail, the watermark still moves on; that team's ids wait in its `catalog_backlog` (ranges of ids),
every later row of it joins them, and each sync retries them first. Its error, and since when, are on its
TeamWarehouse (Django admin, /metrics).

The rule a newcomer must know: each stored event is counted exactly once, whatever order transactions commit
in and however often the sync runs or fails; and a team's catalog holds at most MAX_CATALOG_EVENTS names and
MAX_CATALOG_PROPERTIES properties per name, the rest counted in its "Other" rows.
"""

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from accounts.models import Team
from events.models import (
    CatalogEvent,
    CatalogOther,
    CatalogProperty,
    CatalogSyncState,
    DailyEventVolume,
    Event,
    EventType,
    EventVolume,
    SyncStep,
    TeamWarehouse,
)
from events.warehouse.column_types import TypeCounts, flatten, value_type
from events.warehouse.distinct_count import empty_sketch, sketch_add
from events.warehouse.naming import column_name_for, path_digest, path_key, table_name_for, warehouse_for_team
from events.warehouse.selection import EventSelection
from events.warehouse.tables import tables_fill
from events.warehouse.view_definitions import MAX_COLUMNS_PER_VIEW, MAX_EVENT_VIEWS, TYPE_VIEWS

# Past these, a name or property is not catalogued at all, only counted in its "Other" row: a tenant making up
# names must not grow the catalog, or the Events page that lists it, without end.
MAX_CATALOG_EVENTS = 2 * MAX_EVENT_VIEWS  # per team, every type; room for views and for non-track names
MAX_CATALOG_PROPERTIES = MAX_COLUMNS_PER_VIEW  # per event name
CHUNK_SIZE = 5000
GAP_TTL = timedelta(minutes=10)
MAX_OPEN_GAPS = 20_000

logger = logging.getLogger(__name__)


@dataclass
class CatalogSyncResult:
    events: int = 0
    teams_changed: set[int] = field(default_factory=set)  # teams whose views need a rebuild
    teams_failed: set[int] = field(default_factory=set)  # teams whose events wait in their backlog


@dataclass
class _EventTally:
    first_id: int
    first_seen: datetime
    last_seen: datetime
    count: int = 0
    properties: dict[tuple[str, ...], TypeCounts] = field(default_factory=dict)


@dataclass
class _Tally:
    """One team's events of one sync, added up in memory."""

    events: dict[tuple[str, str], _EventTally] = field(default_factory=dict)  # (type, name)
    volume: dict[tuple[str, datetime], int] = field(default_factory=dict)  # (name, hour)

    def add(self, event_id, event_type, name, properties, timestamp, received_at) -> None:
        key = (event_type, name)
        tally = self.events.get(key)
        if tally is None:
            tally = self.events[key] = _EventTally(event_id, received_at, received_at)
        tally.count += 1
        tally.first_seen = min(tally.first_seen, received_at)
        tally.last_seen = max(tally.last_seen, received_at)
        for path, value in flatten(properties):
            kind = value_type(value)
            if kind is not None:
                tally.properties.setdefault(path, TypeCounts()).add_value(kind)
        hour = (name, timestamp.replace(minute=0, second=0, microsecond=0))
        self.volume[hour] = self.volume.get(hour, 0) + 1


_ROW_FIELDS = ("id", "team_id", "type", "event", "properties", "timestamp", "received_at")


def catalog_sync(*, chunk_size: int = CHUNK_SIZE, gap_ttl: timedelta = GAP_TTL) -> CatalogSyncResult:
    """Add every event stored since the last sync to the catalog. Safe to run from several processes at once
    (they take turns on the state row) and to repeat: each event is counted once.

    Each team is catalogued in a savepoint of its own. A team that fails holds back only itself: the
    watermark moves on, its events wait in its backlog (retried first on every sync), and its error is
    recorded on its TeamWarehouse for staff and /metrics.
    """
    result = CatalogSyncResult()
    CatalogSyncState.objects.get_or_create(pk=1)
    first_chunk = True
    while True:
        with transaction.atomic():
            state = CatalogSyncState.objects.select_for_update().get(pk=1)
            now = time.time()
            gaps = [gap for gap in state.open_gaps if now - gap[1] < gap_ttl.total_seconds()]
            ceiling = max(_highest_allocated_id(), state.last_event_id)
            upper = min(state.last_event_id + chunk_size, ceiling)
            rows = list(Event.objects.filter(id__gt=state.last_event_id, id__lte=upper).values_list(*_ROW_FIELDS))
            if first_chunk:
                wanted = [gap[0] for gap in gaps]
                for start in range(0, len(wanted), 1000):
                    rows += Event.objects.filter(id__in=wanted[start : start + 1000]).values_list(*_ROW_FIELDS)
                # A backlog retry counts the waiting gaps it finds: they must not be counted twice.
                counted = _retry_backlogs(chunk_size=chunk_size, result=result)
                gaps = [gap for gap in gaps if gap[0] not in counted]
                rows = [row for row in rows if row[0] not in counted]
            rows.sort()
            found = {row[0] for row in rows}
            gaps = [gap for gap in gaps if gap[0] not in found]
            gaps += [[i, int(now)] for i in range(state.last_event_id + 1, upper + 1) if i not in found]
            _add_to_catalog(rows, passed=(state.last_event_id + 1, upper), result=result)
            state.last_event_id = upper
            state.open_gaps = gaps[-MAX_OPEN_GAPS:]
            state.live_from_id = min([gap[0] for gap in state.open_gaps] + [upper + 1])
            state.synced_at = timezone.now()
            state.save()
        result.events += len(rows)
        first_chunk = False
        if upper >= ceiling:
            return result


def _highest_allocated_id() -> int:
    """The last id the events sequence handed out (committed or not). Reading it costs nothing, where
    max(id) would scan: the primary key on PostgreSQL is (team_id, id)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')::regclass)", [Event._meta.db_table]
            )
            return cursor.fetchone()[0] or 0
    return Event.objects.aggregate(highest=Max("id"))["highest"] or 0


def _add_to_catalog(rows: list[tuple], *, passed: tuple[int, int], result: CatalogSyncResult) -> None:
    """Add rows (ordered by id) to the catalog and the volume, each team on its own. `passed` is the range of
    ids this sync has just moved past: a team that cannot take its rows keeps that range in its backlog."""
    by_team: dict[int, list[tuple]] = {}
    for row in rows:
        by_team.setdefault(row[1], []).append(row)
    for team in Team.objects.filter(pk__in=by_team):
        warehouse_for_team(team=team)
    for warehouse in TeamWarehouse.objects.filter(team_id__in=by_team).order_by("team_id"):
        team_rows = by_team[warehouse.team_id]
        if warehouse.catalog_backlog:
            _defer(warehouse, team_rows, passed=passed)  # in id order: behind the events already waiting
        elif not _catalog_team(warehouse, team_rows, result=result):
            _defer(warehouse, team_rows, passed=passed)


def _catalog_team(warehouse: TeamWarehouse, rows: list[tuple], *, result: CatalogSyncResult) -> bool:
    """Count one team's rows in a savepoint. False (and the error recorded) if the team's catalog refused
    them: nothing of them is counted then."""
    team_id = warehouse.team_id
    tally = _Tally()
    for event_id, _, event_type, name, properties, timestamp, received_at in rows:
        tally.add(event_id, event_type, name, properties, timestamp, received_at)
    try:
        with transaction.atomic():
            catalog_events, names_added = _update_events(team_id, tally)
            columns_changed = _update_properties(team_id, tally, catalog_events)
            _update_volume(team_id, tally)
            changed = names_added or columns_changed
            if changed:
                TeamWarehouse.objects.filter(pk=warehouse.pk).update(catalog_version=F("catalog_version") + 1)
            tables_fill(warehouse=warehouse, selection=EventSelection(team_id, ids=tuple(row[0] for row in rows)))
    except Exception as error:  # whatever one team's data does, the other teams are synced
        logger.exception("Could not catalog the events of %s; they wait in its backlog.", warehouse.schema_name)
        warehouse.record_sync_failure(step=SyncStep.CATALOG, error=error)
        result.teams_failed.add(team_id)
        return False
    warehouse.clear_sync_failure(step=SyncStep.CATALOG)
    if changed:
        result.teams_changed.add(team_id)
    return True


def _defer(warehouse: TeamWarehouse, rows: list[tuple], *, passed: tuple[int, int]) -> None:
    """Put a team's rows in its backlog. Rows of the range just passed take the whole range, so the team's
    rows still in flight there are waited for too; rows found in the gaps take their own id."""
    backlog = warehouse.catalog_backlog
    for row in rows:
        event_id = row[0]
        if not _covers(backlog, event_id):
            first, last = passed if passed[0] <= event_id <= passed[1] else (event_id, event_id)
            backlog = _with_range(backlog, first, last)
    warehouse.catalog_backlog = backlog
    TeamWarehouse.objects.filter(pk=warehouse.pk).update(catalog_backlog=backlog)


def _covers(backlog: list[list[int]], event_id: int) -> bool:
    return any(first <= event_id <= last for first, last in backlog)


def _with_range(backlog: list[list[int]], first: int, last: int) -> list[list[int]]:
    """The backlog's ranges with [first, last] added, sorted, touching ranges merged."""
    merged: list[list[int]] = []
    for start, end in sorted([*backlog, [first, last]]):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _retry_backlogs(*, chunk_size: int, result: CatalogSyncResult) -> set[int]:
    """Try again, for each team with a backlog, to catalog up to chunk_size of its waiting events, oldest
    first. Returns the ids counted."""
    counted: set[int] = set()
    for warehouse in TeamWarehouse.objects.exclude(catalog_backlog=[]).order_by("team_id"):
        rows: list[tuple] = []
        left = []
        for first, last in warehouse.catalog_backlog:
            room = chunk_size - len(rows)
            if room <= 0:
                left.append([first, last])
                continue
            found = list(
                Event.objects.filter(team_id=warehouse.team_id, id__gte=first, id__lte=last)
                .order_by("id")
                .values_list(*_ROW_FIELDS)[:room]
            )
            rows += found
            if len(found) == room and found[-1][0] < last:
                left.append([found[-1][0] + 1, last])
        if _catalog_team(warehouse, rows, result=result):
            warehouse.catalog_backlog = left
            TeamWarehouse.objects.filter(pk=warehouse.pk).update(catalog_backlog=left)
            counted |= {row[0] for row in rows}
            result.events += len(rows)
    return counted


def _update_events(team_id: int, tally: _Tally) -> tuple[dict[tuple[str, str], CatalogEvent], bool]:
    """Add the tally to the team's catalogued names and catalogue its new names while the catalog has room; the
    others are counted as Other and leave the tally. Returns the tally's names with their rows, and whether a
    name was added."""
    names = {name for _, name in tally.events}
    existing = {(e.type, e.name): e for e in CatalogEvent.objects.filter(team_id=team_id, name__in=names)}
    for key, event in existing.items():
        counted = tally.events.get(key)
        if counted is not None:
            event.count += counted.count
            event.first_seen_at = min(event.first_seen_at, counted.first_seen)
            event.last_seen_at = max(event.last_seen_at, counted.last_seen)
    CatalogEvent.objects.bulk_update(
        [e for key, e in existing.items() if key in tally.events], ["count", "first_seen_at", "last_seen_at"]
    )
    room: int | None = None  # names the catalog still takes, counted when a new name first asks
    taken_tables: set[str] | None = None
    new, others = {}, []
    # Names are given in the order events were first stored, so the same history always gives the same names.
    for key, counted in sorted(tally.events.items(), key=lambda item: item[1].first_id):
        if key in existing:
            continue
        if room is None:
            room = MAX_CATALOG_EVENTS - CatalogEvent.objects.filter(team_id=team_id).count()
        if room <= 0:
            others.append(key)
            continue
        room -= 1
        event_type, name = key
        if event_type == EventType.TRACK:
            if taken_tables is None:
                taken_tables = set(
                    CatalogEvent.objects.filter(team_id=team_id, type=EventType.TRACK)
                    .exclude(table_name="")
                    .values_list("table_name", flat=True)
                )
            table_name = table_name_for(name, taken=taken_tables)
        else:
            table_name = TYPE_VIEWS[event_type]
        new[key] = CatalogEvent(
            team_id=team_id,
            type=event_type,
            name=name,
            table_name=table_name,
            count=counted.count,
            first_seen_at=counted.first_seen,
            last_seen_at=counted.last_seen,
        )
    # One INSERT, in the order above (ids follow it), so a burst of new names stays cheap; see
    # docs/performance.md#catalog-caps.
    CatalogEvent.objects.bulk_create(new.values(), batch_size=1000)
    existing.update(new)
    # Names with no room leave the tally: their properties are not catalogued and their volume is Other's.
    _count_as_other(team_id, [(None, _OtherTally.of(tally.events.pop(key), [key[1]])) for key in others])
    return existing, bool(new)


@dataclass
class _OtherTally:
    """What one sync adds to an "Other" row: how many events (or values), and which names (or paths)."""

    count: int
    first_seen: datetime
    last_seen: datetime
    values: list[str]

    @classmethod
    def of(cls, counted: _EventTally, values: list[str], count: int | None = None) -> "_OtherTally":
        return cls(counted.count if count is None else count, counted.first_seen, counted.last_seen, values)

    def add(self, other: "_OtherTally") -> None:
        self.count += other.count
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.values += other.values


def _count_as_other(team_id: int, tallies: Iterable[tuple[int | None, _OtherTally]]) -> None:
    """Add to the team's "Other" rows, keyed None for its other names and a catalog event's id for that event's
    other properties."""
    merged: dict[int | None, _OtherTally] = {}
    for key, counted in tallies:
        if key in merged:
            merged[key].add(counted)
        else:
            merged[key] = counted
    if not merged:
        return
    event_ids = [event_id for event_id in merged if event_id is not None]
    rows = CatalogOther.objects.filter(team_id=team_id).filter(
        Q(catalog_event__isnull=True) | Q(catalog_event_id__in=event_ids)
    )
    existing = {row.catalog_event_id: row for row in rows}
    created = []
    for key, counted in merged.items():
        row = existing.get(key)
        if row is None:
            row = CatalogOther(
                team_id=team_id,
                catalog_event_id=key,
                first_seen_at=counted.first_seen,
                last_seen_at=counted.last_seen,
                distinct_sketch=empty_sketch(),
            )
            created.append(row)
        row.count += counted.count
        row.first_seen_at = min(row.first_seen_at, counted.first_seen)
        row.last_seen_at = max(row.last_seen_at, counted.last_seen)
        row.distinct_sketch = sketch_add(row.distinct_sketch, counted.values)
    CatalogOther.objects.bulk_update(
        [row for key, row in existing.items() if key in merged],
        ["count", "first_seen_at", "last_seen_at", "distinct_sketch"],
        batch_size=500,
    )
    CatalogOther.objects.bulk_create(created, batch_size=500)


@dataclass
class _ViewColumns:
    """The property columns of one view: which path has which column, and which names are taken."""

    by_digest: dict[str, str]
    taken: set[str]


def _view_columns(event: CatalogEvent, cache: dict) -> _ViewColumns:
    # A track event has its own view; the events of other types share their type's view (and its columns).
    key = event.pk if event.type == EventType.TRACK else event.type
    if key not in cache:
        props = CatalogProperty.objects.filter(team_id=event.team_id).exclude(column_name="")
        if event.type == EventType.TRACK:
            props = props.filter(catalog_event=event)
        else:
            props = props.filter(catalog_event__type=event.type)
        by_digest = dict(props.values_list("path_digest", "column_name"))
        cache[key] = _ViewColumns(by_digest, set(by_digest.values()))
    return cache[key]


def _update_properties(team_id: int, tally: _Tally, catalog_events: dict[tuple[str, str], CatalogEvent]) -> bool:
    """Add the tally's properties to the catalog, giving new ones their column while the name has room; the
    others are counted as Other. Returns whether a view gained a column or a column changed type."""
    event_ids = [catalog_events[key].pk for key in tally.events]
    existing: dict[tuple[int, str], CatalogProperty] = {}
    for start in range(0, len(event_ids), 500):  # at most MAX_CATALOG_PROPERTIES properties per event
        for stored in CatalogProperty.objects.filter(catalog_event_id__in=event_ids[start : start + 500]):
            existing[(stored.catalog_event_id, stored.path_digest)] = stored
    per_event = Counter(event_id for event_id, _ in existing)
    updated: list[CatalogProperty] = []
    created: list[CatalogProperty] = []
    others: list[tuple[int | None, _OtherTally]] = []
    views: dict = {}
    columns_changed = False
    for key, counted in sorted(tally.events.items(), key=lambda item: item[1].first_id):
        event = catalog_events[key]
        if event.type == EventType.TRACK and not per_event[event.pk]:
            views[event.pk] = _ViewColumns({}, set())  # a name's own view, with no column yet
        for path, counts in counted.properties.items():
            digest = path_digest(path)
            prop = existing.get((event.pk, digest))
            if prop is not None:
                before = prop.inferred_type
                prop.count += counts.count
                prop.numeric_count += counts.numeric
                prop.boolean_count += counts.boolean
                prop.timestamp_count += counts.timestamp
                prop.text_count += counts.text
                updated.append(prop)
                if prop.inferred_type != before and prop.column_name:
                    columns_changed = True
                continue
            if per_event[event.pk] >= MAX_CATALOG_PROPERTIES:
                others.append((event.pk, _OtherTally.of(counted, [path_key(path)], counts.count)))
                continue
            if event.type == EventType.ALIAS or (event.type == EventType.TRACK and not event.table_name):
                column = ""  # no view holds these properties
            else:
                view = _view_columns(event, views)
                column = view.by_digest.get(digest) or column_name_for(path, event_type=event.type, taken=view.taken)
                if column:
                    view.by_digest[digest] = column
            prop = CatalogProperty(
                team_id=team_id,
                catalog_event=event,
                path=list(path),
                path_digest=digest,
                column_name=column,
                count=counts.count,
                numeric_count=counts.numeric,
                boolean_count=counts.boolean,
                timestamp_count=counts.timestamp,
                text_count=counts.text,
            )
            created.append(prop)
            existing[(event.pk, digest)] = prop
            per_event[event.pk] += 1
            if column:
                columns_changed = True
    CatalogProperty.objects.bulk_update(
        updated, ["count", "numeric_count", "boolean_count", "timestamp_count", "text_count"], batch_size=1000
    )
    CatalogProperty.objects.bulk_create(created, batch_size=1000)
    _count_as_other(team_id, others)
    return columns_changed


def _update_volume(team_id: int, tally: _Tally) -> None:
    # A name counted as Other (under every type it came with) is counted under Other's blank name here too.
    catalogued = {name for _, name in tally.events}
    hours: dict[tuple[str, datetime], int] = {}
    days: dict[tuple[str, datetime], int] = {}
    for (name, hour), count in tally.volume.items():
        name = name if name in catalogued else EventVolume.OTHER_NAMES
        hours[(name, hour)] = hours.get((name, hour), 0) + count
        day = (name, hour.replace(hour=0))
        days[day] = days.get(day, 0) + count
    _add_volume(team_id, EventVolume, "hour", hours)
    _add_volume(team_id, DailyEventVolume, "day", days)


_Volume = TypeVar("_Volume", EventVolume, DailyEventVolume)


def _add_volume(team_id: int, model: type[_Volume], bucket: str, counts: dict[tuple[str, datetime], int]) -> None:
    """Add {(name, start of the bucket): count} to the team's rows of an hourly or daily volume table."""
    names = {name for name, _ in counts}
    starts = {start for _, start in counts}
    rows = model.objects.filter(team_id=team_id, event__in=names, **{f"{bucket}__in": starts})
    existing = {(row.event, getattr(row, bucket)): row for row in rows}
    updated: list[_Volume] = []
    created: list[_Volume] = []
    for key, count in counts.items():
        row = existing.get(key)
        if row is None:
            created.append(model(team_id=team_id, event=key[0], count=count, **{bucket: key[1]}))
        else:
            row.count += count
            updated.append(row)
    model.objects.bulk_update(updated, ["count"], batch_size=1000)
    model.objects.bulk_create(created, batch_size=1000)
