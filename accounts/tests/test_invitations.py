"""Members by invitation (accounts.services.invitation_*, accounts.views_invitations): the Owner's side, the
invitee's link, and what nobody else can do."""

import re
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.access import SESSION_TEAM_KEY
from accounts.models import Invitation, InvitationState, Membership, Role, User
from conftest import PASSWORD, make_user
from events.models import AuditAction, AuditEntry

LINK = re.compile(r"http://testserver/invitations/([A-Za-z0-9_-]{43})/")
NEW_PASSWORD = "plum tree under a grey sky"
ANY_SENT_MESSAGE = (
    '<p class="message success" role="status">Invitation sent to X. The link in it works once, for 7 days.</p>'
)


def invite(client: Client, email: str, role: str = Role.MEMBER):
    return client.post("/settings/invitations/", {"email": email, "role": role}, follow=True)


def link_sent_to(email: str) -> str:
    [message] = [message for message in mail.outbox if message.to == [email]]
    found = LINK.search(str(message.body))
    assert found, message.body
    return found[0]


def open_link(client: Client, link: str):
    """Follow the emailed link as a browser does: /invitations/<secret>/ redirects to /invitations/accept/."""
    return client.get(link.removeprefix("http://testserver"), follow=True)


@pytest.fixture
def anonymous() -> Client:
    return Client()


# --- Sending --------------------------------------------------------------------------------------------------


def test_an_owner_invites_by_email_and_the_link_is_mailed(alice_client, alice, acme):
    response = invite(alice_client, "Dave@Example.TEST", Role.OWNER)

    assert "Invitation sent to dave@example.test." in response.content.decode()
    invitation = Invitation.objects.get(team=acme)
    assert (invitation.email, invitation.role, invitation.invited_by) == ("dave@example.test", Role.OWNER, alice)
    assert invitation.expires_at == invitation.created_at + timedelta(days=7)
    [message] = mail.outbox
    assert message.to == ["dave@example.test"]
    assert message.subject == "alice@acme.test invited you to Acme on Canvas Events"
    secret = LINK.search(message.body)[1]
    assert "as Owner" in message.body
    # Only the digest is stored: the secret is in the email and nowhere else.
    assert invitation.token_digest == Invitation.digest_of(secret)
    assert secret not in str(Invitation.objects.values().get())


def test_the_invitation_is_listed_for_owners_with_who_invited_and_when_it_expires(alice_client, acme):
    invite(alice_client, "dave@example.test")
    section = alice_client.get("/settings/members/").content.decode()
    listed = re.search(r'data-testid="invitations">(.*?)</ul>', section, re.S)[1]
    assert "dave@example.test" in listed
    assert "invited by alice@acme.test" in listed
    assert "expires" in listed
    assert "Revoke" in listed


def test_members_see_no_invitations(bob_client, alice, acme):
    services.invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    page = bob_client.get("/settings/members/").content.decode()
    assert "dave@example.test" not in page


def test_known_and_unknown_addresses_get_the_same_answer(alice_client, acme):
    make_user("known@example.test")  # a Canvas user of another team, or of none

    def answer(email: str) -> tuple:
        response = alice_client.post("/settings/invitations/", {"email": email, "role": Role.MEMBER})
        shown = alice_client.get("/settings/members/").content.decode()
        message = re.search(r'<p class="message[^"]*" role="status">(.*?)</p>', shown)
        assert message
        return response.status_code, response["Location"], message[0].replace(email, "X")

    expected = (302, "/settings/members/", ANY_SENT_MESSAGE)
    assert answer("known@example.test") == answer("unknown@example.test") == expected
    known_email, unknown_email = mail.outbox
    assert known_email.subject == unknown_email.subject
    assert LINK.sub("LINK", known_email.body) == LINK.sub("LINK", unknown_email.body)


def test_inviting_a_member_of_the_team_says_so_and_sends_nothing(alice_client, bob, acme):
    response = alice_client.post("/settings/invitations/", {"email": "BOB@acme.test", "role": Role.MEMBER})
    assert response.status_code == 400
    assert services.ALREADY_MEMBER_MESSAGE in response.content.decode()
    assert not Invitation.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param({"email": "not-an-email", "role": "member"}, "Enter a valid email address.", id="bad-email"),
        pytest.param({"email": "x@example.test", "role": "king"}, "Select a valid choice", id="bad-role"),
    ],
)
def test_bad_input_shows_the_error(alice_client, data, message):
    response = alice_client.post("/settings/invitations/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert mail.outbox == []


def test_inviting_again_renews_the_invitation_and_the_older_link_stops_working(alice_client, anonymous, acme):
    invite(alice_client, "dave@example.test")
    old_link = link_sent_to("dave@example.test")
    mail.outbox.clear()
    invite(alice_client, "dave@example.test", Role.OWNER)
    new_link = link_sent_to("dave@example.test")

    assert Invitation.objects.open().filter(team=acme).count() == 1
    assert Invitation.objects.get().role == Role.OWNER
    assert open_link(anonymous, old_link).status_code == 404
    assert "Join Acme" in open_link(anonymous, new_link).content.decode()


def test_when_the_email_cannot_be_sent_nothing_is_recorded(alice_client, acme, settings):
    # A real SMTP connection to a port nothing listens on: refused, as by a mail server that is down.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port

    response = alice_client.post("/settings/invitations/", {"email": "dave@example.test", "role": "member"})

    assert response.status_code == 400
    assert services.EMAIL_NOT_SENT_MESSAGE in response.content.decode()
    assert not Invitation.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.INVITATION_SENT).exists()


def test_sending_and_revoking_are_audited(alice_client, alice, acme):
    invite(alice_client, "dave@example.test", Role.OWNER)
    invitation = Invitation.objects.get()
    alice_client.post(f"/settings/invitations/{invitation.pk}/revoke/")

    entries = AuditEntry.objects.filter(team=acme).order_by("id")
    assert [(e.action, e.actor, e.member_email, e.role) for e in entries] == [
        (AuditAction.INVITATION_SENT, alice, "dave@example.test", Role.OWNER),
        (AuditAction.INVITATION_REVOKED, alice, "dave@example.test", ""),
    ]
    assert all(e.ip_address == "127.0.0.1" for e in entries)
    assert "Invitation revoked" in alice_client.get("/settings/events-api/").content.decode()  # the Owner's audit log


# --- Revoking -------------------------------------------------------------------------------------------------


def test_a_revoked_invitation_leaves_the_list_and_its_link_stops_working(alice_client, anonymous, acme):
    invite(alice_client, "dave@example.test")
    link = link_sent_to("dave@example.test")
    invitation = Invitation.objects.get()

    response = alice_client.post(f"/settings/invitations/{invitation.pk}/revoke/", follow=True)

    assert "Invitation to dave@example.test revoked" in response.content.decode()
    assert 'data-testid="invitations"' not in response.content.decode()
    page = open_link(anonymous, link)
    assert page.status_code == 410
    assert "This invitation was withdrawn" in page.content.decode()


def test_a_member_cannot_revoke_and_another_teams_owner_gets_404(bob_client, alice, acme, charlie):
    invitation = services.invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    assert bob_client.post(f"/settings/invitations/{invitation.pk}/revoke/").status_code == 403
    outsider = Client()
    outsider.force_login(charlie)
    assert outsider.post(f"/settings/invitations/{invitation.pk}/revoke/").status_code == 404
    assert Invitation.objects.get().state == InvitationState.PENDING


def test_revoking_twice_is_recorded_once(alice, acme):
    invitation = services.invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    assert services.invitation_revoke(invitation=invitation, by=alice) is True
    assert services.invitation_revoke(invitation=invitation, by=alice) is False
    assert AuditEntry.objects.filter(action=AuditAction.INVITATION_REVOKED).count() == 1


def test_the_database_allows_one_open_invitation_per_address_and_team(alice, acme):
    from django.db import IntegrityError

    services.invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    with pytest.raises(IntegrityError, match="accounts_invitation_one_open_per_email"):
        Invitation.objects.create(
            team=acme, email="dave@example.test", token_digest="0" * 64, expires_at=timezone.now()
        )


# --- Accepting ------------------------------------------------------------------------------------------------


def test_a_new_user_sets_a_name_and_password_and_is_logged_in(alice_client, anonymous, acme):
    invite(alice_client, "dave@example.test", Role.OWNER)
    link = link_sent_to("dave@example.test")

    page = open_link(anonymous, link)
    assert page.redirect_chain[-1][0] == "/invitations/accept/"  # the secret left the address bar
    assert "Create your Canvas account" in page.content.decode()

    response = anonymous.post(
        "/invitations/accept/",
        {"full_name": "Dave Lee", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        follow=True,
    )

    dave = User.objects.get(email="dave@example.test")
    assert dave.full_name == "Dave Lee"
    assert dave.check_password(NEW_PASSWORD)
    assert get_user(anonymous) == dave
    assert Membership.objects.get(user=dave).role == Role.OWNER
    assert anonymous.session[SESSION_TEAM_KEY] == acme.pk
    assert "Welcome to Acme" in response.content.decode()
    assert Invitation.objects.get().state == InvitationState.ACCEPTED
    entry = AuditEntry.objects.get(action=AuditAction.INVITATION_ACCEPTED)
    assert (entry.actor, entry.member_email, entry.role) == (dave, "dave@example.test", Role.OWNER)


@pytest.mark.parametrize(
    "password1, password2, message",
    [
        pytest.param("short", "short", "This password is too short", id="too-short"),
        pytest.param("password123", "password123", "This password is too common", id="common"),
        pytest.param("dave@example.test1", "dave@example.test1", "too similar", id="like-the-email"),
        pytest.param(NEW_PASSWORD, NEW_PASSWORD + "!", "password fields didn", id="mismatch"),
    ],
)
def test_a_new_users_password_goes_through_djangos_validators(
    alice_client, anonymous, acme, password1, password2, message
):
    invite(alice_client, "dave@example.test")
    open_link(anonymous, link_sent_to("dave@example.test"))

    response = anonymous.post(
        "/invitations/accept/", {"full_name": "Dave", "password1": password1, "password2": password2}
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.filter(email="dave@example.test").exists()
    assert Invitation.objects.get().state == InvitationState.PENDING


def test_an_existing_user_logs_in_then_accepts(alice_client, anonymous, acme, globex):
    dave = make_user("dave@example.test")
    invite(alice_client, "dave@example.test")

    page = open_link(anonymous, link_sent_to("dave@example.test"))
    assert "Log in to accept" in page.content.decode()
    assert anonymous.post("/invitations/accept/").status_code == 200  # no account is made, nothing accepted
    assert Invitation.objects.get().state == InvitationState.PENDING

    login = anonymous.post(
        "/accounts/login/?next=/invitations/accept/", {"username": "dave@example.test", "password": PASSWORD}
    )
    assert login["Location"] == "/invitations/accept/"
    assert "Accept and join Acme" in anonymous.get("/invitations/accept/").content.decode()
    anonymous.post("/invitations/accept/")

    assert Membership.objects.get(user=dave, team=acme).role == Role.MEMBER
    assert dave.check_password(PASSWORD)  # untouched


def test_logged_in_as_someone_else_one_cannot_accept(alice_client, bob, acme):
    invite(alice_client, "dave@example.test")
    bob_client = Client()
    bob_client.force_login(bob)

    page = open_link(bob_client, link_sent_to("dave@example.test"))
    assert page.status_code == 403
    assert "this invitation is for <strong>dave@example.test</strong>" in page.content.decode()
    assert bob_client.post("/invitations/accept/").status_code == 403
    assert Invitation.objects.get().state == InvitationState.PENDING


def test_a_link_works_once(alice_client, anonymous, acme):
    invite(alice_client, "dave@example.test")
    link = link_sent_to("dave@example.test")
    open_link(anonymous, link)
    anonymous.post("/invitations/accept/", {"full_name": "Dave", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    again = open_link(Client(), link)

    assert again.status_code == 410
    assert "This invitation was already used" in again.content.decode()
    assert Membership.objects.filter(team=acme, user__email="dave@example.test").count() == 1


def test_a_link_expires_after_seven_days(alice_client, anonymous, acme):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        invite(alice_client, "dave@example.test")
        link = link_sent_to("dave@example.test")
        clock.shift(timedelta(days=7) - timedelta(seconds=1))
        assert "Join Acme" in open_link(anonymous, link).content.decode()

        clock.shift(timedelta(seconds=1))
        page = open_link(anonymous, link)
        owners_page = alice_client.get("/settings/members/").content.decode()

    assert page.status_code == 410
    assert "This invitation has expired" in page.content.decode()
    assert "Ask an Owner of Acme to invite you again" in page.content.decode()
    assert not User.objects.filter(email="dave@example.test").exists()
    assert '<span class="badge expired">expired</span>' in owners_page  # still listed, to invite again


def test_an_expired_invitation_cannot_be_claimed_by_a_stale_page(alice, acme):
    invitation = services.invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    with time_machine.travel(invitation.expires_at), pytest.raises(ValidationError, match="no longer be used"):
        services.invitation_accept_as_new_user(invitation=invitation, full_name="Dave", password=NEW_PASSWORD)


def test_an_unknown_link_is_404(anonymous, db):
    page = open_link(anonymous, "http://testserver/invitations/" + "A" * 43 + "/")
    assert page.status_code == 404
    assert "This invitation link is not valid" in page.content.decode()
    assert anonymous.get("/invitations/accept/").status_code == 404  # and so is the page without a link
    assert "sessionid" not in anonymous.cookies  # a made-up link writes no session


def test_made_up_links_write_no_session_rows(anonymous, db):
    for _ in range(20):
        assert anonymous.get("/invitations/" + secrets.token_urlsafe(2000) + "/").status_code == 404

    assert Session.objects.count() == 0


def test_two_accepts_at_the_same_moment_add_the_member_once(transactional_db, alice, acme):
    dave = make_user("dave@example.test")
    invitation = services.invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    start = threading.Barrier(2)

    def accept() -> str:
        start.wait()
        try:
            services.invitation_accept(invitation=Invitation.objects.get(pk=invitation.pk), user=dave)
            return "accepted"
        except ValidationError:
            return "refused"
        finally:
            connection.close()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(lambda _: accept(), range(2)))

    assert outcomes == ["accepted", "refused"]
    assert AuditEntry.objects.filter(action=AuditAction.INVITATION_ACCEPTED).count() == 1


def test_two_new_users_signing_up_on_one_link_at_the_same_moment_make_one_account(transactional_db, alice, acme):
    invitation = services.invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    start = threading.Barrier(2)

    def sign_up() -> str:
        start.wait()
        try:
            services.invitation_accept_as_new_user(
                invitation=Invitation.objects.get(pk=invitation.pk), full_name="Dave", password=NEW_PASSWORD
            )
            return "accepted"
        except ValidationError:
            return "refused"  # not an IntegrityError, which would be a 500
        finally:
            connection.close()  # each thread's own connection

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(lambda _: sign_up(), range(2)))

    assert outcomes == ["accepted", "refused"]
    assert User.objects.filter(email="dave@example.test").count() == 1


def test_a_team_sends_at_most_twenty_invitations_an_hour(alice_client, alice, acme, time_machine):
    time_machine.move_to(datetime(2026, 3, 4, 12, 0, tzinfo=UTC), tick=False)
    for number in range(services.INVITATIONS_PER_HOUR):
        assert invite(alice_client, f"person{number}@example.test").status_code == 200

    refused = invite(alice_client, "one-more@example.test")

    assert refused.status_code == 400
    assert services.TOO_MANY_INVITATIONS_MESSAGE in refused.content.decode()
    assert len(mail.outbox) == services.INVITATIONS_PER_HOUR
    assert not Invitation.objects.filter(email="one-more@example.test").exists()
    time_machine.move_to(datetime(2026, 3, 4, 13, 0, 1, tzinfo=UTC), tick=False)  # an hour later: room again
    assert invite(alice_client, "one-more@example.test").redirect_chain
