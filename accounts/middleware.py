from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from events.models import AccessRequest

from .access import NoTeam


class NoTeamMiddleware:
    """Answer NoTeam (accounts.access.get_membership) with a page instead of a 404: staff find the admin there,
    anyone else learns that an Owner's invitation is what adds them to a team."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, NoTeam):
            return None
        context = {"pending_access_requests": AccessRequest.objects.pending().count() if request.user.is_staff else 0}
        # Still a 404, as before: there is nothing of any team to show, and the JSON endpoints keep their status.
        return render(request, "accounts/no_team.html", context, status=404)
