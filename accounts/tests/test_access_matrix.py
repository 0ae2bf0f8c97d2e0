"""Every Settings action, tried by every persona against Acme: only Acme's Owner may act on Acme.

Members are refused with 403; an outsider is answered 404 for Acme's objects (ids leak nothing) and their
team-level actions only ever touch their own team.
"""

import pytest
from django.core import mail

from accounts import services
from accounts.models import Invitation, Membership, Role, Team

OWNER, MEMBER, OUTSIDER = "alice", "bob", "charlie"


def _actions(bob_membership_id: int, invitation_id: int):
    return {
        "rename": ("/settings/team/", {"name": "Renamed"}),
        "invite": ("/settings/invitations/", {"email": "dave@acme.test", "role": "member"}),
        "revoke-invitation": (f"/settings/invitations/{invitation_id}/revoke/", {}),
        "change-role": (f"/settings/members/{bob_membership_id}/role/", {"role": "owner"}),
        "remove-member": (f"/settings/members/{bob_membership_id}/remove/", {}),
    }


EXPECTED = {
    (OWNER, "rename"): 302,
    (OWNER, "invite"): 302,
    (OWNER, "revoke-invitation"): 302,
    (OWNER, "change-role"): 302,
    (OWNER, "remove-member"): 302,
    (MEMBER, "rename"): 403,
    (MEMBER, "invite"): 403,
    (MEMBER, "revoke-invitation"): 403,
    (MEMBER, "change-role"): 403,
    (MEMBER, "remove-member"): 403,
    (OUTSIDER, "rename"): 302,
    (OUTSIDER, "invite"): 302,  # these act on the outsider's own team
    (OUTSIDER, "revoke-invitation"): 404,
    (OUTSIDER, "change-role"): 404,
    (OUTSIDER, "remove-member"): 404,
}


@pytest.mark.parametrize("persona, action", [pytest.param(*key, id="-".join(key)) for key in EXPECTED])
def test_access_matrix(client, alice, bob, charlie, acme, persona, action):
    bob_membership = Membership.objects.get(user=bob, team=acme)
    invitation = services.invitation_send(
        team=acme, email="erin@acme.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    client.force_login({OWNER: alice, MEMBER: bob, OUTSIDER: charlie}[persona])
    url, data = _actions(bob_membership.pk, invitation.pk)[action]

    response = client.post(url, data)

    assert response.status_code == EXPECTED[(persona, action)]
    acme.refresh_from_db()
    acme_changed = (
        acme.name == "Renamed"
        or Invitation.objects.filter(team=acme, email="dave@acme.test").exists()
        or not Invitation.objects.open().filter(pk=invitation.pk).exists()
        or not Membership.objects.filter(pk=bob_membership.pk, role=Role.MEMBER).exists()
    )
    assert acme_changed == (persona == OWNER)
    emails_to_dave = [message for message in mail.outbox if message.to == ["dave@acme.test"]]
    assert len(emails_to_dave) == (1 if action == "invite" and persona != MEMBER else 0)


@pytest.mark.parametrize(
    "persona, status",
    [
        pytest.param(OWNER, 200, id="owner"),
        pytest.param(MEMBER, 403, id="member"),
        pytest.param(OUTSIDER, 404, id="outsider"),
    ],
)
def test_only_the_owner_sees_the_remove_confirmation(client, alice, bob, charlie, acme, persona, status):
    bob_membership = Membership.objects.get(user=bob, team=acme)
    client.force_login({OWNER: alice, MEMBER: bob, OUTSIDER: charlie}[persona])
    assert client.get(f"/settings/members/{bob_membership.pk}/remove/confirm/").status_code == status


def test_outsider_renaming_renames_only_their_own_team(charlie_client, acme, globex):
    charlie_client.post("/settings/team/", {"name": "Globex Intl"})
    assert Team.objects.get(pk=globex.pk).name == "Globex Intl"
    assert Team.objects.get(pk=acme.pk).name == "Acme"


def test_outsider_never_sees_acme_on_their_settings_page(charlie_client, alice, bob):
    pages = ["/settings/general/", "/settings/members/", "/settings/events-api/"]
    page = "".join(charlie_client.get(url).content.decode() for url in pages)
    assert "alice@acme.test" not in page
    assert "bob@acme.test" not in page
