from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from events.tokens.selectors import events_api_section

from . import services
from .access import SESSION_TEAM_KEY, AuthenticatedHttpRequest, client_ip, get_membership, get_owner_membership
from .forms import MemberRoleForm, TeamNameForm
from .models import Membership
from .selectors import members_section


def render_settings(request: HttpRequest, *, status: int = 200, **forms) -> HttpResponse:
    """The Settings page of the current team; POST views call it again to show their form's errors."""
    membership = get_membership(request)
    team = membership.team
    context = {
        "membership": membership,
        "team": team,
        "team_form": forms.get("team_form") or TeamNameForm(instance=team),
        **members_section(membership=membership, invitation_form=forms.get("invitation_form")),
        **events_api_section(request=request, membership=membership, token_form=forms.get("token_form")),
        **forms.get("extra", {}),
    }
    return render(request, "accounts/settings.html", context, status=status)


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    return render_settings(request)


@login_required
@require_POST
def team_rename(request: HttpRequest) -> HttpResponse:
    membership = get_owner_membership(request)
    form = TeamNameForm(request.POST, instance=membership.team)
    if not form.is_valid():
        return render_settings(request, status=400, team_form=form)
    services.team_rename(team=membership.team, name=form.cleaned_data["name"])
    messages.success(request, "Team renamed.")
    return redirect("settings")


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
        return redirect("settings")
    try:
        services.membership_change_role(
            membership=target, role=form.cleaned_data["role"], by=request.user, ip=client_ip(request)
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display()}.")
    return redirect("settings")


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
    return redirect("settings")


@login_required
@require_POST
def team_switch(request: HttpRequest, slug: str) -> HttpResponse:
    membership = get_object_or_404(Membership, user=request.user, team__slug=slug)
    request.session[SESSION_TEAM_KEY] = membership.team_id
    return redirect("settings")
