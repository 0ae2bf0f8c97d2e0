import pytest
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Membership, Role


def test_the_last_owner_cannot_be_demoted(alice, acme):
    only_owner = Membership.objects.get(user=alice, team=acme)
    with pytest.raises(ValidationError, match="at least one Owner"):
        services.membership_change_role(membership=only_owner, role=Role.MEMBER)
    only_owner.refresh_from_db()
    assert only_owner.role == Role.OWNER


def test_the_last_owner_cannot_be_removed(alice, acme):
    with pytest.raises(ValidationError, match="at least one Owner"):
        services.membership_remove(membership=Membership.objects.get(user=alice, team=acme))
    assert Membership.objects.filter(user=alice, team=acme).exists()


def test_an_owner_can_step_down_once_another_owner_exists(alice, bob, acme):
    services.membership_change_role(membership=Membership.objects.get(user=bob, team=acme), role=Role.OWNER)
    services.membership_change_role(membership=Membership.objects.get(user=alice, team=acme), role=Role.MEMBER)
    assert list(Membership.objects.owners().filter(team=acme).values_list("user__email", flat=True)) == [bob.email]


def test_a_stale_copy_cannot_sneak_past_the_last_owner_rule(alice, bob, acme):
    # Bob was an Owner when the page was loaded, but Alice has demoted him since.
    bob_membership = Membership.objects.get(user=bob, team=acme)
    Membership.objects.filter(pk=bob_membership.pk).update(role=Role.OWNER)
    stale_alice = Membership.objects.get(user=alice, team=acme)
    services.membership_change_role(membership=Membership.objects.get(user=bob, team=acme), role=Role.MEMBER)
    with pytest.raises(ValidationError):
        services.membership_remove(membership=stale_alice)


def test_adding_an_unknown_email_is_a_field_error(acme):
    with pytest.raises(ValidationError) as error:
        services.membership_add(team=acme, email="nobody@nowhere.test")
    assert services.NO_SUCH_USER_MESSAGE in error.value.message_dict["email"]


def test_adding_someone_twice_is_a_field_error(acme, bob):
    with pytest.raises(ValidationError) as error:
        services.membership_add(team=acme, email="BOB@acme.test")
    assert services.ALREADY_MEMBER_MESSAGE in error.value.message_dict["email"]


def test_the_database_refuses_a_second_membership_in_the_same_team(acme, bob):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError, match="accounts_membership_unique"):
        Membership.objects.create(user=bob, team=acme, role=Role.OWNER)
