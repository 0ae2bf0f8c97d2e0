"""Every write to teams and memberships happens here."""

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import Membership, Role, Team, User

LAST_OWNER_MESSAGE = "A team must keep at least one Owner. Make someone else an Owner first."
ALREADY_MEMBER_MESSAGE = "That user is already a member of this team."
NO_SUCH_USER_MESSAGE = "No Canvas user has that email address. Ask them to sign up first."


def team_rename(*, team: Team, name: str) -> Team:
    team.name = name.strip()
    team.full_clean(exclude=["slug"])
    team.save(update_fields=["name"])
    return team


def membership_add(*, team: Team, email: str, role: str = Role.MEMBER) -> Membership:
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise ValidationError({"email": NO_SUCH_USER_MESSAGE})
    if Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError({"email": ALREADY_MEMBER_MESSAGE})
    return Membership.objects.create(team=team, user=user, role=role)


def _lock_team_and_check_owners(*, membership: Membership) -> None:
    """Refuse a change that would leave the team without an Owner.

    The team row is locked first so that two Owners demoting each other at the same moment are serialised:
    without the lock both would see two Owners and both changes would pass.
    """
    Team.objects.select_for_update().get(pk=membership.team_id)
    membership.refresh_from_db(fields=["role"])
    if not membership.is_owner:
        return
    if not Membership.objects.owners().filter(team_id=membership.team_id).exclude(pk=membership.pk).exists():
        raise ValidationError(LAST_OWNER_MESSAGE)


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": "Choose Owner or Member."})
    if role != Role.OWNER:
        _lock_team_and_check_owners(membership=membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    _lock_team_and_check_owners(membership=membership)
    membership.delete()
