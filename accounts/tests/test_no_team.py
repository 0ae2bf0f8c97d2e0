"""A signed-in user without a team (accounts.access.NoTeam, accounts.middleware): a page that says what next."""

import pytest

from accounts.models import Membership
from conftest import make_user
from events.models import AccessRequest


@pytest.mark.parametrize("path", ["/", "/settings/", "/events/"])
def test_staff_without_a_team_land_on_a_page_that_links_to_the_admin(client, acme, path):
    client.force_login(make_user("admin@canvas.test", is_staff=True, is_superuser=True))
    AccessRequest.objects.create(team=acme)

    response = client.get(path, follow=True)

    assert response.status_code == 404
    page = response.content.decode()
    assert "You are Canvas staff" in page
    assert 'href="/admin/" role="button"' in page
    assert "1 team is waiting for the Events API." in page
    assert 'href="/admin/events/accessrequest/?status=pending"' in page


def test_a_user_without_a_team_is_told_to_ask_for_an_invitation(client, db):
    client.force_login(make_user("loner@nowhere.test"))

    response = client.get("/settings/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "You are not a member of any team yet" in page
    assert "Ask an Owner of your team to invite <strong>loner@nowhere.test</strong>" in page
    assert "/admin/" not in page


def test_a_removed_member_lands_on_the_page_at_their_next_request(bob_client, bob):
    Membership.objects.filter(user=bob).delete()
    response = bob_client.post("/settings/team/", {"name": "Taken over"})
    assert "You are not a member of any team yet" in response.content.decode()


def test_a_member_of_a_team_never_sees_it(alice_client):
    assert "not a member of any team" not in alice_client.get("/settings/").content.decode()
