"""Settings → Events API → Request access (events.tokens.access_request_views, services.events_api_request_access)."""

import pytest
from django.test import Client

from accounts.models import Team
from events.models import AccessRequest, AuditAction, AuditEntry
from events.tokens import services

REQUEST_ACCESS = "/settings/events-api/request-access/"


@pytest.fixture
def acme_without_api(acme) -> Team:
    Team.objects.filter(pk=acme.pk).update(events_api_enabled=False)
    acme.refresh_from_db()
    return acme


def test_an_owner_requests_access_once_and_sees_it_pending(alice_client, alice, acme_without_api):
    assert "Request access" in alice_client.get("/settings/events-api/").content.decode()

    first = alice_client.post(REQUEST_ACCESS, {"note": "Our checkout events"}, follow=True)
    again = alice_client.post(REQUEST_ACCESS, {"note": "Please?"}, follow=True)

    [access_request] = AccessRequest.objects.all()
    assert (access_request.team, access_request.requested_by, access_request.note) == (
        acme_without_api,
        alice,
        "Our checkout events",
    )
    assert access_request.resolved_at is None
    page = again.content.decode()
    assert "the Canvas team will get back to you" in page
    assert f"Requested on {access_request.created_at:%-d %b %Y} by alice@acme.test" in page
    assert '<button type="submit">Request access</button>' not in page
    assert first.redirect_chain == [("/settings/events-api/", 302)]
    entry = AuditEntry.objects.get(action=AuditAction.API_ACCESS_REQUESTED)
    assert (entry.team, entry.actor, entry.ip_address) == (acme_without_api, alice, "127.0.0.1")


def test_a_member_sees_the_request_but_cannot_make_one(bob_client, alice, acme_without_api):
    page = bob_client.get("/settings/events-api/").content.decode()
    assert "Ask an Owner of Acme to request access." in page
    assert bob_client.post(REQUEST_ACCESS).status_code == 403
    assert not AccessRequest.objects.exists()

    services.events_api_request_access(team=acme_without_api, by=alice)
    assert "the Canvas team will get back to you" in bob_client.get("/settings/events-api/").content.decode()


def test_an_outsiders_request_is_for_their_own_team_only(charlie_client, globex, acme_without_api):
    Team.objects.filter(pk=globex.pk).update(events_api_enabled=False)
    charlie_client.post(REQUEST_ACCESS)
    assert list(AccessRequest.objects.values_list("team__slug", flat=True)) == ["globex"]


def test_a_team_whose_api_is_on_records_no_request(alice_client, acme):
    response = alice_client.post(REQUEST_ACCESS, follow=True)
    assert "already enabled" in response.content.decode()
    assert not AccessRequest.objects.exists()


def test_the_request_needs_a_csrf_token(alice, acme_without_api):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(REQUEST_ACCESS).status_code == 403
    assert not AccessRequest.objects.exists()


def test_enabling_the_api_resolves_the_pending_request(alice, acme_without_api):
    services.events_api_request_access(team=acme_without_api, by=alice)
    services.events_api_set_enabled(team=acme_without_api, enabled=True, by=None)

    access_request = AccessRequest.objects.get()
    assert access_request.resolved_at is not None
    # Switched off again later, the team can ask anew.
    services.events_api_set_enabled(team=acme_without_api, enabled=False, by=None)
    services.events_api_request_access(team=acme_without_api, by=alice)
    assert AccessRequest.objects.pending().count() == 1


def test_the_database_allows_one_pending_request_per_team(alice, acme_without_api):
    from django.db import IntegrityError

    services.events_api_request_access(team=acme_without_api, by=alice)
    with pytest.raises(IntegrityError, match="events_accessrequest_one_pending"):
        AccessRequest.objects.create(team=acme_without_api, requested_by=alice)


def test_a_note_too_long_is_refused_with_the_reason(alice_client, acme_without_api):
    response = alice_client.post(REQUEST_ACCESS, {"note": "x" * 1001}, follow=True)
    assert "Ensure this value has at most 1000 characters" in response.content.decode()
    assert not AccessRequest.objects.exists()
