"""Move messageId dedupe to events_message_id, then partition events_event by month of received_at (PostgreSQL).

Dedupe first: PostgreSQL requires every unique key of a partitioned table to include the partition key, and a
unique (team_id, message_id, received_at) deduplicates nothing, since a resend has a new received_at. So each
messageId is claimed in events_message_id (primary key (team_id, message_id)) in the transaction that stores its
event (events.ingest.storage), claims of the last EVENTS_DEDUPE_WINDOW_DAYS are copied from the events here, and
events.retention deletes claims older than that window: the table stays bounded however large events_event grows.

The partition key is received_at, not timestamp:
- the server sets it, and it only grows: every insert goes to the current month's partition (one set of hot
  indexes), and no client can place rows in old partitions, or in a month nobody created, by what it sends as
  timestamp (clients send clocks years off, and backfills of last year's events);
- retention is "received longer ago than N days", which dropping a partition does exactly;
- BI filters on timestamp, which is received_at less the client's delay: queries read the warehouse's own
  tables and the (team_id, event, timestamp) index, and a partition key they could prune on is not worth a
  client choosing where rows go.

One partition per calendar month (UTC): 12 a year is few enough that a team's query across all of them plans in
well under a millisecond, and each is small enough that dropping it frees space in one step; days would be hundreds
of partitions (planning cost on every unpruned query), years too coarse for retention. events.partitions keeps
MONTHS_AHEAD months created ahead and a default partition for anything outside them, so ingest never fails for
want of a partition. The app maintains them itself (`manage.py events_maintenance`, and every hour in
`sync_warehouse --watch`) rather than with pg_partman: one thing less to install on every database, CI and
managed PostgreSQL, for about a hundred lines (docs/operations.md, "Partitions and retention").

The primary key becomes (team_id, id, received_at): team_id stays in every unique key, for Citus.

The table is rebuilt: renamed, created again partitioned (or plain, backwards), rows copied, the old one dropped.
Its indexes, foreign keys and triggers are read from the catalog and made again on the new table, so those that
other migrations added survive. Teams' warehouse views read the table, so they are dropped first and the next sync
builds them again. On a large table this copies every row under an exclusive lock: plan the downtime, or copy
ahead with the same statements. SQLite (`make run`) keeps a plain table.
"""

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

OLD = "events_event_old"
PRIMARY_KEY = "events_event_pkey"


def _rebuild_events_table(schema_editor, *, partitioned: bool) -> None:
    from events.partitions import DEFAULT_PARTITION, partitions_ensure
    from events.warehouse.sync import warehouse_drop_views

    warehouse_drop_views()
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, replace(indexdef, ' ON ONLY ', ' ON ') FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = 'events_event' AND indexname <> %s",
            (PRIMARY_KEY,),
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'events_event'::regclass AND contype = 'f'"
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'events_event'::regclass "
            "AND NOT tgisinternal AND tgparentid = 0"
        )
        triggers = cursor.fetchall()
        cursor.execute("SELECT min(received_at) FROM events_event")
        (oldest,) = cursor.fetchone()

        cursor.execute(f"ALTER TABLE events_event RENAME TO {OLD}")
        cursor.execute(f"ALTER SEQUENCE events_event_id_seq RENAME TO {OLD}_id_seq")
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}" ON {OLD}')
        for name, _ in foreign_keys:
            cursor.execute(f'ALTER TABLE {OLD} DROP CONSTRAINT "{name}"')
        cursor.execute(f"ALTER TABLE {OLD} DROP CONSTRAINT {PRIMARY_KEY}")
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')

        partition_by = " PARTITION BY RANGE (received_at)" if partitioned else ""
        cursor.execute(f"CREATE TABLE events_event (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY){partition_by}")
        cursor.execute(f"SELECT setval('events_event_id_seq', last_value, is_called) FROM {OLD}_id_seq")  # noqa: S608
        if partitioned:
            cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF events_event DEFAULT")
            partitions_ensure(now=timezone.now(), since=oldest)
            cursor.execute("SET LOCAL lock_timeout = 0")  # partitions_ensure's, for the rest of the migration
        cursor.execute(f"INSERT INTO events_event SELECT * FROM {OLD}")  # noqa: S608
        # CASCADE: views of a team whose TeamWarehouse row is gone (warehouse_drop_views knows only the others).
        cursor.execute(f"DROP TABLE {OLD} CASCADE")

        key = "team_id, id, received_at" if partitioned else "team_id, id"
        cursor.execute(f"ALTER TABLE events_event ADD CONSTRAINT {PRIMARY_KEY} PRIMARY KEY ({key})")
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE events_event ADD CONSTRAINT "{name}" {definition}')
        for _, definition in triggers:
            cursor.execute(definition)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild_events_table(schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild_events_table(schema_editor, partitioned=False)


def claim_recent_message_ids(apps, schema_editor):
    """The claims of the events received within the dedupe window (the unique index held them until now)."""
    since = timezone.now() - timezone.timedelta(days=settings.EVENTS_DEDUPE_WINDOW_DAYS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_message_id (team_id, message_id, event_id, received_at) "
            "SELECT team_id, message_id, id, received_at FROM events_event "
            "WHERE message_id IS NOT NULL AND received_at >= %s",
            (since,),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0013_access_request_and_member_audit"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventMessageId",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "team_id", "message_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("team_id", models.BigIntegerField()),
                ("message_id", models.CharField(max_length=100)),
                ("event_id", models.BigIntegerField(help_text="The event stored under this messageId.")),
                (
                    "received_at",
                    models.DateTimeField(help_text="When that event was received; the window counts from here."),
                ),
            ],
            options={
                "db_table": "events_message_id",
                "verbose_name": "event messageId",
            },
        ),
        migrations.RunPython(claim_recent_message_ids, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="event",
            name="events_event_team_message_id_unique",
        ),
        migrations.RunPython(partition, unpartition),
    ]
