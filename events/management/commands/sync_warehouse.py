"""`python manage.py sync_warehouse`: bring the catalog and every team's warehouse tables up to date.

In production run it with `--watch` as a long-running process of its own (next to gunicorn): every few
seconds it adds new events to the catalog and copies them into the teams' tables (altering a table when its
catalog changed), so a new event name or property is in the warehouse well within a minute; every
FULL_PASS_SECONDS it also checks every team's relations. Several copies may run; they take turns.
Each pass also holds the teams' read-only logins to their limits (warehouse_logins_enforce), and every
MAINTENANCE_SECONDS (and at start) --watch runs the events table's maintenance (events.retention.events_maintain).

`--recount` counts every stored event again first (after a change of the typing rules), keeping every name.
"""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections, connection

from events.retention import MAINTENANCE_SECONDS, events_maintain
from events.warehouse.catalog import catalog_reset_counts, catalog_sync
from events.warehouse.credentials import warehouse_logins_enforce
from events.warehouse.sync import POSTGRESQL_ONLY, warehouse_sync

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 5.0
# In --watch mode every view is checked against the catalog this often, not only those of changed teams.
FULL_PASS_SECONDS = 600


class Command(BaseCommand):
    help = "Add new events to the catalog and the teams' warehouse tables. --watch keeps doing it."

    def add_arguments(self, parser):
        parser.add_argument("--watch", action="store_true", help="Keep syncing, every --interval seconds.")
        parser.add_argument(
            "--recount",
            action="store_true",
            help="Count every stored event again (after a change of the typing rules); names and columns stay.",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=getattr(settings, "WAREHOUSE_SYNC_INTERVAL", DEFAULT_INTERVAL_SECONDS),
            help="Seconds between syncs with --watch (default: %(default)s).",
        )

    def handle(self, *args, watch: bool, interval: float, recount: bool, **options):
        if recount:
            if connection.vendor != "postgresql":
                raise CommandError(POSTGRESQL_ONLY.format(vendor=connection.display_name))
            catalog_reset_counts()
        if not watch:
            if not self.sync(everything=True, quiet=False):
                raise CommandError("Some teams could not be synced; see the log above and Django admin.")
            return
        last_full_pass = last_maintenance = -float("inf")
        while True:
            if time.monotonic() - last_maintenance >= MAINTENANCE_SECONDS:
                try:
                    events_maintain()
                except DatabaseError:
                    logger.exception("Events maintenance failed; trying again in %s s.", MAINTENANCE_SECONDS)
                    close_old_connections()
                last_maintenance = time.monotonic()
            everything = time.monotonic() - last_full_pass >= FULL_PASS_SECONDS
            try:
                self.sync(everything=everything, quiet=True)
            except DatabaseError:
                logger.exception("Warehouse sync failed; trying again in %s s.", interval)
                close_old_connections()
            else:
                if everything:
                    last_full_pass = time.monotonic()
            time.sleep(interval)

    def sync(self, *, everything: bool, quiet: bool) -> bool:
        """One pass. Returns False if some team's views could not be updated."""
        if connection.vendor != "postgresql":
            if not quiet:
                self.stdout.write(POSTGRESQL_ONLY.format(vendor=connection.display_name))
            return True
        catalog = catalog_sync()
        views = warehouse_sync(everything=everything)
        warehouse_logins_enforce()
        if not quiet or catalog.events or views.relations_changed or catalog.teams_failed or views.failed:
            self.stdout.write(
                f"Catalog: {catalog.events} new events"
                + (f", {len(catalog.teams_failed)} teams failed" if catalog.teams_failed else "")
                + f". Relations: {views.relations_changed} changed in {views.teams} teams checked"
                + (f", {views.failed} failed." if views.failed else ".")
            )
        return not views.failed and not catalog.teams_failed
