from django.core.management import call_command

from accounts.models import Membership, Role, Team, User
from events.models import AuditEntry, Event


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
    assert Event.objects.filter(team__slug="acme").count() == 400
    assert not Event.objects.filter(team__slug="globex").exists()
