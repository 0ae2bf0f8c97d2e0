from django.http import Http404, HttpRequest

from .access import get_membership
from .models import Membership


def current_team(request: HttpRequest) -> dict:
    """Expose the current membership and the user's teams to every page (for the team switcher)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        membership = get_membership(request)
    except Http404:
        return {"current_membership": None, "user_memberships": []}
    teams = Membership.objects.filter(user=user).select_related("team")
    return {"current_membership": membership, "user_memberships": list(teams)}
