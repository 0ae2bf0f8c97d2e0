"""The refused-events log names each refusal's token and counts repeated refusals (a burst) in one row."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# Rows stored before this release were each one refusal; their token is the team's token with that hint, when
# only one has it (a hint shows 4 characters, so two tokens of a team may share one).
FILL_IN = """
UPDATE events_rejectedevent SET last_received_at = received_at;
UPDATE events_rejectedevent AS refusal SET token_id = token.id
FROM events_apitoken AS token
WHERE token.team_id = refusal.team_id AND token.hint = refusal.token_hint
  AND (SELECT count(*) FROM events_apitoken AS other
       WHERE other.team_id = refusal.team_id AND other.hint = refusal.token_hint) = 1;
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0011_daily_event_volume_for_the_30_day_chart")]

    operations = [
        migrations.AlterModelOptions(name="rejectedevent", options={"ordering": ["-last_received_at", "-id"]}),
        migrations.AddField(
            model_name="rejectedevent",
            name="count",
            field=models.PositiveBigIntegerField(default=1, help_text="Refusals counted in this row."),
        ),
        migrations.AddField(
            model_name="rejectedevent",
            name="last_received_at",
            field=models.DateTimeField(default=django.utils.timezone.now, help_text="The latest refusal counted here."),
        ),
        migrations.AddField(
            model_name="rejectedevent",
            name="token",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="events.apitoken",
            ),
        ),
        migrations.RunSQL(FILL_IN, migrations.RunSQL.noop, elidable=True),
    ]
