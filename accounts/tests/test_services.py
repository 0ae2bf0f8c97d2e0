import pytest
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Membership, Role
from events.models import AuditAction, AuditEntry


def test_the_last_owner_cannot_be_demoted(alice, acme):
    only_owner = Membership.objects.get(user=alice, team=acme)
    with pytest.raises(ValidationError, match="at least one Owner"):
        services.membership_change_role(membership=only_owner, role=Role.MEMBER, by=alice)
    only_owner.refresh_from_db()
    assert only_owner.role == Role.OWNER


def test_the_last_owner_cannot_be_removed(alice, acme):
    with pytest.raises(ValidationError, match="at least one Owner"):
        services.membership_remove(membership=Membership.objects.get(user=alice, team=acme), by=alice)
    assert Membership.objects.filter(user=alice, team=acme).exists()


def test_an_owner_can_step_down_once_another_owner_exists(alice, bob, acme):
    services.membership_change_role(membership=Membership.objects.get(user=bob, team=acme), role=Role.OWNER, by=alice)
    services.membership_change_role(
        membership=Membership.objects.get(user=alice, team=acme), role=Role.MEMBER, by=alice
    )
    assert list(Membership.objects.owners().filter(team=acme).values_list("user__email", flat=True)) == [bob.email]


def test_a_stale_copy_cannot_sneak_past_the_last_owner_rule(alice, bob, acme):
    # Bob was an Owner when the page was loaded, but Alice has demoted him since.
    bob_membership = Membership.objects.get(user=bob, team=acme)
    Membership.objects.filter(pk=bob_membership.pk).update(role=Role.OWNER)
    stale_alice = Membership.objects.get(user=alice, team=acme)
    services.membership_change_role(membership=Membership.objects.get(user=bob, team=acme), role=Role.MEMBER, by=alice)
    with pytest.raises(ValidationError):
        services.membership_remove(membership=stale_alice, by=alice)


def test_role_changes_and_removals_are_audited_with_the_member(alice, bob, acme):
    bob_membership = Membership.objects.get(user=bob, team=acme)
    services.membership_change_role(membership=bob_membership, role=Role.OWNER, by=alice, ip="192.0.2.1")
    services.membership_change_role(membership=bob_membership, role=Role.OWNER, by=alice)  # no change, no entry
    services.membership_remove(membership=bob_membership, by=alice)

    entries = AuditEntry.objects.filter(team=acme).order_by("id")
    assert [(e.action, e.actor, e.member_email, e.role) for e in entries] == [
        (AuditAction.MEMBER_ROLE_CHANGED, alice, "bob@acme.test", Role.OWNER),
        (AuditAction.MEMBER_REMOVED, alice, "bob@acme.test", ""),
    ]
    assert entries[0].ip_address == "192.0.2.1"


def test_the_database_refuses_a_second_membership_in_the_same_team(acme, bob):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError, match="accounts_membership_unique"):
        Membership.objects.create(user=bob, team=acme, role=Role.OWNER)
