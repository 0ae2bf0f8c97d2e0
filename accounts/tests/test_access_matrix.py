"""Every Settings action, tried by every persona against Acme: only Acme's Owner may act on Acme.

Members are refused with 403; an outsider is answered 404 for Acme's objects (ids leak nothing) and their
team-level actions only ever touch their own team.
"""

import pytest

from accounts.models import Membership, Role, Team
from conftest import make_user

OWNER, MEMBER, OUTSIDER = "alice", "bob", "charlie"


def _actions(bob_membership_id: int):
    return {
        "rename": ("/settings/team/", {"name": "Renamed"}),
        "add-member": ("/settings/members/add/", {"email": "dave@acme.test", "role": "member"}),
        "change-role": (f"/settings/members/{bob_membership_id}/role/", {"role": "owner"}),
        "remove-member": (f"/settings/members/{bob_membership_id}/remove/", {}),
    }


EXPECTED = {
    (OWNER, "rename"): 302,
    (OWNER, "add-member"): 302,
    (OWNER, "change-role"): 302,
    (OWNER, "remove-member"): 302,
    (MEMBER, "rename"): 403,
    (MEMBER, "add-member"): 403,
    (MEMBER, "change-role"): 403,
    (MEMBER, "remove-member"): 403,
    (OUTSIDER, "rename"): 302,
    (OUTSIDER, "add-member"): 302,  # these act on the outsider's own team
    (OUTSIDER, "change-role"): 404,
    (OUTSIDER, "remove-member"): 404,
}


@pytest.mark.parametrize("persona, action", [pytest.param(*key, id="-".join(key)) for key in EXPECTED])
def test_access_matrix(client, alice, bob, charlie, acme, persona, action):
    make_user("dave@acme.test")
    bob_membership = Membership.objects.get(user=bob, team=acme)
    client.force_login({OWNER: alice, MEMBER: bob, OUTSIDER: charlie}[persona])
    url, data = _actions(bob_membership.pk)[action]

    response = client.post(url, data)

    assert response.status_code == EXPECTED[(persona, action)]
    acme.refresh_from_db()
    acme_changed = (
        acme.name == "Renamed"
        or Membership.objects.filter(team=acme, user__email="dave@acme.test").exists()
        or not Membership.objects.filter(pk=bob_membership.pk, role=Role.MEMBER).exists()
    )
    assert acme_changed == (persona == OWNER)


def test_outsider_renaming_renames_only_their_own_team(charlie_client, acme, globex):
    charlie_client.post("/settings/team/", {"name": "Globex Intl"})
    assert Team.objects.get(pk=globex.pk).name == "Globex Intl"
    assert Team.objects.get(pk=acme.pk).name == "Acme"


def test_outsider_never_sees_acme_on_their_settings_page(charlie_client, alice, bob):
    pages = ["/settings/general/", "/settings/members/", "/settings/events-api/"]
    page = "".join(charlie_client.get(url).content.decode() for url in pages)
    assert "alice@acme.test" not in page
    assert "bob@acme.test" not in page
