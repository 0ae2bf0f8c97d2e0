"""Keeping the events table's growth in hand: partitions ahead, each team's retention, the dedupe window.

`events_maintain` runs it all: from `manage.py events_maintenance` (a daily cron job will do), and every
MAINTENANCE_SECONDS from `sync_warehouse --watch`. Each step is a series of short statements, each in a transaction
of its own, so ingest never waits on a long lock and a pass interrupted anywhere is simply finished by the next:

- `partitions_ensure` (events.partitions): this month's partition and MONTHS_AHEAD more exist.
- `events_retention_apply`: each team's events received more than `Team.event_retention_days` ago are deleted, in
  batches of DELETE_BATCH rows through the (team_id, received_at) index; monthly partitions older than the longest
  retention of all teams are dropped whole first (none while a team keeps its events forever).
- `message_ids_expire`: claims older than EVENTS_DEDUPE_WINDOW_DAYS leave events_message_id (EventMessageId), a
  slice of its pages at a time; a messageId resent after that is stored again.

The rule a newcomer must know: an event deleted here must leave the warehouse too; `warehouse_forget_events` is
the one place that does it for a team.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Team
from events.models import EventMessageId, TeamWarehouse
from events.partitions import partitions_drop_before, partitions_ensure
from events.warehouse.tables import tables_forget_before

logger = logging.getLogger(__name__)

DELETE_BATCH = 5000
# Pages of events_message_id one trimming statement reads (8 KB each): a TID range scan, no index on received_at to
# keep up at ingest.
TRIM_PAGES = 2000
MAINTENANCE_SECONDS = 3600


@dataclass
class RetentionResult:
    events_deleted: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    teams: int = 0


@dataclass
class MaintenanceResult:
    partitions_created: list[str]
    retention: RetentionResult
    message_ids_expired: int


def events_maintain(*, now: datetime | None = None) -> MaintenanceResult:
    """One pass of everything above."""
    now = now or timezone.now()
    created = partitions_ensure(now=now)
    retention = events_retention_apply(now=now)
    expired = message_ids_expire(now=now)
    return MaintenanceResult(partitions_created=created, retention=retention, message_ids_expired=expired)


def events_retention_apply(*, now: datetime | None = None) -> RetentionResult:
    """Delete every team's events received longer ago than its retention, and drop the partitions no team needs."""
    now = now or timezone.now()
    result = RetentionResult()
    retentions: dict[int, int | None] = dict(Team.objects.values_list("id", "event_retention_days"))
    finite = [days for days in retentions.values() if days is not None]
    if retentions and len(finite) == len(retentions):  # a team that keeps its events forever keeps every month
        result.partitions_dropped = partitions_drop_before(cutoff=now - timedelta(days=max(finite)))
    for team_id, days in sorted(retentions.items()):
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        result.events_deleted += _delete_team_events_before(team_id=team_id, cutoff=cutoff)
        warehouse_forget_events(team_id=team_id, received_before=cutoff)
        result.teams += 1
    return result


# The received_at of the team's DELETE_BATCH-th oldest event: a batch is everything up to it. Both statements are
# range scans of the (team_id, received_at) index, pruned to the partitions they touch.
_BATCH_END = (
    "SELECT received_at FROM events_event WHERE team_id = %s AND received_at < %s "
    "ORDER BY received_at LIMIT 1 OFFSET %s"
)
_DELETE_BEFORE = "DELETE FROM events_event WHERE team_id = %s AND received_at < %s"


def _delete_team_events_before(*, team_id: int, cutoff: datetime) -> int:
    """Delete the team's events received before `cutoff`, about DELETE_BATCH rows to a transaction."""
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_BATCH_END, (team_id, cutoff, DELETE_BATCH))
            batch_end = cursor.fetchone()
            if batch_end is None:  # the last batch
                cursor.execute(_DELETE_BEFORE, (team_id, cutoff))
            else:  # "<=", so that a batch of rows that share one received_at still moves on
                cursor.execute(_DELETE_BEFORE + " AND received_at <= %s", (team_id, cutoff, batch_end[0]))
            deleted += cursor.rowcount
        if batch_end is None:
            return deleted


def warehouse_forget_events(*, team_id: int, received_before: datetime) -> None:
    """Every event of the team received before `received_before` is gone from events_event: remove them from the
    team's typed warehouse tables too. The catalog's counts and the volume charts are history and stay."""
    warehouse = TeamWarehouse.objects.filter(team_id=team_id).first()
    if warehouse is not None:
        tables_forget_before(warehouse=warehouse, received_before=received_before)


def message_ids_expire(*, now: datetime | None = None) -> int:
    """Delete the claims older than the dedupe window, TRIM_PAGES pages of the table to a statement. Returns how
    many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EVENTS_DEDUPE_WINDOW_DAYS)
    if connection.vendor != "postgresql":
        return EventMessageId.objects.filter(received_at__lt=cutoff).delete()[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size('events_message_id') / current_setting('block_size')::bigint")
        (pages,) = cursor.fetchone()
    expired = 0
    for first in range(0, pages, TRIM_PAGES):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM events_message_id WHERE ctid >= %s::tid AND ctid < %s::tid AND received_at < %s",
                (f"({first},0)", f"({first + TRIM_PAGES},0)", cutoff),
            )
            expired += cursor.rowcount
    return expired
