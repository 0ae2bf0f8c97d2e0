"""`python manage.py warehouse_credentials --team <slug>`: create (or rotate) a team's read-only login and print
its postgres:// URL, for a BI tool. The URL goes to stdout alone, so it can be piped; notes go to stderr."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Team
from events.warehouse import WarehouseUnavailable
from events.warehouse_credentials import other_databases_open_to, warehouse_credentials_rotate, warehouse_role_name


class Command(BaseCommand):
    help = "Create or rotate a team's read-only warehouse login and print its postgres:// URL."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, metavar="SLUG", help="The team's slug.")

    def handle(self, *args, team: str, **options):
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
