"""Staff pages (events/admin.py, the Team admin in accounts/admin.py): revoke and switch off, never see a secret;
see how far the catalog sync is behind."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Invitation, Role, Team
from accounts.services import invitation_send
from conftest import make_user
from events.ingest import errors
from events.ingest.errors import ApiError
from events.models import ApiToken, AuditAction, AuditEntry, CatalogSyncState
from events.tests.event_factories import store_event
from events.tokens import services
from events.tokens.authentication import authenticate_token
from events.warehouse.catalog import catalog_sync
from events.warehouse.naming import warehouse_for_team

TOKENS = "/admin/events/apitoken/"
AUDIT = "/admin/events/auditentry/"
TEAMS = "/admin/accounts/team/"


@pytest.fixture
def staff(db):
    return make_user("admin@canvas.test", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_staff_see_the_token_list(staff_client, acme_token):
    token, _ = acme_token
    response = staff_client.get(TOKENS)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Production stream" in page
    assert token.hint in page
    assert "Acme" in page


def test_staff_cannot_add_a_token(staff_client, db):
    assert staff_client.get(f"{TOKENS}add/").status_code == 403
    assert f'href="{TOKENS}add/"' not in staff_client.get(TOKENS).content.decode()


def test_staff_cannot_edit_or_delete_a_token(staff_client, acme_token):
    token, _ = acme_token
    change_page = staff_client.get(f"{TOKENS}{token.pk}/change/").content.decode()
    assert 'name="digest"' not in change_page
    assert 'name="name"' not in change_page

    staff_client.post(f"{TOKENS}{token.pk}/change/", {"name": "Hijacked", "digest": "0" * 64})

    assert ApiToken.objects.get(pk=token.pk).name == "Production stream"
    assert ApiToken.objects.get(pk=token.pk).digest == token.digest
    assert staff_client.get(f"{TOKENS}{token.pk}/delete/").status_code == 403
    assert "delete_selected" not in staff_client.get(TOKENS).content.decode()


def test_bulk_revoke_revokes_the_selected_tokens_and_audits_each_once(
    staff_client, staff, acme, alice, acme_token, django_capture_on_commit_callbacks
):
    first, first_plaintext = acme_token
    second, _ = services.api_token_create(team=acme, created_by=alice, name="Staging stream")
    kept, kept_plaintext = services.api_token_create(team=acme, created_by=alice, name="Kept stream")
    services.api_token_revoke(token=second, by=alice)
    authenticate_token(first_plaintext)  # cached: revocation must reach the cache, not just the table

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(TOKENS, {"action": "revoke_tokens", "_selected_action": [first.pk, second.pk]})

    assert response.status_code == 302
    assert "1 token(s) revoked" in staff_client.get(response["Location"]).content.decode()
    first.refresh_from_db()
    assert first.is_revoked
    assert first.revoked_by == staff
    assert not ApiToken.objects.get(pk=kept.pk).is_revoked
    staff_revocations = AuditEntry.objects.filter(action=AuditAction.TOKEN_REVOKED, actor=staff)
    assert list(staff_revocations.values_list("token_hint", "ip_address")) == [(first.hint, "127.0.0.1")]
    with pytest.raises(ApiError) as refused:
        authenticate_token(first_plaintext)
    assert refused.value.status_code == 401
    assert authenticate_token(kept_plaintext).id == kept.pk


def test_disabling_a_team_stops_its_tokens_and_enabling_restores_them(
    staff_client, staff, acme, acme_token, django_capture_on_commit_callbacks
):
    token, plaintext = acme_token
    authenticate_token(plaintext)

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(TEAMS, {"action": "disable_events_api", "_selected_action": [acme.pk]})

    with pytest.raises(ApiError) as refused:
        authenticate_token(plaintext)
    assert refused.value.status_code == 403
    assert refused.value.code == errors.API_DISABLED[0]
    assert not ApiToken.objects.get(pk=token.pk).is_revoked

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(TEAMS, {"action": "enable_events_api", "_selected_action": [acme.pk]})

    assert authenticate_token(plaintext).id == token.pk
    assert list(
        AuditEntry.objects.filter(team=acme, actor=staff).order_by("id").values_list("action", "ip_address")
    ) == [(AuditAction.API_DISABLED, "127.0.0.1"), (AuditAction.API_ENABLED, "127.0.0.1")]


def test_switching_the_api_in_the_team_form_goes_through_the_service(
    staff_client, staff, django_capture_on_commit_callbacks
):
    team = Team.objects.create(name="Initech", slug="initech", events_api_enabled=False)
    form = {
        "name": "Initech",
        "slug": "initech",
        "events_api_enabled": "on",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"{TEAMS}{team.pk}/change/", form)

    assert response.status_code == 302
    team.refresh_from_db()
    assert team.events_api_enabled
    assert team.events_api_changed_by == staff
    assert list(AuditEntry.objects.filter(team=team).values_list("action", "actor__email")) == [
        (AuditAction.API_ENABLED, "admin@canvas.test")
    ]


def test_the_audit_log_is_read_only(staff_client, acme_token):
    entry = AuditEntry.objects.get()
    url = f"{AUDIT}{entry.pk}"

    assert staff_client.get(AUDIT).status_code == 200
    assert staff_client.get(f"{AUDIT}add/").status_code == 403
    assert staff_client.post(f"{AUDIT}add/", {"action": AuditAction.TOKEN_CREATED}).status_code == 403
    view_page = staff_client.get(f"{url}/change/")
    assert view_page.status_code == 200  # view-only
    assert 'name="_save"' not in view_page.content.decode()
    assert staff_client.post(f"{url}/change/", {"token_hint": "forged"}).status_code == 403
    assert staff_client.get(f"{url}/delete/").status_code == 403
    assert staff_client.post(f"{url}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in staff_client.get(AUDIT).content.decode()
    staff_client.post(AUDIT, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert AuditEntry.objects.get(pk=entry.pk).token_hint == entry.token_hint


def test_the_plaintext_never_shows_in_the_admin(staff_client, acme, acme_token):
    token, plaintext = acme_token
    authenticate_token(plaintext)
    entry = AuditEntry.objects.get()
    pages = [
        "/admin/",
        TOKENS,
        f"{TOKENS}?q={token.hint[-4:]}",
        f"{TOKENS}{token.pk}/change/",
        AUDIT,
        f"{AUDIT}{entry.pk}/change/",
        TEAMS,
        f"{TEAMS}{acme.pk}/change/",
    ]
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert plaintext not in page, url
        assert plaintext[4:36] not in page, url


def test_members_of_teams_cannot_open_the_admin(alice_client, acme_token):
    response = alice_client.get(TOKENS)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_see_which_teams_sync_fails_why_and_since_when(staff_client, acme, globex):
    failing = warehouse_for_team(team=acme)
    warehouse_for_team(team=globex)
    failing.record_sync_failure(step="views", error=RuntimeError("relation purchased_an_item is not a view"))
    failing.refresh_from_db()

    page = staff_client.get("/admin/events/teamwarehouse/?sync_failing_since__isnull=False").content.decode()

    assert "Acme" in page and "Globex" not in page
    assert "relation purchased_an_item is not a view" in page
    assert "Views" in page
    assert str(failing.sync_failing_since.year) in page
    assert staff_client.get(f"/admin/events/teamwarehouse/{failing.pk}/change/").status_code == 200
    assert staff_client.get("/admin/events/teamwarehouse/add/").status_code == 403


ACCESS_REQUESTS = "/admin/events/accessrequest/"


def test_staff_enable_the_api_from_a_pending_access_request_and_resolve_it(
    staff_client, staff, alice, acme, globex, django_capture_on_commit_callbacks
):
    Team.objects.filter(pk__in=[acme.pk, globex.pk]).update(events_api_enabled=False)
    request = services.events_api_request_access(team=acme, by=alice, note="Checkout events")
    services.events_api_request_access(team=globex, by=alice)

    pending = staff_client.get(f"{ACCESS_REQUESTS}?status=pending").content.decode()
    assert "Checkout events" in pending and "Globex" in pending

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"{ACCESS_REQUESTS}?status=pending", {"action": "enable_events_api", "_selected_action": [request.pk]}
        )

    assert "Events API enabled for 1 team(s)." in staff_client.get(response["Location"]).content.decode()
    request.refresh_from_db()
    assert (request.resolved_by, request.resolved_at is not None) == (staff, True)
    acme.refresh_from_db()
    assert acme.events_api_enabled and acme.events_api_changed_by == staff
    assert list(AuditEntry.objects.filter(team=acme, actor=staff).values_list("action", "ip_address")) == [
        (AuditAction.API_ENABLED, "127.0.0.1")
    ]
    still_pending = staff_client.get(f"{ACCESS_REQUESTS}?status=pending").content.decode()
    assert "Checkout events" not in still_pending and "Globex" in still_pending


def test_access_requests_are_made_by_owners_not_staff(staff_client, alice, acme):
    request = services.events_api_request_access(team=acme, by=alice)
    assert staff_client.get(f"{ACCESS_REQUESTS}add/").status_code == 403
    assert staff_client.get(f"{ACCESS_REQUESTS}{request.pk}/delete/").status_code == 403
    assert 'name="note"' not in staff_client.get(f"{ACCESS_REQUESTS}{request.pk}/change/").content.decode()


def test_staff_see_invitations_but_neither_make_nor_read_their_links(staff_client, alice, acme):
    invitation = invitation_send(
        team=acme, email="dave@example.test", role=Role.MEMBER, invited_by=alice, site_url="http://testserver/"
    )
    listing = staff_client.get("/admin/accounts/invitation/").content.decode()
    detail = staff_client.get(f"/admin/accounts/invitation/{invitation.pk}/change/").content.decode()

    assert "dave@example.test" in listing
    assert invitation.token_digest not in listing + detail
    assert staff_client.get("/admin/accounts/invitation/add/").status_code == 403
    assert Invitation.objects.get().state == "pending"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs the PostgreSQL sequence")
def test_staff_see_how_far_the_catalog_sync_is_behind(staff_client, acme, time_machine):
    time_machine.move_to(datetime(2026, 12, 8, 12, 0, tzinfo=UTC), tick=False)
    catalog_sync()
    CatalogSyncState.objects.update(open_gaps=[])
    store_event(acme, "Signed Up", received_at=timezone.now() - timedelta(seconds=75))
    store_event(acme, "Signed Up")

    page = staff_client.get("/admin/events/catalogsyncstate/").content.decode()
    assert re.search(r'<td class="field-lag_events">2</td><td class="field-lag_seconds">75</td>', page)
