"""Members by invitation: an Owner invites an address, the invitee accepts through the emailed link.

The rule a newcomer must know: the Owner's answer never depends on whether the address has a Canvas account
(no enumeration), and the link's secret leaves the URL at once: /invitations/<secret>/ keeps it in the session
and redirects to /invitations/accept/, as Django's password reset does, so it is not left in the address bar,
in the browser's history or in a login's `next`.
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import services
from .access import SESSION_TEAM_KEY, AuthenticatedHttpRequest, client_ip, get_owner_membership
from .forms import InvitationForm, InvitationSignUpForm
from .models import Invitation, InvitationState, Membership, User
from .views import MEMBERS, render_members, require_POST_or_show

INVITATION_SENT_MESSAGE = "Invitation sent to {email}. The link in it works once, for {days} days."
_SESSION_INVITATION_LINK = "invitation_link"
# Django's ModelBackend logs in the invitee who just set a password (axes only watches password logins).
_LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


@login_required
@require_POST_or_show(MEMBERS)
def invitation_send(request: AuthenticatedHttpRequest) -> HttpResponse:
    membership = get_owner_membership(request)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_send(
                team=membership.team,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                site_url=request.build_absolute_uri("/"),
                ip=client_ip(request),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            days = settings.INVITATION_MAX_AGE.days
            messages.success(request, INVITATION_SENT_MESSAGE.format(email=invitation.email, days=days))
            return redirect(MEMBERS.url_name)
    return render_members(request, status=400, invitation_form=form)


@login_required
@require_POST
def invitation_revoke(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    owner = get_owner_membership(request)
    invitation = get_object_or_404(Invitation.objects.open(), pk=pk, team=owner.team)
    services.invitation_revoke(invitation=invitation, by=request.user, ip=client_ip(request))
    messages.success(request, f"Invitation to {invitation.email} revoked: its link no longer works.")
    return redirect(MEMBERS.url_name)


@never_cache
@require_GET
def invitation_open(request: HttpRequest, secret: str) -> HttpResponse:
    """Move the link's secret into the session (out of the address bar and Referer), for a real invitation only:
    an unknown link writes no session, so made-up links cannot fill the session table."""
    if Invitation.objects.from_link(secret) is None:
        return render(request, "accounts/invitation_unusable.html", {"invitation": None}, status=404)
    request.session[_SESSION_INVITATION_LINK] = secret
    return redirect("invitation_accept")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept(request: HttpRequest) -> HttpResponse:
    """The invitation in the session, for whoever holds its link: accept it, log in first, or sign up."""
    secret = request.session.get(_SESSION_INVITATION_LINK, "")
    invitation = Invitation.objects.from_link(secret) if secret else None
    if invitation is None or invitation.state != InvitationState.PENDING:
        return render(
            request, "accounts/invitation_unusable.html", {"invitation": invitation}, status=410 if invitation else 404
        )
    context: dict = {"invitation": invitation, "team": invitation.team}
    user = request.user
    if user.is_authenticated:
        if user.email.lower() != invitation.email:
            if request.method == "POST":
                raise PermissionDenied(services.WRONG_ACCOUNT_MESSAGE)
            return render(request, "accounts/invitation_accept.html", {**context, "wrong_account": True}, status=403)
        if request.method == "POST":
            return _accepted(request, services.invitation_accept, invitation=invitation, user=user)
        return render(request, "accounts/invitation_accept.html", context)
    if User.objects.filter(email__iexact=invitation.email).exists():
        context["login_url"] = f"{reverse('login')}?next={reverse('invitation_accept')}"
        return render(request, "accounts/invitation_accept.html", {**context, "log_in_first": True})
    form = InvitationSignUpForm(request.POST or None, invitation=invitation)
    if request.method == "POST" and form.is_valid():
        return _accepted(
            request,
            services.invitation_accept_as_new_user,
            invitation=invitation,
            full_name=form.cleaned_data["full_name"],
            password=form.cleaned_data["password1"],
        )
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/invitation_accept.html", {**context, "sign_up_form": form}, status=status)


def _accepted(request: HttpRequest, accept: Callable[..., Membership], **arguments) -> HttpResponse:
    """Run the accepting service; then the invitee is logged in, on the team they joined, and the link is spent."""
    try:
        membership = accept(ip=client_ip(request), **arguments)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("invitation_accept")
    if not request.user.is_authenticated:
        login(request, membership.user, backend=_LOGIN_BACKEND)
    request.session.pop(_SESSION_INVITATION_LINK, None)
    request.session[SESSION_TEAM_KEY] = membership.team_id
    messages.success(request, f"Welcome to {membership.team.name}: you are a {membership.get_role_display()}.")
    return redirect("settings")
