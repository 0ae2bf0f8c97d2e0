"""The one place that decides which team a request acts on, and what the user may do there."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from .models import Membership, User

SESSION_TEAM_KEY = "current_team_id"
OWNER_ONLY_MESSAGE = "Only the team's Owners can do that."
NO_TEAM_MESSAGE = "You are not a member of any team."
_CACHED_MEMBERSHIP = "_membership"  # get_membership's answer, kept on the request


class NoTeam(Http404):
    """The signed-in user is a member of no team: accounts.middleware answers with a page saying what to do."""


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind login_required: its user is a User, never AnonymousUser."""

    user: User


def client_ip(request: HttpRequest) -> str | None:
    """The address the audit log records: the connection's peer, as for every audit entry."""
    return request.META.get("REMOTE_ADDR") or None


def get_membership(request: HttpRequest) -> Membership:
    """The user's membership in the current team (from the session, else their first team).

    A user without any team gets NoTeam: a 404, which accounts.middleware answers with the "no team yet" page.
    """
    cached: Membership | None = getattr(request, _CACHED_MEMBERSHIP, None)
    if cached is not None:
        return cached
    if not request.user.is_authenticated:  # views ask for a login first
        raise Http404(NO_TEAM_MESSAGE)
    memberships = Membership.objects.filter(user=request.user).select_related("team")
    team_id = request.session.get(SESSION_TEAM_KEY)
    membership = (memberships.filter(team_id=team_id).first() if team_id else None) or memberships.first()
    if membership is None:
        raise NoTeam(NO_TEAM_MESSAGE)
    setattr(request, _CACHED_MEMBERSHIP, membership)
    return membership


def get_owner_membership(request: HttpRequest) -> Membership:
    """As get_membership, but 403 for anyone who is not an Owner of the current team."""
    membership = get_membership(request)
    if not membership.is_owner:
        raise PermissionDenied(OWNER_ONLY_MESSAGE)
    return membership
