"""Settings → Events API: password re-check for old logins, the refused-events log, tokens of a paused team."""

import time

import pytest

from accounts.reauth import SESSION_KEY
from conftest import PASSWORD
from events.ingest.rejections import rejection_record, rejections_record
from events.ingest.validation import FieldError
from events.models import ApiToken, RejectedEvent

pytestmark = pytest.mark.django_db


def _form_id(client) -> str:
    page = client.get("/settings/").content.decode()
    return page.split('name="form_id" value="', 1)[1].split('"', 1)[0]


def _age_login(client, minutes: int) -> None:
    session = client.session
    session[SESSION_KEY] = time.time() - minutes * 60
    session.save()


def test_a_fresh_login_creates_a_token_without_the_password_again(alice_client):
    response = alice_client.post("/settings/tokens/", {"name": "Fresh", "form_id": _form_id(alice_client)})

    assert response.status_code == 200
    assert ApiToken.objects.filter(name="Fresh").exists()


def test_a_login_older_than_15_minutes_must_confirm_the_password(alice_client):
    _age_login(alice_client, 16)
    page = alice_client.get("/settings/").content.decode()
    assert 'name="password"' in page

    refused = alice_client.post("/settings/tokens/", {"name": "Old", "form_id": _form_id(alice_client)})
    wrong = alice_client.post(
        "/settings/tokens/", {"name": "Old", "form_id": _form_id(alice_client), "password": "guess"}
    )
    right = alice_client.post(
        "/settings/tokens/", {"name": "Old", "form_id": _form_id(alice_client), "password": PASSWORD}
    )

    assert refused.status_code == 400 and "This field is required." in refused.content.decode()
    assert wrong.status_code == 400 and "That is not your password." in wrong.content.decode()
    assert right.status_code == 200
    assert ApiToken.objects.filter(name="Old").count() == 1
    # Confirming counts as a fresh login for the next 15 minutes.
    assert 'name="password"' not in alice_client.get("/settings/").content.decode()


def test_the_same_form_cannot_create_two_tokens_even_if_the_session_is_replayed(alice_client):
    form_id = _form_id(alice_client)
    session_before = dict(alice_client.session)

    alice_client.post("/settings/tokens/", {"name": "One", "form_id": form_id})
    session = alice_client.session  # a concurrent request would still hold the old session
    session.update(session_before)
    session.save()
    alice_client.post("/settings/tokens/", {"name": "Two", "form_id": form_id})

    assert list(ApiToken.objects.values_list("name", flat=True)) == ["One"]


def test_refused_events_are_shown_to_the_team_with_path_and_reason(bob_client, acme, globex):
    rejections_record(
        [
            rejection_record(
                team_id=acme.id,
                token_hint="cnv_…abcd",
                endpoint="/v1/event",
                status=400,
                payload=b'{"version": 2}',
                problems=[FieldError("/version", "Must be the integer 1.")],
            ),
            rejection_record(
                team_id=globex.id, token_hint="cnv_…zzzz", endpoint="/v1/event", status=400, payload=b"x", problems=[]
            ),
        ]
    )

    page = bob_client.get("/settings/").content.decode()

    assert 'data-testid="refused-events"' in page
    assert "/version" in page and "Must be the integer 1." in page
    assert "cnv_…zzzz" not in page  # another team's refusals stay theirs
    assert RejectedEvent.objects.count() == 2


def test_a_paused_team_still_lists_its_tokens_and_can_revoke_them(alice_client, acme, acme_token):
    token, _ = acme_token
    acme.events_api_enabled = False
    acme.save()

    page = alice_client.get("/settings/").content.decode()
    assert "Ask the Canvas team to enable the Events API" in page
    assert token.hint in page
    assert "Create token" not in page

    alice_client.post(f"/settings/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.is_revoked
