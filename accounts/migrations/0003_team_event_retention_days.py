"""Give each team an event retention (events.retention). Teams that exist keep their events forever (blank), so
that upgrading deletes nothing; new teams get EVENTS_RETENTION_DAYS."""

import django.core.validators
from django.db import migrations, models

import accounts.models


def _field(default):
    return models.PositiveIntegerField(
        "event retention (days)",
        blank=True,
        default=default,
        help_text="Events received longer ago than this are deleted. Blank: kept forever.",
        null=True,
        validators=[django.core.validators.MinValueValidator(1)],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_invitation"),
    ]

    operations = [
        migrations.AddField(model_name="team", name="event_retention_days", field=_field(None)),
        migrations.AlterField(
            model_name="team",
            name="event_retention_days",
            field=_field(accounts.models.default_event_retention_days),
        ),
    ]
