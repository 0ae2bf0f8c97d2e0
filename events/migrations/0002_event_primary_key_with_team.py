"""Make team_id part of the events table's primary key on PostgreSQL.

Every unique key then includes team_id, so the table can be distributed by team (Citus) later without a schema
change. Django keeps addressing rows by `id` alone, which the sequence keeps unique; a BRIN index serves
look-ups by id cheaply on this append-only table. SQLite (local `make run`) keeps the plain primary key.
"""

from django.db import migrations

FORWARD = [
    "ALTER TABLE events_event DROP CONSTRAINT events_event_pkey",
    "ALTER TABLE events_event ADD CONSTRAINT events_event_pkey PRIMARY KEY (team_id, id)",
    "CREATE INDEX events_event_id_brin ON events_event USING brin (id)",
]
BACKWARD = [
    "DROP INDEX events_event_id_brin",
    "ALTER TABLE events_event DROP CONSTRAINT events_event_pkey",
    "ALTER TABLE events_event ADD CONSTRAINT events_event_pkey PRIMARY KEY (id)",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
