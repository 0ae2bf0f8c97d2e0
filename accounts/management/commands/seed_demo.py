from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Role, Team, User
from events.demo import seed_demo_events
from events.tokens.services import events_api_set_enabled

DEFAULT_PASSWORD = "canvas-demo"  # noqa: S105 (public demo password, printed by the command)
TEAMS = [
    # slug, name, Events API enabled, [(email, role)]
    ("acme", "Acme", True, [("owner@acme.test", Role.OWNER), ("member@acme.test", Role.MEMBER)]),
    ("globex", "Globex", False, [("owner@globex.test", Role.OWNER)]),
]
STAFF_EMAIL = "admin@canvas.test"


class Command(BaseCommand):
    help = "Create the demo teams and users. Safe to run again: it brings them back to the demo state."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password for every demo user.")

    @transaction.atomic
    def handle(self, *args, password: str, **options):
        staff = self._user(STAFF_EMAIL, password, is_staff=True, is_superuser=True)
        for slug, name, enabled, members in TEAMS:
            team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": name})
            for email, role in members:
                user = self._user(email, password)
                Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
            events_api_set_enabled(team=team, enabled=enabled, by=staff)
            if enabled:
                stored = seed_demo_events(team=team)
                if stored:
                    self.stdout.write(f"  {stored} demo events over the last two days")
            state = "enabled" if enabled else "not enabled"
            self.stdout.write(f"Team {name} ({slug}), Events API {state}")
            for email, role in members:
                self.stdout.write(f"  {role.label:<7} {email}")
        self.stdout.write(f"Staff (Django admin): {STAFF_EMAIL}")
        self.stdout.write(f"Password for every demo user: {password}")

    def _user(self, email: str, password: str, **flags) -> User:
        user, _ = User.objects.get_or_create(email=email, defaults=flags)
        for flag, value in flags.items():
            setattr(user, flag, value)
        user.set_password(password)
        user.save()
        return user
