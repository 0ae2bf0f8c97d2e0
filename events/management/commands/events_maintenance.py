"""`python manage.py events_maintenance`: one pass of the events table's maintenance (events.retention): partitions
ahead, each team's retention, old partitions dropped, expired messageId claims deleted. `sync_warehouse --watch` runs
the same every hour; run this from cron where it does not run."""

from django.core.management.base import BaseCommand

from events.retention import events_maintain


class Command(BaseCommand):
    help = "Create partitions ahead, apply each team's retention, and expire messageId claims past the dedupe window."

    def handle(self, *args, **options):
        result = events_maintain()
        retention = result.retention
        self.stdout.write(
            f"Partitions created: {', '.join(result.partitions_created) or 'none'}. "
            f"Dropped: {', '.join(retention.partitions_dropped) or 'none'}. "
            f"Events deleted by retention: {retention.events_deleted} ({retention.teams} teams with a retention). "
            f"Expired messageId claims: {result.message_ids_expired}."
        )
