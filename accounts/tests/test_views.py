"""The Settings pages and their actions, for each persona."""

import re

import pytest
from django.urls import reverse

from accounts.models import Membership, Role, Team
from conftest import make_user


def test_anonymous_visitors_are_sent_to_login(client, db):
    response = client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def current_page(response) -> str:
    """The title of the side navigation's current page."""
    [title] = re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', response.content.decode())
    return title


def side_navigation(response) -> list[str]:
    page = response.content.decode()
    start = page.index('<nav aria-label="Settings"')
    nav = page[start : page.index("</nav>", start)]
    return re.findall(r"<a [^>]*>([^<]*)</a>", nav)


@pytest.mark.parametrize(
    "persona, api_enabled, landing",
    [
        pytest.param("alice_client", True, "/settings/events-api/", id="owner-with-api"),
        pytest.param("alice_client", False, "/settings/general/", id="owner-without-api"),
        pytest.param("bob_client", True, "/settings/general/", id="member"),
    ],
)
def test_settings_lands_on_the_first_page_for_the_user(request, acme, persona, api_enabled, landing):
    Team.objects.filter(pk=acme.pk).update(events_api_enabled=api_enabled)
    client = request.getfixturevalue(persona)

    response = client.get("/settings/")

    assert response.status_code == 302
    assert response["Location"] == landing
    assert side_navigation(client.get(landing))[0] == current_page(client.get(landing))


def test_owner_with_the_api_finds_events_api_first_in_the_navigation(alice_client):
    assert side_navigation(alice_client.get("/settings/general/")) == ["Events API", "General", "Members", "Warehouse"]


def test_member_finds_general_first_in_the_navigation(bob_client):
    assert side_navigation(bob_client.get("/settings/general/")) == ["General", "Members", "Events API", "Warehouse"]


@pytest.mark.parametrize(
    "url, title",
    [
        ("/settings/general/", "General"),
        ("/settings/members/", "Members"),
        ("/settings/events-api/", "Events API"),
        ("/settings/warehouse/", "Warehouse"),
    ],
)
@pytest.mark.parametrize("persona", ["alice_client", "bob_client"])
def test_every_settings_page_renders_with_its_navigation_entry_current(request, persona, url, title):
    response = request.getfixturevalue(persona).get(url)
    assert response.status_code == 200
    assert '<nav aria-label="Settings"' in response.content.decode()
    assert current_page(response) == title


def test_owner_sees_the_owner_controls_on_each_page(alice_client):
    assert "Rename" in alice_client.get("/settings/general/").content.decode()
    members = alice_client.get("/settings/members/").content.decode()
    for text in ["Send invitation", "alice@acme.test", "Remove"]:
        assert text in members


def test_member_sees_the_team_without_owner_controls(bob_client, alice):
    general = bob_client.get("/settings/general/").content.decode()
    assert "Only Owners can rename the team." in general
    assert 'action="/settings/team/"' not in general
    members = bob_client.get("/settings/members/").content.decode()
    assert "alice@acme.test" in members
    assert "Send invitation" not in members
    assert "<form" not in members.split("<main ", 1)[1]
    assert "Only Owners can invite, remove or change members." in members


@pytest.mark.parametrize("url", ["/settings/", "/settings/general/", "/settings/members/", "/settings/warehouse/"])
def test_a_user_without_a_team_gets_404(client, db, url):
    client.force_login(make_user("loner@nowhere.test"))
    assert client.get(url).status_code == 404


def test_team_without_api_asks_for_it_to_be_enabled(alice_client, acme):
    Team.objects.filter(pk=acme.pk).update(events_api_enabled=False)
    page = alice_client.get("/settings/events-api/").content.decode()
    assert "Ask the Canvas team to enable the Events API" in page


@pytest.mark.parametrize(
    "action, page",
    [
        ("/settings/team/", "/settings/general/"),
        ("/settings/invitations/", "/settings/members/"),
        ("/settings/events-api/request-access/", "/settings/events-api/"),
    ],
    ids=["rename", "invite", "request-access"],
)
def test_a_forms_address_opened_with_get_shows_its_page(alice_client, action, page):
    response = alice_client.get(action)
    assert response.status_code == 302
    assert response["Location"] == page


def test_owner_renames_the_team(alice_client, acme):
    response = alice_client.post("/settings/team/", {"name": "Acme Corp"})
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"


def test_a_blank_team_name_shows_a_field_error_on_the_general_page(alice_client, acme):
    response = alice_client.post("/settings/team/", {"name": "  "})
    assert response.status_code == 400
    assert current_page(response) == "General"
    assert "This field is required." in response.content.decode()


def test_the_last_owner_is_told_why_they_cannot_step_down(alice_client, alice, acme):
    own = Membership.objects.get(user=alice, team=acme)
    response = alice_client.post(f"/settings/members/{own.pk}/role/", {"role": "member"}, follow=True)
    assert "A team must keep at least one Owner" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.OWNER


def test_owner_promotes_and_removes_a_member(alice_client, bob, acme):
    bob_membership = Membership.objects.get(user=bob, team=acme)
    alice_client.post(f"/settings/members/{bob_membership.pk}/role/", {"role": "owner"})
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.OWNER
    alice_client.post(f"/settings/members/{bob_membership.pk}/remove/")
    assert not Membership.objects.filter(pk=bob_membership.pk).exists()


def test_removing_a_member_asks_for_confirmation_first(alice_client, bob, acme):
    bob_membership = Membership.objects.get(user=bob, team=acme)
    settings_page = alice_client.get("/settings/members/").content.decode()
    confirm_url = reverse("member_remove_confirm", args=[bob_membership.pk])
    assert f'href="{confirm_url}"' in settings_page

    confirm_page = alice_client.get(confirm_url)

    assert confirm_page.status_code == 200
    assert "Remove bob@acme.test from Acme?" in confirm_page.content.decode()
    assert f'action="{reverse("member_remove", args=[bob_membership.pk])}"' in confirm_page.content.decode()
    assert Membership.objects.filter(pk=bob_membership.pk).exists()  # a GET removes nobody


def test_the_remove_page_warns_an_owner_who_would_remove_themselves(alice_client, alice, bob, acme):
    Membership.objects.filter(user=bob).update(role=Role.OWNER)
    own = Membership.objects.get(user=alice, team=acme)
    page = alice_client.get(reverse("member_remove_confirm", args=[own.pk])).content.decode()
    assert "This is you." in page


def test_a_user_switches_between_their_teams(client, alice, globex):
    Membership.objects.create(user=alice, team=globex, role=Role.MEMBER)
    client.force_login(alice)
    assert client.get("/settings/general/").context["team"].name == "Acme"
    assert "Switch to Globex" in client.get("/settings/general/").content.decode()
    client.post(reverse("team_switch", args=["globex"]))
    assert client.get("/settings/general/").context["team"].name == "Globex"


def test_switching_to_a_team_one_is_not_in_is_404(alice_client, globex):
    assert alice_client.post(reverse("team_switch", args=["globex"])).status_code == 404


def test_settings_forms_refuse_posts_without_csrf_token(alice, acme):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/settings/team/", {"name": "Hijacked"}).status_code == 403
    acme.refresh_from_db()
    assert acme.name == "Acme"
