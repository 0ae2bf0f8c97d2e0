"""The one place that decides which team a request acts on, and what the user may do there."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from .models import Membership

SESSION_TEAM_KEY = "current_team_id"
OWNER_ONLY_MESSAGE = "Only the team's Owners can do that."


def get_membership(request: HttpRequest) -> Membership:
    """The user's membership in the current team (from the session, else their first team).

    A user without any team gets 404: there is nothing of any team for them to see.
    """
    cached = getattr(request, "_membership", None)
    if cached is not None:
        return cached
    memberships = Membership.objects.filter(user=request.user).select_related("team")
    team_id = request.session.get(SESSION_TEAM_KEY)
    membership = (memberships.filter(team_id=team_id).first() if team_id else None) or memberships.first()
    if membership is None:
        raise Http404("You are not a member of any team.")
    request._membership = membership
    return membership


def get_owner_membership(request: HttpRequest) -> Membership:
    """As get_membership, but 403 for anyone who is not an Owner of the current team."""
    membership = get_membership(request)
    if not membership.is_owner:
        raise PermissionDenied(OWNER_ONLY_MESSAGE)
    return membership
