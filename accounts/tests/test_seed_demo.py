from datetime import UTC, datetime, timedelta

import time_machine
from django.core.management import call_command

from accounts.models import Membership, Role, Team, User
from events.demo import DEMO_EVENTS, EXAMPLE_EVENT, EXAMPLE_SENT_AGO
from events.models import AuditEntry, Event

SEEDED_AT = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def test_seed_demo_twice_leaves_one_copy_of_everything(db, capsys):
    call_command("seed_demo")
    call_command("seed_demo", password="another-demo-pass")

    assert set(Team.objects.values_list("slug", "events_api_enabled")) == {("acme", True), ("globex", False)}
    assert User.objects.count() == 4
    assert Membership.objects.count() == 3
    assert Membership.objects.get(user__email="owner@acme.test").role == Role.OWNER
    assert User.objects.get(email="admin@canvas.test").is_staff
    assert User.objects.get(email="member@acme.test").check_password("another-demo-pass")
    # Enabling happened once, and was recorded once.
    assert AuditEntry.objects.filter(team__slug="acme").count() == 1
    assert "owner@acme.test" in capsys.readouterr().out
    # Acme's Events page has something to show, and running again adds nothing.
    assert Event.objects.filter(team__slug="acme").count() == DEMO_EVENTS + 1
    assert not Event.objects.filter(team__slug="globex").exists()


@time_machine.travel(SEEDED_AT, tick=False)
def test_seed_demo_dates_every_event_in_the_two_days_before_it_ran(db):
    call_command("seed_demo")

    events = Event.objects.filter(team__slug="acme")
    assert events.filter(timestamp__lt=SEEDED_AT - timedelta(days=2)).count() == 0
    assert events.filter(timestamp__gt=SEEDED_AT).count() == 0
    # The documentation's example arrived minutes ago, stamped with the time it arrived, not 2012.
    example = events.get(event=EXAMPLE_EVENT["event"], properties=EXAMPLE_EVENT["properties"])
    assert example.timestamp == example.received_at == SEEDED_AT - EXAMPLE_SENT_AGO
