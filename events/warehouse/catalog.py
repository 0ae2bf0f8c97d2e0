"""The catalog: per team, every event name and property seen, with counts and inferred types, and the hourly
volume behind the Events page's chart.

Computed incrementally, off the request path: `catalog_sync` takes the events stored since the last sync (by
id) a chunk at a time, one REPEATABLE READ transaction per chunk, and describes each team's share as an
EventSelection. PostgreSQL adds the selection up (aggregate queries: names, property paths with their value
types by `value_type_sql`, hourly volume); Python merges only those totals into the catalog tables. Ingest
writes nothing but the event row, so there is no per-event write to a shared row anywhere.

Why a list of gaps next to the watermark: ids are handed out by a sequence when a row is inserted, but rows
become visible when their transaction commits, and concurrent transactions (group commits of many events)
commit in any order. A sync can therefore see id 105 while 104 is still in flight. Each id the sync passes
without finding it goes into `open_gaps`; later syncs look for those ids again and count them when they
appear. Ids that never appear (a duplicate messageId still takes an id; a rolled-back insert too) are let go
after GAP_TTL, far longer than any insert transaction runs. Rows stored later still with an id the sync has
passed (a backfill with explicit ids, an insert slower than GAP_TTL) are queued by a trigger on events_event
(events.models.CatalogBackfill) and counted from that queue.

One team's data can never stop the others: each team's rows are counted in a savepoint of its own. When a
team's fail, the watermark still moves on; that team's ids wait in its `catalog_backlog` (ranges of ids),
every later row of it joins them, and each sync retries them first. Its error, and since when, are on its
TeamWarehouse (Django admin, /metrics).

The rule a newcomer must know: each stored event is counted exactly once, whatever order transactions commit
in, whatever id it was stored with, and however often the sync runs or fails; every step of a team's chunk
reads the same EventSelection in the same snapshot, in `_catalog_team`; and a team's catalog holds at most
MAX_CATALOG_EVENTS names and MAX_CATALOG_PROPERTIES properties per name, the rest counted in its "Other" rows.
"""

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from psycopg import sql

from accounts.models import Team
from events.models import (
    CatalogBackfill,
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
from events.warehouse.column_types import TypeCounts, value_type_sql
from events.warehouse.distinct_count import empty_sketch, sketch_add
from events.warehouse.naming import column_name_for, path_digest, path_key, table_name_for, warehouse_for_team
from events.warehouse.selection import EventSelection
from events.warehouse.sql_text import sql_text
from events.warehouse.tables import tables_fill
from events.warehouse.view_definitions import MAX_COLUMNS_PER_VIEW, MAX_EVENT_VIEWS, TYPE_VIEWS

# Past these, a name or property is not catalogued at all, only counted in its "Other" row: a tenant making up
# names must not grow the catalog, or the Events page that lists it, without end.
MAX_CATALOG_EVENTS = 2 * MAX_EVENT_VIEWS  # per team, every type; room for views and for non-track names
MAX_CATALOG_PROPERTIES = MAX_COLUMNS_PER_VIEW  # per event name
CHUNK_SIZE = 50_000  # ids per transaction: the counting is set-based, so a chunk costs its rows, not round trips
GAP_TTL = timedelta(minutes=10)
MAX_OPEN_GAPS = 20_000
# The warehouse's live part reads from the oldest gap noticed this recently: an id drawn for an insert is used
# within seconds (events.ingest.storage.RESERVE_SECONDS) or never, and the older gaps (ids never used: a
# duplicate, a reserve let go) would otherwise make every live read scan minutes of ingest.
LIVE_GAP_SECONDS = 60

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
    """One team's events of one selection, added up by PostgreSQL (`_tally_of`)."""

    events: dict[tuple[str, str], _EventTally] = field(default_factory=dict)  # (type, name)
    volume: dict[tuple[str, datetime], int] = field(default_factory=dict)  # (name, hour)

    @property
    def total(self) -> int:
        return sum(counted.count for counted in self.events.values())


# Per (type, name): how many, the first id, first and last received; per (name, hour of timestamp): how many.
# One pass over the selection for both (GROUPING SETS).
_EVENTS_AND_VOLUME = """
SELECT GROUPING(e.type), e.type, e.event, count(*), min(e.id), min(e.received_at), max(e.received_at),
       date_trunc('hour', e.timestamp, 'UTC')
FROM events_event e WHERE {selection}
GROUP BY GROUPING SETS ((e.type, e.event), (e.event, date_trunc('hour', e.timestamp, 'UTC')))
"""

# Per (type, name, property path, type of value): how many, and the first id. Nested objects are walked as
# `flatten` walks them (objects recurse, everything else is a leaf; nulls count as absent). Properties are one or
# two levels deep almost always: one pass reads both levels (jsonb_each of each object at the first level) and
# marks the objects it finds at the second as OBJECT; only then does _DEEPER, a recursive query, walk them.
# OFFSET 0 keeps each value's text computed once, not once per test of value_type_sql.
OBJECT = "object"
_PROPERTIES = """
SELECT type, event, path, CASE WHEN json_type = 'object' THEN {object} ELSE {kind} END, count(*), min(id) FROM (
    SELECT e.type, e.event, e.id,
           CASE WHEN q.key IS NULL THEN ARRAY[p.key] ELSE ARRAY[p.key, q.key] END AS path,
           jsonb_typeof(coalesce(q.value, p.value)) AS json_type, coalesce(q.value, p.value) #>> '{{}}' AS text
    FROM events_event e
    CROSS JOIN LATERAL jsonb_each(e.properties) p
    LEFT JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(p.value) = 'object' THEN p.value END) q ON true
    WHERE {selection} AND jsonb_typeof(e.properties) = 'object'
    OFFSET 0
) leaf
WHERE json_type <> 'null' AND NOT (json_type = 'object' AND cardinality(path) = 1)
GROUP BY type, event, path, 4
"""
_DEEPER = """
WITH RECURSIVE deeper (type, event, id, path, value) AS (
    SELECT e.type, e.event, e.id, ARRAY[p.key, q.key], q.value
    FROM events_event e CROSS JOIN LATERAL jsonb_each(e.properties) p CROSS JOIN LATERAL jsonb_each(p.value) q
    WHERE {selection} AND jsonb_typeof(e.properties) = 'object' AND jsonb_typeof(p.value) = 'object'
      AND jsonb_typeof(q.value) = 'object'
  UNION ALL
    SELECT d.type, d.event, d.id, d.path || r.key, r.value
    FROM deeper d CROSS JOIN LATERAL jsonb_each(d.value) r
    WHERE jsonb_typeof(d.value) = 'object'
)
SELECT type, event, path, {kind}, count(*), min(id) FROM (
    SELECT type, event, id, path, jsonb_typeof(value) AS json_type, value #>> '{{}}' AS text
    FROM deeper WHERE cardinality(path) > 2 AND jsonb_typeof(value) NOT IN ('object', 'null')
    OFFSET 0
) leaf
GROUP BY type, event, path, 4
"""


def _tally_of(selection: EventSelection) -> _Tally:
    """Add up the selected events in two aggregate queries (three with objects nested three deep): only the
    totals come back to Python."""
    tally = _Tally()
    condition = selection.condition("e")
    with connection.cursor() as cursor:
        cursor.execute(sql_text(sql.SQL(_EVENTS_AND_VOLUME).format(selection=condition)))
        for by_hour, event_type, name, count, first_id, first_seen, last_seen, hour in cursor.fetchall():
            if by_hour:
                tally.volume[(name, hour)] = count
            else:
                tally.events[(event_type, name)] = _EventTally(first_id, first_seen, last_seen, count)
        kind = value_type_sql(sql.SQL("json_type"), sql.SQL("text"))
        cursor.execute(
            sql_text(sql.SQL(_PROPERTIES).format(selection=condition, kind=kind, object=sql.Literal(OBJECT)))
        )
        rows = cursor.fetchall()
        if any(row[3] == OBJECT for row in rows):
            cursor.execute(sql_text(sql.SQL(_DEEPER).format(selection=condition, kind=kind)))
            rows += cursor.fetchall()
        # Paths in the order they were first stored (then by path), so the same history gives the same columns.
        first_ids: dict[tuple, int] = {}
        for event_type, name, path, value_kind, count, first_id in rows:
            if value_kind == OBJECT:
                continue
            key = (event_type, name, tuple(path))
            first_ids[key] = min(first_id, first_ids.get(key, first_id))
            tally.events[(event_type, name)].properties.setdefault(key[2], TypeCounts()).add_values(value_kind, count)
        for (event_type, name), counted in tally.events.items():
            counted.properties = dict(
                sorted(counted.properties.items(), key=lambda item: (first_ids[(event_type, name, item[0])], item[0]))
            )
    return tally


# Held (a session lock, so before the chunk's snapshot is taken) while a sync handles a chunk: syncs in several
# processes take turns, and a REPEATABLE READ chunk never meets a serialization error.
SYNC_LOCK_KEY = 0x63617461  # "cata"


@contextmanager
def _sync_lock() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [SYNC_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SYNC_LOCK_KEY])


@contextmanager
def _chunk_transaction() -> Iterator[None]:
    """One chunk: the sync lock, then a REPEATABLE READ transaction, so every step of every team (the catalog's
    counts, the typed tables) reads the same rows. Inside a caller's transaction (tests) it is a savepoint of it."""
    with _sync_lock(), transaction.atomic():
        if not connection.get_autocommit() and len(connection.atomic_blocks) == 1:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def catalog_sync(*, chunk_size: int = CHUNK_SIZE, gap_ttl: timedelta = GAP_TTL) -> CatalogSyncResult:
    """Add every event stored since the last sync to the catalog. Safe to run from several processes at once
    (they take turns on the sync lock) and to repeat: each event is counted once.

    Each team is catalogued in a savepoint of its own. A team that fails holds back only itself: the
    watermark moves on, its events wait in its backlog (retried first on every sync), and its error is
    recorded on its TeamWarehouse for staff and /metrics.
    """
    result = CatalogSyncResult()
    CatalogSyncState.objects.get_or_create(pk=1)
    first_chunk = True
    while True:
        with _chunk_transaction():
            state = CatalogSyncState.objects.get(pk=1)
            now = time.time()
            gaps = [gap for gap in state.open_gaps if now - gap[1] < gap_ttl.total_seconds()]
            ceiling = max(_highest_allocated_id(), state.last_event_id)
            upper = min(state.last_event_id + chunk_size, ceiling)
            passed = (state.last_event_id + 1, upper)
            # Events stored with ids already passed: gaps that turned up, and backfills the trigger queued
            # (often the same events: a late insert is both). Each is counted once, under its team.
            late = _take_backfills(chunk_size) + (_stored_ids([gap[0] for gap in gaps]) if first_chunk else [])
            found = {event_id for _, event_id in late}
            if first_chunk:
                # A backlog retry counts the late events in its ranges: they must not be counted again.
                retried = _retry_backlogs(chunk_size=chunk_size, result=result)
                late = [(team, i) for team, i in late if not (team in retried and retried[team].covers(i))]
            _forget_backfills(found)
            found_late: dict[int, set[int]] = {}
            for team_id, event_id in late:
                found_late.setdefault(team_id, set()).add(event_id)
            teams, missing = _teams_and_missing_ids(passed)
            gaps = [gap for gap in gaps if gap[0] not in found] + [[i, int(now)] for i in missing]
            selections = [
                EventSelection(
                    team_id,
                    ranges=(passed,) if team_id in teams else (),
                    ids=tuple(sorted(found_late.get(team_id, ()))),
                )
                for team_id in sorted(teams | found_late.keys())
            ]
            _add_to_catalog(selections, result=result)
            state.last_event_id = upper
            state.open_gaps = gaps[-MAX_OPEN_GAPS:]
            in_flight = [gap[0] for gap in state.open_gaps if now - gap[1] < LIVE_GAP_SECONDS]
            state.live_from_id = min([*in_flight, upper + 1])
            state.synced_at = timezone.now()
            state.save()
        first_chunk = False
        if upper >= ceiling and not _backfills_waiting():
            return result


@dataclass(frozen=True)
class CatalogLag:
    """How far the catalog is behind the events table, cheap to read (Django admin, /metrics)."""

    events: int  # ids handed out past the watermark + backfills queued + ids in failing teams' backlogs
    seconds: float  # age of the oldest event stored and not catalogued yet; 0 when caught up
    open_gaps: int  # ids passed and not stored (yet): inserts in flight, or ids that will never appear


def catalog_lag() -> CatalogLag:
    state = CatalogSyncState.objects.filter(pk=1).first() or CatalogSyncState(pk=1)
    waiting = sum(last - first + 1 for backlog in TeamWarehouse.objects.exclude(catalog_backlog=[]).values_list(
        "catalog_backlog", flat=True) for first, last in backlog)  # fmt: skip
    with connection.cursor() as cursor:
        # The next chunk's range stands for "the oldest event past the watermark": ids follow time closely, and
        # the BRIN index on id finds that range without a scan.
        cursor.execute(
            "SELECT (SELECT count(*) FROM events_backfill),"
            " least((SELECT min(noted_at) FROM events_backfill),"
            " (SELECT min(received_at) FROM events_event WHERE id > %(mark)s AND id <= %(mark)s + %(chunk)s))",
            {"mark": state.last_event_id, "chunk": CHUNK_SIZE},
        )
        backfills, oldest = cursor.fetchone()
    behind = max(_highest_allocated_id() - state.last_event_id, 0) + backfills + waiting
    seconds = max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0
    return CatalogLag(events=behind, seconds=seconds, open_gaps=len(state.open_gaps))


def catalog_reset_counts() -> None:
    """Set every count of the catalog to zero and its watermark back to the start, so that the next catalog_sync
    counts every stored event again under today's rules (`sync_warehouse --recount`: say, zip codes typed
    numeric by an older rule). Every name, table and column stays: a BI tool's tables keep their names. The
    volume chart is empty until that sync has caught up."""
    with _sync_lock(), transaction.atomic():
        CatalogEvent.objects.update(count=0)
        CatalogProperty.objects.update(count=0, numeric_count=0, boolean_count=0, timestamp_count=0, text_count=0)
        CatalogOther.objects.update(count=0, distinct_sketch=empty_sketch())
        EventVolume.objects.all().delete()
        DailyEventVolume.objects.all().delete()
        CatalogBackfill.objects.all().delete()
        # Every team's views are checked against the recounted types: a column whose type the counts changed
        # back and forth is rebuilt all the same.
        TeamWarehouse.objects.update(catalog_backlog=[], catalog_version=F("catalog_version") + 1)
        CatalogSyncState.objects.update_or_create(pk=1, defaults={"last_event_id": 0, "open_gaps": []})


def _take_backfills(limit: int) -> list[tuple[int, int]]:
    """(team, id) of up to `limit` of the events the trigger queued, oldest first, taken off the queue."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM events_backfill WHERE id IN (SELECT id FROM events_backfill ORDER BY id LIMIT %s)"
            " RETURNING team_id, event_id",
            [limit],
        )
        return [(team_id, event_id) for team_id, event_id in cursor.fetchall()]


def _forget_backfills(event_ids: set[int]) -> None:
    """Take off the queue the events counted another way (a gap that turned up, a backlog's range), so they are
    not counted again from it later."""
    if event_ids:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM events_backfill WHERE event_id = ANY(%s::bigint[])", [sorted(event_ids)])


def _backfills_waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM events_backfill)")
        return cursor.fetchone()[0]


def _stored_ids(event_ids: list[int]) -> list[tuple[int, int]]:
    """(team, id) of those of the ids that are stored."""
    if not event_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT team_id, id FROM events_event WHERE id = ANY(%s::bigint[])", [event_ids])
        return [(team_id, event_id) for team_id, event_id in cursor.fetchall()]


def _teams_and_missing_ids(passed: tuple[int, int]) -> tuple[set[int], list[int]]:
    """The teams with events in the range of ids, and the ids of the range that no stored event holds (yet)."""
    first, last = passed
    if first > last:
        return set(), []
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH chunk AS MATERIALIZED (SELECT team_id, id FROM events_event WHERE id BETWEEN %(first)s AND %(last)s)"
            " SELECT DISTINCT team_id, NULL::bigint FROM chunk"
            " UNION ALL SELECT NULL, g FROM generate_series(%(first)s::bigint, %(last)s::bigint) g"
            " WHERE NOT EXISTS (SELECT FROM chunk WHERE chunk.id = g)",
            {"first": first, "last": last},
        )
        rows = cursor.fetchall()
    return {team for team, _ in rows if team is not None}, sorted(i for team, i in rows if team is None)


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


def _add_to_catalog(selections: list[EventSelection], *, result: CatalogSyncResult) -> None:
    """Add each team's selected events to the catalog and the volume, each team on its own. A team with a
    backlog, or that cannot take its events, keeps them in its backlog."""
    by_team = {selection.team_id: selection for selection in selections}
    for team in Team.objects.filter(pk__in=by_team):
        warehouse_for_team(team=team)
    for warehouse in TeamWarehouse.objects.filter(team_id__in=by_team).order_by("team_id"):
        selection = by_team[warehouse.team_id]
        if warehouse.catalog_backlog:
            _defer(warehouse, selection)  # in id order: behind the events already waiting
        elif not _catalog_team(warehouse, selection, result=result):
            _defer(warehouse, selection)


def _catalog_team(warehouse: TeamWarehouse, selection: EventSelection, *, result: CatalogSyncResult) -> bool:
    """Handle one team's selected events in a savepoint: the one place a team's chunk is handled. False (and
    the error recorded) if the team's catalog refused them: nothing of them is counted then."""
    team_id = warehouse.team_id
    try:
        with transaction.atomic():
            tally = _tally_of(selection)
            events = tally.total
            catalog_events, names_added = _update_events(team_id, tally)
            columns_changed = _update_properties(team_id, tally, catalog_events)
            _update_volume(team_id, tally)
            changed = names_added or columns_changed
            if changed:
                TeamWarehouse.objects.filter(pk=warehouse.pk).update(catalog_version=F("catalog_version") + 1)
            # The same events into the team's typed tables, read in this snapshot: what was counted is what is
            # copied.
            tables_fill(warehouse=warehouse, selection=selection)
    except Exception as error:  # whatever one team's data does, the other teams are synced
        logger.exception("Could not catalog the events of %s; they wait in its backlog.", warehouse.schema_name)
        warehouse.record_sync_failure(step=SyncStep.CATALOG, error=error)
        result.teams_failed.add(team_id)
        return False
    warehouse.clear_sync_failure(step=SyncStep.CATALOG)
    result.events += events
    if changed:
        result.teams_changed.add(team_id)
    return True


def _defer(warehouse: TeamWarehouse, selection: EventSelection) -> None:
    """Put a team's selected events in its backlog: the whole range passed, so the team's events still in flight
    there are waited for too, and each gap id found."""
    backlog = warehouse.catalog_backlog
    for first, last in selection.ranges:
        backlog = _with_range(backlog, first, last)
    for event_id in selection.ids:
        if not _covers(backlog, event_id):
            backlog = _with_range(backlog, event_id, event_id)
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


def _retry_backlogs(*, chunk_size: int, result: CatalogSyncResult) -> dict[int, EventSelection]:
    """Try again, for each team with a backlog, to catalog up to chunk_size of its waiting events, oldest
    first. Returns the selections counted, by team."""
    counted: dict[int, EventSelection] = {}
    for warehouse in TeamWarehouse.objects.exclude(catalog_backlog=[]).order_by("team_id"):
        backlog = [(first, last) for first, last in warehouse.catalog_backlog]
        whole = EventSelection(warehouse.team_id, ranges=tuple(backlog))
        with connection.cursor() as cursor:
            # The id of the chunk_size-th waiting event: the retry stops there (the primary key finds it).
            cursor.execute(
                sql_text(
                    sql.SQL("SELECT e.id FROM events_event e WHERE {} ORDER BY e.id OFFSET {} LIMIT 1").format(
                        whole.condition("e"), sql.Literal(chunk_size - 1)
                    )
                )
            )
            row = cursor.fetchone()
        stop = row[0] if row else backlog[-1][1]
        taken = tuple((first, min(last, stop)) for first, last in backlog if first <= stop)
        left = [[max(first, stop + 1), last] for first, last in backlog if last > stop]
        selection = EventSelection(warehouse.team_id, ranges=taken)
        if _catalog_team(warehouse, selection, result=result):
            with connection.cursor() as cursor:  # late events in these ranges, queued too, are counted now
                cursor.execute(
                    sql_text(
                        sql.SQL("DELETE FROM events_backfill b WHERE {}").format(
                            selection.condition("b", id_column="event_id")
                        )
                    )
                )
            warehouse.catalog_backlog = left
            TeamWarehouse.objects.filter(pk=warehouse.pk).update(catalog_backlog=left)
            counted[warehouse.team_id] = selection
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
