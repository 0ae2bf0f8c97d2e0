"""Index a team's events by when they happened, (team_id, timestamp, id), in place of (team_id, event, timestamp).

The Events page filters on `timestamp` and now pages by (timestamp, id), so a time range a month back starts on the
index instead of walking the team's newer events along the primary key; the admin lists events in the same order.
A name filter rides the new index (and BI reads a name's typed table), so the name index goes and ingest keeps
the same number of indexes; (team_id, received_at) stays for retention and a new token's first event. See
docs/performance.md#events-page-time-index.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0014_partition_events_and_claim_message_ids")]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["team", "timestamp", "id"], name="events_event_team_time_idx"),
        ),
        migrations.RemoveIndex(model_name="event", name="events_event_team_name_ts_idx"),
    ]
