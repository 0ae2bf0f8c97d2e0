"""Catch events stored with ids the catalog has already passed (events.models.CatalogBackfill).

A statement-level AFTER INSERT trigger reads the statement's new rows once (a transition table): the rows at
or below the catalog's watermark are queued for the sync, and an explicit id above the sequence moves the
sequence past it. One cheap statement per INSERT or COPY, none per row (docs/performance.md). Statement
triggers with transition tables are allowed on a partitioned table's parent, and fire for rows written
through it (not for rows written into a partition directly).
"""

import django.db.models.functions.datetime
from django.db import migrations, models

FORWARD = [
    """
    CREATE FUNCTION events_event_note_backfill() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        lowest bigint;
        highest bigint;
        watermark bigint;
    BEGIN
        SELECT min(id), max(id) INTO lowest, highest FROM new_events;
        IF lowest IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT last_event_id INTO watermark FROM events_catalogsyncstate WHERE id = 1;
        IF lowest <= coalesce(watermark, 0) THEN
            INSERT INTO events_backfill (team_id, event_id)
            SELECT team_id, id FROM new_events WHERE id <= watermark;
        END IF;
        IF highest > coalesce(pg_sequence_last_value('events_event_id_seq'::regclass), 0) THEN
            -- Explicit ids above the sequence: move it past them (two such inserts take turns, so it never
            -- moves back).
            PERFORM pg_advisory_xact_lock(hashtext('events_event_id_seq'));
            PERFORM setval('events_event_id_seq'::regclass,
                           greatest(highest, coalesce(pg_sequence_last_value('events_event_id_seq'::regclass), 0)));
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER events_event_note_backfill AFTER INSERT ON events_event
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION events_event_note_backfill()
    """,
]
BACKWARD = [
    "DROP TRIGGER events_event_note_backfill ON events_event",
    "DROP FUNCTION events_event_note_backfill()",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("events", "0015_event_time_index")]

    operations = [
        migrations.CreateModel(
            name="CatalogBackfill",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("team_id", models.BigIntegerField()),
                ("event_id", models.BigIntegerField()),
                ("noted_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={"db_table": "events_backfill"},
        ),
        migrations.RunPython(_run(FORWARD), _run(BACKWARD)),
    ]
