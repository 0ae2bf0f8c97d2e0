"""Settings → Events API for an Owner whose team's API is off: ask the Canvas team to enable it. Staff answer in
the admin (events.admin.AccessRequestAdmin)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect

from accounts.access import AuthenticatedHttpRequest, client_ip, get_owner_membership
from accounts.views import EVENTS_API, require_POST_or_show
from events.tokens import services
from events.tokens.forms import AccessRequestForm

ALREADY_ENABLED_MESSAGE = "The Events API is already enabled for your team."
REQUESTED_MESSAGE = "Access requested. The Canvas team will get back to you."


@login_required
@require_POST_or_show(EVENTS_API)
def access_request_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = get_owner_membership(request)
    if membership.team.events_api_enabled:
        messages.info(request, ALREADY_ENABLED_MESSAGE)
        return redirect(EVENTS_API.url_name)
    form = AccessRequestForm(request.POST)
    if not form.is_valid():  # only a note past its length: say so, and keep the page as it was
        messages.error(request, " ".join(str(message) for message in form.errors["note"]))
        return redirect(EVENTS_API.url_name)
    services.events_api_request_access(
        team=membership.team, by=request.user, note=form.cleaned_data["note"], ip=client_ip(request)
    )
    messages.success(request, REQUESTED_MESSAGE)
    return redirect(EVENTS_API.url_name)
