"""Settings → Events API: the page, and the Owners' actions on it: create a token, see it, confirm and revoke one;
and, for every member, whether a token's first event has arrived (what the onboarding status polls). The ingestion
API itself is events.ingest.

Thin views: each checks membership (accounts.access), calls one service and renders a page. The rule a newcomer
must know: the plaintext of a new token goes into the one response that creates it (the "Token created" page)
and nowhere else: not the session, a cookie, the cache, the database or a log. never_cache keeps it out of every
HTTP cache, and the page's script replaces its address with the token's GET-able page, so a reload shows the
token without its plaintext instead of posting the form again.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.access import AuthenticatedHttpRequest, client_ip, get_membership, get_owner_membership
from accounts.models import Membership
from accounts.reauth import needs_reauthentication, reauthenticate
from accounts.views import EVENTS_API, render_settings, require_POST_or_show
from events.models import ApiToken
from events.tokens import services
from events.tokens.forms import WRONG_PASSWORD_MESSAGE, TokenCreateForm, use_form_id
from events.tokens.onboarding import first_event_status, onboarding_context
from events.tokens.selectors import events_api_section

API_NOT_ENABLED_MESSAGE = "Ask the Canvas team to enable the Events API"
FORM_ALREADY_USED_MESSAGE = (
    "That form was already used. A token is shown only once; if you lost it, create a new one and revoke the old."
)


def _owner_of_enabled_team(request: HttpRequest) -> Membership:
    membership = get_owner_membership(request)
    if not membership.team.events_api_enabled:
        raise PermissionDenied(API_NOT_ENABLED_MESSAGE)
    return membership


def render_events_api(
    request: HttpRequest, *, status: int = 200, token_form: TokenCreateForm | None = None
) -> HttpResponse:
    context = events_api_section(request=request, membership=get_membership(request), token_form=token_form)
    return render_settings(request, EVENTS_API, "accounts/settings/events_api.html", context, status=status)


@login_required
def events_api_page(request: HttpRequest) -> HttpResponse:
    return render_events_api(request)


@never_cache
@login_required
@require_POST_or_show(EVENTS_API)
def token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = _owner_of_enabled_team(request)
    form = TokenCreateForm(request.POST, needs_password=needs_reauthentication(request))
    if form.is_valid() and "password" in form.fields and not reauthenticate(request, form.cleaned_data["password"]):
        form.add_error("password", WRONG_PASSWORD_MESSAGE)
    if not form.is_valid():
        return render_events_api(request, status=400, token_form=form)
    if not use_form_id(request, form.cleaned_data["form_id"]):
        messages.warning(request, FORM_ALREADY_USED_MESSAGE)
        return redirect(EVENTS_API.url_name)
    token, plaintext = services.api_token_create(
        team=membership.team, created_by=request.user, name=form.cleaned_data["name"], ip=client_ip(request)
    )
    # The plaintext goes into this one response and nowhere else; never_cache adds Cache-Control: no-store.
    context = {"token": token, "plaintext": plaintext, **onboarding_context(request, token=token, plaintext=plaintext)}
    return render(request, "events/token_created.html", context)


@login_required
def token_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Where the "Token created" page's address points after it has loaded: a reload lands here, without the
    plaintext. Revoked tokens stay visible, so a token revoked right after creation is not a 404 on reload."""
    membership = get_owner_membership(request)
    token = get_object_or_404(
        ApiToken.objects.for_team(membership.team).select_related("created_by", "revoked_by"), pk=pk
    )
    return render_settings(request, EVENTS_API, "events/token_detail.html", {"token": token})


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
    return redirect(EVENTS_API.url_name)
