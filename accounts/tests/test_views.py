"""The Settings page and its actions, for each persona."""

from django.urls import reverse

from accounts.models import Membership, Role, Team


def test_anonymous_visitors_are_sent_to_login(client, db):
    response = client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_owner_sees_every_section_with_owner_controls(alice_client):
    page = alice_client.get("/settings/").content.decode()
    for text in ["Team", "Members", "Events API", "Rename team", "Send invitation", "alice@acme.test"]:
        assert text in page


def test_member_sees_the_team_without_owner_controls(bob_client, alice):
    page = bob_client.get("/settings/").content.decode()
    assert "alice@acme.test" in page
    assert "Rename team" not in page
    assert "Send invitation" not in page
    assert "Only Owners can invite, remove or change members." in page


def test_team_without_api_asks_for_it_to_be_enabled(alice_client, acme):
    Team.objects.filter(pk=acme.pk).update(events_api_enabled=False)
    assert "Ask the Canvas team to enable the Events API" in alice_client.get("/settings/").content.decode()


def test_owner_renames_the_team(alice_client, acme):
    response = alice_client.post("/settings/team/", {"name": "Acme Corp"})
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"


def test_a_blank_team_name_shows_a_field_error(alice_client, acme):
    response = alice_client.post("/settings/team/", {"name": "  "})
    assert response.status_code == 400
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
    settings_page = alice_client.get("/settings/").content.decode()
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
    assert "Acme" in client.get("/settings/").context["team"].name
    client.post(reverse("team_switch", args=["globex"]))
    assert client.get("/settings/").context["team"].name == "Globex"


def test_switching_to_a_team_one_is_not_in_is_404(alice_client, globex):
    assert alice_client.post(reverse("team_switch", args=["globex"])).status_code == 404


def test_settings_forms_refuse_posts_without_csrf_token(alice, acme):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/settings/team/", {"name": "Hijacked"}).status_code == 403
    acme.refresh_from_db()
    assert acme.name == "Acme"
