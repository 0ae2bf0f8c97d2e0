"""Settings → Events API actions for Owners: create a token, confirm and revoke one; and, for every member, whether
a token's first event has arrived (what the onboarding status polls). The ingestion API itself is events.ingest.

Thin views: each checks membership (accounts.access), calls one service and renders the Settings page. The rule
a newcomer must know: the plaintext of a new token goes into the one response that creates it and nowhere else
(never_cache keeps it out of every cache).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.access import AuthenticatedHttpRequest, get_membership, get_owner_membership
from accounts.reauth import needs_reauthentication, reauthenticate
from accounts.views import render_settings
from events.models import ApiToken
from events.tokens import services
from events.tokens.forms import WRONG_PASSWORD_MESSAGE, TokenCreateForm, use_form_id
from events.tokens.onboarding import first_event_status, onboarding_context

API_NOT_ENABLED_MESSAGE = "Ask the Canvas team to enable the Events API"
FORM_ALREADY_USED_MESSAGE = (
    "That form was already used. A token is shown only once; if you lost it, create a new one and revoke the old."
)


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _owner_of_enabled_team(request: HttpRequest):
    membership = get_owner_membership(request)
    if not membership.team.events_api_enabled:
        raise PermissionDenied(API_NOT_ENABLED_MESSAGE)
    return membership


@never_cache
@login_required
@require_POST
def token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = _owner_of_enabled_team(request)
    form = TokenCreateForm(request.POST, needs_password=needs_reauthentication(request))
    if form.is_valid() and "password" in form.fields and not reauthenticate(request, form.cleaned_data["password"]):
        form.add_error("password", WRONG_PASSWORD_MESSAGE)
    if not form.is_valid():
        return render_settings(request, status=400, token_form=form)
    if not use_form_id(request, form.cleaned_data["form_id"]):
        messages.warning(request, FORM_ALREADY_USED_MESSAGE)
        return redirect("settings")
    token, plaintext = services.api_token_create(
        team=membership.team, created_by=request.user, name=form.cleaned_data["name"], ip=client_ip(request)
    )
    # The plaintext goes into this one response and nowhere else; never_cache adds Cache-Control: no-store.
    return render_settings(
        request,
        extra={
            "new_token": plaintext,
            "new_token_record": token,
            **onboarding_context(request, token=token, plaintext=plaintext),
        },
    )


@never_cache
@login_required
@require_GET
def token_first_event(request: HttpRequest, pk: int) -> JsonResponse:
    """Whether a token of the current team has sent its first event yet: the onboarding status polls this.
    Every member may ask; another team's token is a 404."""
    token = get_object_or_404(ApiToken.objects.for_team(get_membership(request).team), pk=pk)
    return JsonResponse(first_event_status(token))


def _team_token(request: HttpRequest, pk: int) -> ApiToken:
    membership = get_owner_membership(request)
    return get_object_or_404(ApiToken.objects.live(), pk=pk, team=membership.team)


@login_required
def token_revoke_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    token = _team_token(request, pk)
    return render(request, "events/token_revoke_confirm.html", {"token": token})


@login_required
@require_POST
def token_revoke(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    token = _team_token(request, pk)
    services.api_token_revoke(token=token, by=request.user, ip=client_ip(request))
    messages.success(request, f"Token “{token.name}” ({token.hint}) revoked. It stops working at once.")
    return redirect("settings")
