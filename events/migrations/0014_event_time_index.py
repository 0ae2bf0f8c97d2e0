"""Index a team's events by when they happened, (team_id, timestamp, id), in place of (team_id, received_at).

The Events page filters on `timestamp` and now pages by (timestamp, id), so a time range a month back starts on the
index instead of walking the team's newer events along the primary key; the admin lists events in the same order.
Replacing the received_at index keeps ingest at the same number of indexes. See
docs/performance.md#events-page-time-index.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0013_access_request_and_member_audit")]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["team", "timestamp", "id"], name="events_event_team_time_idx"),
        ),
        migrations.RemoveIndex(model_name="event", name="events_event_team_recv_idx"),
    ]
