"""The events table's monthly partitions on PostgreSQL: created ahead of time, dropped once past every team's
retention (events.retention runs both).

events_event is partitioned by range of received_at, one partition per calendar month (UTC), named
events_event_yYYYYmMM, with events_event_default under them for rows outside every month created (a clock set
wrong, a backfill of old data): ingest never fails for want of a partition. Creating a month whose rows already sit
in the default partition moves them first. Partitions are made standalone and then attached, which takes a weaker
lock on the table than CREATE TABLE ... PARTITION OF; dropping one takes a brief exclusive lock, so it waits at
most LOCK_TIMEOUT behind long queries and is tried again on the next pass.

The rule a newcomer must know: received_at is the key because the server sets it, so inserts only ever go to the
current month and no client can scatter rows over old partitions (see migration 0014 and docs/operations.md).
SQLite (`make run`) keeps a plain table; every function here is a no-op there.
"""

import re
from datetime import UTC, datetime

from django.db import OperationalError, connection, transaction

from events.ingest.storage import Cursor

PARENT = "events_event"
DEFAULT_PARTITION = "events_event_default"
# Months created beyond the current one: two months of maintenance may fail before rows go to the default partition.
MONTHS_AHEAD = 2
LOCK_TIMEOUT = "2s"
_NAME = re.compile(r"events_event_y(\d{4})m(\d{2})")


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"events_event_y{start.year:04d}m{start.month:02d}"


def _partition_start(name: str) -> datetime | None:
    match = _NAME.fullmatch(name)
    return datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC) if match else None


def is_partitioned(cursor: Cursor) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", (PARENT,))
    row = cursor.fetchone()
    return bool(row and row[0])


def monthly_partitions(cursor: Cursor) -> dict[datetime, str]:
    """The monthly partitions attached to events_event, by the month they start."""
    cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass", (PARENT,))
    found = {}
    for (name,) in cursor.fetchall():
        start = _partition_start(name)
        if start is not None:
            found[start] = name
    return found


def partitions_ensure(*, now: datetime, since: datetime | None = None) -> list[str]:
    """Create the monthly partitions from `since`'s month (default: `now`'s) to MONTHS_AHEAD months after `now`'s.
    Returns the names created. Each in a transaction of its own."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        existing = monthly_partitions(cursor)
    start, last = month_start(since or now), month_start(now)
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    created = []
    while start <= last:
        if start not in existing:
            _partition_create(start)
            created.append(partition_name(start))
        start = next_month(start)
    return created


def _partition_create(start: datetime) -> None:
    name, end = partition_name(start), next_month(start)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Names and bounds are built from integers and constants only.
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE received_at >= %s AND received_at < %s "  # noqa: S608
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            (start, end),
        )
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", (start, end))


def partitions_drop_before(*, cutoff: datetime) -> list[str]:
    """Drop the monthly partitions whose every row was received before `cutoff`. Returns the names dropped; one
    that waited longer than LOCK_TIMEOUT for its lock is left for the next pass."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        doomed = [name for start, name in sorted(monthly_partitions(cursor).items()) if next_month(start) <= cutoff]
    dropped = []
    for name in doomed:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                # Deferred foreign-key checks of rows inserted earlier in an enclosing transaction would block DROP.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
                cursor.execute(f"DROP TABLE {name}")
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
        else:
            dropped.append(name)
    return dropped
