"""Reads for Settings → Events API: the team's live tokens, its refused events, its audit log.

Members see the tokens' hints and the refused events; only Owners get the token form and the audit log.
"""

from django.http import HttpRequest

from accounts.models import Membership
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
        "api_tokens": ApiToken.objects.for_team(team).live().select_related("created_by"),
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
    context["refused_events"] = RejectedEvent.objects.filter(team=team)[:REFUSED_EVENTS_SHOWN]
    if membership.is_owner:
        context["audit_entries"] = AuditEntry.objects.filter(team=team).select_related("actor")[:AUDIT_ENTRIES_SHOWN]
    return context
