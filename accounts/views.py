"""Settings: one page per subject (General, Members, Events API, Warehouse) behind a side navigation, and the
team's actions. POST views redirect on success and re-render their form's page with the errors (400).

The Events API page and its actions live in events.tokens.views; the warehouse login action in
events.explorer.views. They render through `render_settings` too, so every page has the same frame.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import services
from .access import SESSION_TEAM_KEY, AuthenticatedHttpRequest, client_ip, get_membership, get_owner_membership
from .forms import InvitationForm, MemberRoleForm, TeamNameForm
from .models import Membership
from .selectors import members_section


@dataclass(frozen=True)
class SettingsPage:
    """An entry of the side navigation."""

    title: str
    url_name: str


GENERAL = SettingsPage("General", "settings_general")
MEMBERS = SettingsPage("Members", "settings_members")
EVENTS_API = SettingsPage("Events API", "settings_events_api")
WAREHOUSE = SettingsPage("Warehouse", "settings_warehouse")


def settings_pages(membership: Membership) -> list[SettingsPage]:
    """The pages in the side navigation's order; /settings/ lands on the first.

    An Owner whose team has the Events API came for its tokens, so for them that page comes first.
    """
    if membership.is_owner and membership.team.events_api_enabled:
        return [EVENTS_API, GENERAL, MEMBERS, WAREHOUSE]
    return [GENERAL, MEMBERS, EVENTS_API, WAREHOUSE]


def render_settings(
    request: HttpRequest, page: SettingsPage, template: str, context: dict, *, status: int = 200
) -> HttpResponse:
    """A Settings template of the current team, in the frame every page shares: the title, and the side
    navigation with `page` as the current one."""
    membership = get_membership(request)
    frame = {
        "membership": membership,
        "team": membership.team,
        "settings_pages": settings_pages(membership),
        "current_page": page,
    }
    return render(request, template, {**frame, **context}, status=status)


def require_POST_or_show(page: SettingsPage) -> Callable:
    """As require_POST, but a GET of a form's action (the address a failed form leaves in the bar, reloaded or
    bookmarked) goes to the page the form lives on instead of a bare 405."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in ("GET", "HEAD"):
                return redirect(page.url_name)
            if request.method != "POST":
                return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


@login_required
def settings_landing(request: HttpRequest) -> HttpResponse:
    return redirect(settings_pages(get_membership(request))[0].url_name)


def render_general(request: HttpRequest, *, status: int = 200, team_form: TeamNameForm | None = None) -> HttpResponse:
    team = get_membership(request).team
    return render_settings(
        request,
        GENERAL,
        "accounts/settings/general.html",
        {"team_form": team_form or TeamNameForm(instance=team)},
        status=status,
    )


@login_required
def general_page(request: HttpRequest) -> HttpResponse:
    return render_general(request)


def render_members(
    request: HttpRequest, *, status: int = 200, invitation_form: InvitationForm | None = None
) -> HttpResponse:
    context = members_section(membership=get_membership(request), invitation_form=invitation_form)
    return render_settings(request, MEMBERS, "accounts/settings/members.html", context, status=status)


@login_required
def members_page(request: HttpRequest) -> HttpResponse:
    return render_members(request)


def render_warehouse(request: HttpRequest, **context) -> HttpResponse:
    return render_settings(request, WAREHOUSE, "accounts/settings/warehouse.html", context)


@login_required
def warehouse_page(request: HttpRequest) -> HttpResponse:
    return render_warehouse(request)


@login_required
@require_POST_or_show(GENERAL)
def team_rename(request: HttpRequest) -> HttpResponse:
    membership = get_owner_membership(request)
    form = TeamNameForm(request.POST, instance=membership.team)
    if not form.is_valid():
        return render_general(request, status=400, team_form=form)
    services.team_rename(team=membership.team, name=form.cleaned_data["name"])
    messages.success(request, "Team renamed.")
    return redirect(GENERAL.url_name)


def _team_member(request: HttpRequest, pk: int) -> Membership:
    """A membership of the current team; one of another team is 404, like anything that is not there."""
    owner = get_owner_membership(request)
    return get_object_or_404(Membership.objects.select_related("user", "team"), pk=pk, team=owner.team)


@login_required
@require_POST
def member_change_role(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    target = _team_member(request, pk)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Owner or Member.")
        return redirect(MEMBERS.url_name)
    try:
        services.membership_change_role(
            membership=target, role=form.cleaned_data["role"], by=request.user, ip=client_ip(request)
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    return redirect(MEMBERS.url_name)


@login_required
def member_remove_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    target = _team_member(request, pk)
    return render(request, "accounts/member_remove_confirm.html", {"target": target, "team": target.team})


@login_required
@require_POST
def member_remove(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    target = _team_member(request, pk)
    try:
        services.membership_remove(membership=target, by=request.user, ip=client_ip(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{target.user.email} removed from the team.")
    return redirect(MEMBERS.url_name)


@login_required
@require_POST
def team_switch(request: HttpRequest, slug: str) -> HttpResponse:
    membership = get_object_or_404(Membership, user=request.user, team__slug=slug)
    request.session[SESSION_TEAM_KEY] = membership.team_id
    return redirect("settings")
