"""`python manage.py warehouse_credentials --team <slug>`: create (or rotate) a team's read-only login and print
its postgres:// URL, for a BI tool. The URL goes to stdout alone, so it can be piped; notes go to stderr.

`--superuser-sql` prints instead what a superuser must run once in this database before logins can be made
by an app role that is not a superuser (docs/operations.md, "Warehouse logins")."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.models import Team
from events.warehouse.credentials import (
    other_databases_open_to,
    superuser_statements,
    warehouse_credentials_rotate,
    warehouse_role_name,
)
from events.warehouse.sync import WarehouseUnavailable, require_postgresql


class Command(BaseCommand):
    help = "Create or rotate a team's read-only warehouse login and print its postgres:// URL."

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--team", metavar="SLUG", help="The team's slug.")
        what.add_argument(
            "--superuser-sql", action="store_true", help="Print the SQL a superuser must run once, and exit."
        )

    def handle(self, *args, team: str | None, superuser_sql: bool, **options):
        if superuser_sql:
            try:
                require_postgresql()
            except WarehouseUnavailable as error:
                raise CommandError(str(error)) from None
            with connection.cursor() as cursor:
                statements = superuser_statements(cursor)
            for statement in statements:
                self.stdout.write(statement)
            if not statements:
                self.stderr.write("Nothing to do: the app's role may make warehouse logins on its own.")
            return
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f'No team has the slug "{team}".')
        try:
            url = warehouse_credentials_rotate(team=found)
        except WarehouseUnavailable as error:
            raise CommandError(str(error)) from None
        self.stdout.write(url)
        self.stderr.write(
            f"Read-only login for {found.name}. The password is shown only now; running this again replaces it."
        )
        others = other_databases_open_to(role=warehouse_role_name(team=found))
        if others:
            self.stderr.write(
                f"This login may also connect to {', '.join(others)} unless pg_hba.conf refuses it: "
                'see docs/operations.md, "Warehouse logins".'
            )
