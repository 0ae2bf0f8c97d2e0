"""Every write to teams, memberships and invitations happens here, with its audit row (events.models.AuditEntry)."""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from events.models import AuditAction, AuditEntry

from .models import Invitation, Membership, Role, Team, User

logger = logging.getLogger(__name__)

LAST_OWNER_MESSAGE = "A team must keep at least one Owner. Make someone else an Owner first."
ALREADY_MEMBER_MESSAGE = "That person is already a member of this team."
# Each invitation is an email from our domain with text an Owner chooses (team and inviter names): capped per team.
INVITATIONS_PER_HOUR = 20
TOO_MANY_INVITATIONS_MESSAGE = (
    f"This team has sent {INVITATIONS_PER_HOUR} invitations in the last hour, the most it may. Try again later."
)
EMAIL_NOT_SENT_MESSAGE = "The invitation email could not be sent, so no invitation was made. Try again in a minute."
INVITATION_UNUSABLE_MESSAGE = "This invitation can no longer be used."
WRONG_ACCOUNT_MESSAGE = "This invitation is for another email address."
ACCOUNT_EXISTS_MESSAGE = "An account with this email address exists: log in to accept the invitation."


def team_rename(*, team: Team, name: str) -> Team:
    team.name = name.strip()
    team.full_clean(exclude=["slug"])
    team.save(update_fields=["name"])
    return team


def _audit(*, team_id: int, actor: User | None, action: str, member_email: str, role: str = "", ip: str | None) -> None:
    AuditEntry.objects.create(
        team_id=team_id, actor=actor, action=action, member_email=member_email, role=role, ip_address=ip
    )


@transaction.atomic
def invitation_send(
    *, team: Team, email: str, role: str, invited_by: User, site_url: str, ip: str | None = None
) -> Invitation:
    """Invite an address to the team and email it a link to accept (`site_url`: where the link points).

    The caller answers the same whether or not the address has a Canvas account, so an Owner cannot use
    invitations to find out who has one. Inviting an address again renews its open invitation: a new link
    and expiry, and the older link stops working.
    """
    email = User.objects.normalize_email(email.strip()).lower()
    # Lock the team: two Owners inviting the same address at once would otherwise both create an invitation.
    Team.objects.select_for_update().get(pk=team.pk)
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise ValidationError({"email": ALREADY_MEMBER_MESSAGE})
    now = timezone.now()
    hour_ago = now - timedelta(hours=1)
    sent = AuditEntry.objects.filter(team=team, action=AuditAction.INVITATION_SENT, created_at__gt=hour_ago)
    if sent.count() >= INVITATIONS_PER_HOUR:  # the audit log counts them; the team's lock above keeps the count true
        raise ValidationError(TOO_MANY_INVITATIONS_MESSAGE)
    secret = secrets.token_urlsafe(32)
    invitation, _ = Invitation.objects.update_or_create(
        team=team,
        email=email,
        accepted_at=None,
        revoked_at=None,
        defaults={
            "role": role,
            "invited_by": invited_by,
            "token_digest": Invitation.digest_of(secret),
            "created_at": now,
            "expires_at": now + settings.INVITATION_MAX_AGE,
        },
    )
    _audit(team_id=team.pk, actor=invited_by, action=AuditAction.INVITATION_SENT, member_email=email, role=role, ip=ip)
    link = site_url.rstrip("/") + reverse("invitation_open", args=[secret])
    context = {"invitation": invitation, "link": link, "inviter": invited_by.get_full_name()}
    try:
        # Sent inside the transaction: when the email cannot go, nothing is recorded and the Owner is told.
        subject = f"{context['inviter']} invited you to {team.name} on Canvas Events"
        send_mail(
            subject=" ".join(subject.split()),  # a line break in a name must not end the header
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    except OSError as error:  # smtplib's errors are OSErrors
        logger.exception("Invitation email not sent")
        raise ValidationError(EMAIL_NOT_SENT_MESSAGE) from error
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, by: User, ip: str | None = None) -> bool:
    """Withdraw an open invitation: its link stops working. False when it was already accepted or revoked."""
    now = timezone.now()
    changed = Invitation.objects.open().filter(pk=invitation.pk).update(revoked_at=now, revoked_by=by)
    if not changed:
        return False
    invitation.revoked_at, invitation.revoked_by = now, by
    _audit(
        team_id=invitation.team_id,
        actor=by,
        action=AuditAction.INVITATION_REVOKED,
        member_email=invitation.email,
        ip=ip,
    )
    return True


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User, ip: str | None = None) -> Membership:
    """Add the invited user to the team. The link works once: of two accepts at the same moment, one wins."""
    if user.email.lower() != invitation.email:
        raise ValidationError(WRONG_ACCOUNT_MESSAGE)
    now = timezone.now()
    # Conditional UPDATE: a second click, a revocation or the expiry in between leaves nothing to claim.
    claimed = Invitation.objects.open().filter(pk=invitation.pk, expires_at__gt=now).update(accepted_at=now)
    if not claimed:
        raise ValidationError(INVITATION_UNUSABLE_MESSAGE)
    invitation.accepted_at = now
    membership, _ = Membership.objects.get_or_create(
        team_id=invitation.team_id, user=user, defaults={"role": invitation.role}
    )
    _audit(
        team_id=invitation.team_id,
        actor=user,
        action=AuditAction.INVITATION_ACCEPTED,
        member_email=invitation.email,
        role=membership.role,
        ip=ip,
    )
    return membership


@transaction.atomic
def invitation_accept_as_new_user(
    *, invitation: Invitation, full_name: str, password: str, ip: str | None = None
) -> Membership:
    """Create the invitee's account (the form has checked the password) and accept the invitation with it."""
    # Locked first: of two sign-ups on one link at the same moment, the second waits and then finds it spent.
    if Invitation.objects.open().select_for_update().filter(pk=invitation.pk).first() is None:
        raise ValidationError(INVITATION_UNUSABLE_MESSAGE)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ValidationError(ACCOUNT_EXISTS_MESSAGE)
    user = User.objects.create_user(invitation.email, password, full_name=full_name.strip())
    return invitation_accept(invitation=invitation, user=user, ip=ip)


def _lock_team_and_check_owners(*, membership: Membership) -> None:
    """Refuse a change that would leave the team without an Owner.

    The team row is locked first so that two Owners demoting each other at the same moment are serialised:
    without the lock both would see two Owners and both changes would pass.
    """
    Team.objects.select_for_update().get(pk=membership.team_id)
    membership.refresh_from_db(fields=["role"])
    if not membership.is_owner:
        return
    if not Membership.objects.owners().filter(team_id=membership.team_id).exclude(pk=membership.pk).exists():
        raise ValidationError(LAST_OWNER_MESSAGE)


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str, by: User | None, ip: str | None = None) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": "Choose Owner or Member."})
    if role != Role.OWNER:
        _lock_team_and_check_owners(membership=membership)
    if membership.role == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    _audit(
        team_id=membership.team_id,
        actor=by,
        action=AuditAction.MEMBER_ROLE_CHANGED,
        member_email=membership.user.email,
        role=role,
        ip=ip,
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, by: User | None, ip: str | None = None) -> None:
    _lock_team_and_check_owners(membership=membership)
    membership.delete()
    _audit(
        team_id=membership.team_id,
        actor=by,
        action=AuditAction.MEMBER_REMOVED,
        member_email=membership.user.email,
        ip=ip,
    )
