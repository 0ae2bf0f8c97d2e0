"""Reads for the Settings page's Members section: the members and, for Owners, the invitation form and the
open invitations."""

from django.conf import settings

from .forms import InvitationForm
from .models import Invitation, Membership


def members_section(*, membership: Membership, invitation_form: InvitationForm | None = None) -> dict:
    team = membership.team
    context: dict = {"members": team.memberships.select_related("user").order_by("user__email")}
    if membership.is_owner:
        context["invitation_form"] = invitation_form or InvitationForm()
        context["invitation_valid_days"] = settings.INVITATION_MAX_AGE.days
        context["open_invitations"] = Invitation.objects.open().filter(team=team).select_related("invited_by")
    return context
