"""Reads for Settings → Events API: the team's tokens (live, then revoked), its refused events, its audit log.

Members see the tokens and the refused events; only Owners get the token form and the audit log.
"""

from django.db.models import F, QuerySet
from django.http import HttpRequest

from accounts.models import Membership, Team
from accounts.reauth import needs_reauthentication
from events.models import AccessRequest, ApiToken, AuditEntry, RejectedEvent
from events.tokens.forms import AccessRequestForm, TokenCreateForm, issue_form_id
from events.tokens.onboarding import events_endpoint, onboarding_context

AUDIT_ENTRIES_SHOWN = 50
REFUSED_EVENTS_SHOWN = 100


def events_api_section(
    *, request: HttpRequest, membership: Membership, token_form: TokenCreateForm | None = None
) -> dict:
    team = membership.team
    context = {
        "events_api_enabled": team.events_api_enabled,
        "api_tokens": team_tokens(team=team),
        "events_endpoint": events_endpoint(request),
        **onboarding_context(request),
        "audit_entries": [],
    }
    if membership.is_owner and team.events_api_enabled:
        context["token_form"] = token_form or TokenCreateForm(
            initial={"form_id": issue_form_id(request)}, needs_password=needs_reauthentication(request)
        )
    if not team.events_api_enabled:
        context["access_request"] = AccessRequest.objects.pending().filter(team=team).first()
        context["access_request_form"] = AccessRequestForm() if membership.is_owner else None
    context["refused_events"] = refused_events(team=team)
    if membership.is_owner:
        context["audit_entries"] = AuditEntry.objects.filter(team=team).select_related("actor")[:AUDIT_ENTRIES_SHOWN]
    return context


def team_tokens(*, team: Team) -> QuerySet[ApiToken]:
    """Live tokens, newest first, then revoked ones, latest revocation first: a revoked token stays on the list."""
    return (
        ApiToken.objects.for_team(team)
        .select_related("created_by", "revoked_by")
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at")
    )


def refused_events(*, team: Team) -> QuerySet[RejectedEvent]:
    """The latest refusals (a burst's row by its latest refusal), each with its token: name, and revocation."""
    return RejectedEvent.objects.filter(team=team).select_related("token")[:REFUSED_EVENTS_SHOWN]
