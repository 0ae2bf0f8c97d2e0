"""Every write to Events API access happens here: creating and revoking tokens, switching a team's API on/off.

Each write is one transaction with its audit row, and is a conditional UPDATE where two people could act at
once, so a change is recorded once. The rule a newcomer must know: after a commit, the token cache is refreshed
(events.tokens.lookup), which is what makes a revocation reach every worker within a second; a write that skips
these functions leaves workers on the old answer for up to a minute.
"""

from django.db import transaction
from django.utils import timezone

from accounts.models import Team, User
from events.models import AccessRequest, ApiToken, AuditAction, AuditEntry
from events.tokens import secret
from events.tokens.lookup import refresh_team_tokens, refresh_token


@transaction.atomic
def api_token_create(*, team: Team, created_by: User, name: str, ip: str | None = None) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which the caller shows once and then forgets."""
    plaintext = secret.generate()
    token = ApiToken.objects.create(
        team=team,
        name=name.strip(),
        hint=secret.hint(plaintext),
        digest=secret.digest(plaintext),
        created_by=created_by,
    )
    AuditEntry.objects.create(
        team=team, actor=created_by, action=AuditAction.TOKEN_CREATED, token_hint=token.hint, ip_address=ip
    )
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User | None, ip: str | None = None) -> bool:
    """Revoke a token for good. Returns False when it was already revoked (nothing is recorded twice)."""
    # Conditional UPDATE: two Owners revoking at once produce one revocation and one audit row.
    now = timezone.now()
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now, revoked_by=by)
    if not changed:
        return False
    token.revoked_at, token.revoked_by = now, by
    AuditEntry.objects.create(
        team_id=token.team_id, actor=by, action=AuditAction.TOKEN_REVOKED, token_hint=token.hint, ip_address=ip
    )
    transaction.on_commit(lambda: refresh_token(token.digest))
    return True


@transaction.atomic
def events_api_set_enabled(*, team: Team, enabled: bool, by: User | None, ip: str | None = None) -> bool:
    """Switch a team's Events API on or off. Tokens are kept: switching back on restores them. Switching it on
    resolves the team's pending access request, from whichever admin page staff did it.

    Returns False when the team was already in that state (no audit row then).
    """
    now = timezone.now()
    changed = (
        Team.objects.filter(pk=team.pk)
        .exclude(events_api_enabled=enabled)
        .update(events_api_enabled=enabled, events_api_changed_at=now, events_api_changed_by=by)
    )
    team.refresh_from_db(fields=["events_api_enabled", "events_api_changed_at", "events_api_changed_by"])
    if enabled:
        AccessRequest.objects.pending().filter(team=team).update(resolved_at=now, resolved_by=by)
    if not changed:
        return False
    action = AuditAction.API_ENABLED if enabled else AuditAction.API_DISABLED
    AuditEntry.objects.create(team=team, actor=by, action=action, ip_address=ip)
    transaction.on_commit(lambda: refresh_team_tokens(team.pk))
    return True


@transaction.atomic
def events_api_request_access(*, team: Team, by: User, note: str = "", ip: str | None = None) -> AccessRequest:
    """Ask staff to enable the team's Events API. While a request is pending, asking again returns it unchanged."""
    # Lock the team: two Owners clicking at once would otherwise both pass the check below.
    Team.objects.select_for_update().get(pk=team.pk)
    pending = AccessRequest.objects.pending().filter(team=team).first()
    if pending is not None:
        return pending
    access_request = AccessRequest.objects.create(team=team, requested_by=by, note=note.strip())
    AuditEntry.objects.create(team=team, actor=by, action=AuditAction.API_ACCESS_REQUESTED, ip_address=ip)
    return access_request
