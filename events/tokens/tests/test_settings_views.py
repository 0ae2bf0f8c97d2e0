"""Settings → Events API (events/tokens/views.py, events/tokens/selectors.py and their templates), for each persona:
tokens, the password re-check for old logins, the audit log and the refused-events log."""

import logging
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client

from conftest import PASSWORD
from events.ingest.rejections import rejection_record, rejections_record
from events.ingest.validation import FieldError
from events.models import ApiToken, AuditAction, AuditEntry, RejectedEvent
from events.tokens import secret, services
from events.tokens.forms import NAME_REQUIRED_MESSAGE
from events.tokens.onboarding import EXAMPLES
from events.tokens.selectors import AUDIT_ENTRIES_SHOWN
from events.tokens.views import API_NOT_ENABLED_MESSAGE, FORM_ALREADY_USED_MESSAGE

CREATE_BUTTON = re.compile(r"<button[^>]*>\s*Create token\s*</button>")
OWNERS_ONLY_NOTE = "Only the team's Owners can create"


class _TestIdFinder(HTMLParser):
    def __init__(self, testid: str):
        super().__init__()
        self.testid = testid
        self.found: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("data-testid") == self.testid:
            self.found.append({"tag": tag, **attributes})


def elements_with_testid(response, testid: str) -> list[dict]:
    finder = _TestIdFinder(testid)
    finder.feed(response.content.decode())
    return finder.found


def table_rows(response, testid: str) -> list[str]:
    page = response.content.decode()
    start = page.index(f'data-testid="{testid}"')
    table = page[start : page.index("</table>", start)]
    return re.findall(r"<tr\b[^>]*>(.*?)</tr>", table, flags=re.S)[1:]  # without the header row


def fresh_form_id(client: Client) -> str:
    """The one-time id of the create form, as the browser gets it by loading the Events API page."""
    return client.get("/settings/events-api/").context["token_form"].initial["form_id"]


def create_token(client: Client, name: str = "Production stream"):
    return client.post("/settings/tokens/", {"name": name, "form_id": fresh_form_id(client)})


def shown_token(response) -> str:
    [element] = elements_with_testid(response, "new-token")
    return element["value"]


@pytest.fixture
def live_token(acme_token) -> ApiToken:
    return acme_token[0]


def test_owner_creates_a_token_and_sees_it_once_on_the_token_created_page(alice_client, acme):
    response = create_token(alice_client)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "events/token_created.html" in [template.name for template in response.templates]
    plaintext = shown_token(response)
    assert secret.is_well_formed(plaintext)
    token = ApiToken.objects.get(team=acme)
    assert token.digest == secret.digest(plaintext)
    assert token.name == "Production stream"
    page = response.content.decode()
    assert page.count(plaintext) == 1 + len(EXAMPLES)  # the token's field, and each runnable example
    assert "Shown once: copy it now." in page
    assert 'data-copy-target="new-token"' in page
    [field] = elements_with_testid(response, "new-token")
    assert "autofocus" in field
    assert "readonly" in field
    assert f'data-replace-url="/settings/tokens/{token.pk}/"' in page
    assert list(AuditEntry.objects.values_list("action", "actor__email", "token_hint", "ip_address")) == [
        (AuditAction.TOKEN_CREATED, "alice@acme.test", token.hint, "127.0.0.1")
    ]


def test_the_token_page_a_reload_lands_on_shows_the_token_without_its_plaintext(alice_client, acme):
    plaintext = shown_token(create_token(alice_client))
    token = ApiToken.objects.get(team=acme)

    response = alice_client.get(f"/settings/tokens/{token.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "This token was shown once when it was created." in page
    assert token.hint in page and "Production stream" in page
    assert plaintext not in page and plaintext[4:36] not in page
    assert f'href="/settings/tokens/{token.pk}/revoke/confirm/"' in page


def test_the_page_of_a_revoked_token_says_so(alice_client, live_token):
    alice_client.post(f"/settings/tokens/{live_token.pk}/revoke/")
    page = alice_client.get(f"/settings/tokens/{live_token.pk}/").content.decode()
    assert "Revoked" in page
    assert "revoke/confirm/" not in page


def test_the_old_create_address_opened_with_get_goes_to_the_events_api_page(alice_client):
    response = alice_client.get("/settings/tokens/")
    assert response.status_code == 302
    assert response["Location"] == "/settings/events-api/"


def test_resubmitting_the_same_form_creates_nothing_and_shows_no_token(alice_client, acme):
    form = {"name": "Production stream", "form_id": fresh_form_id(alice_client)}
    plaintext = shown_token(alice_client.post("/settings/tokens/", form))

    resubmitted = alice_client.post("/settings/tokens/", form, follow=True)

    assert ApiToken.objects.filter(team=acme).count() == 1
    assert elements_with_testid(resubmitted, "new-token") == []
    page = resubmitted.content.decode()
    assert plaintext not in page
    assert FORM_ALREADY_USED_MESSAGE in page
    assert AuditEntry.objects.filter(action=AuditAction.TOKEN_CREATED).count() == 1


def test_a_made_up_form_id_creates_nothing(alice_client, acme):
    fresh_form_id(alice_client)
    alice_client.post("/settings/tokens/", {"name": "Production stream", "form_id": "made-up"})
    assert not ApiToken.objects.filter(team=acme).exists()


def test_the_same_form_cannot_create_two_tokens_even_if_the_session_is_replayed(alice_client):
    form_id = fresh_form_id(alice_client)
    session_before = dict(alice_client.session)

    alice_client.post("/settings/tokens/", {"name": "One", "form_id": form_id})
    session = alice_client.session  # a concurrent request would still hold the old session
    session.update(session_before)
    session.save()
    alice_client.post("/settings/tokens/", {"name": "Two", "form_id": form_id})

    assert list(ApiToken.objects.values_list("name", flat=True)) == ["One"]


def test_the_plaintext_is_on_no_later_page(alice_client, acme):
    plaintext = shown_token(create_token(alice_client))
    token = ApiToken.objects.get(team=acme)

    later_pages = [
        "/settings/events-api/",
        f"/settings/tokens/{token.pk}/",
        f"/settings/tokens/{token.pk}/revoke/confirm/",
    ]
    for url in later_pages:
        page = alice_client.get(url).content.decode()
        assert token.hint in page
        assert plaintext not in page
        assert plaintext[4:36] not in page


def test_the_plaintext_is_in_no_log_line(alice_client, caplog):
    caplog.set_level(logging.DEBUG)
    plaintext = shown_token(create_token(alice_client))
    alice_client.get("/settings/events-api/")
    assert plaintext[4:36] not in caplog.text


def test_the_token_list_shows_name_hint_creator_and_last_use(alice_client, live_token):
    [row] = table_rows(alice_client.get("/settings/events-api/"), "token-list")
    assert "Production stream" in row
    assert live_token.hint in row
    assert "alice@acme.test" in row
    assert "never" in row
    assert "Revoke" in row


def test_the_page_shows_the_endpoint_and_examples_with_a_placeholder(alice_client):
    page = alice_client.get("/settings/events-api/").content.decode()
    assert "http://testserver/v1/event" in page
    for example in ["curl", "Python (requests)", "Node.js (axios)"]:
        assert example in page
    assert "&lt;your token&gt;" in page
    assert "cnv_" not in page  # no real token, no token-like string on a page without a new token


def test_member_cannot_create_token(bob_client, acme):
    page = bob_client.get("/settings/events-api/")
    assert page.status_code == 200
    assert not CREATE_BUTTON.search(page.content.decode())
    assert OWNERS_ONLY_NOTE in page.content.decode()

    response = bob_client.post("/settings/tokens/", {"name": "Sneaky", "form_id": "whatever"})

    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_member_sees_the_tokens_without_revoke(bob_client, live_token):
    [row] = table_rows(bob_client.get("/settings/events-api/"), "token-list")
    assert live_token.hint in row
    assert "Revoke" not in row


def test_owner_of_a_team_without_the_api_cannot_create_token(alice_client, acme):
    acme.events_api_enabled = False
    acme.save()

    page = alice_client.get("/settings/events-api/").content.decode()
    assert API_NOT_ENABLED_MESSAGE in page
    assert not CREATE_BUTTON.search(page)

    response = alice_client.post("/settings/tokens/", {"name": "Production stream", "form_id": "whatever"})
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_a_paused_team_still_lists_its_tokens_and_can_revoke_them(alice_client, acme, live_token):
    acme.events_api_enabled = False
    acme.save()

    page = alice_client.get("/settings/events-api/").content.decode()
    assert API_NOT_ENABLED_MESSAGE in page
    assert live_token.hint in page
    assert not CREATE_BUTTON.search(page)

    alice_client.post(f"/settings/tokens/{live_token.pk}/revoke/")
    live_token.refresh_from_db()
    assert live_token.is_revoked


def test_a_fresh_login_creates_a_token_without_the_password_again(alice_client):
    response = alice_client.post("/settings/tokens/", {"name": "Fresh", "form_id": fresh_form_id(alice_client)})

    assert response.status_code == 200
    assert ApiToken.objects.filter(name="Fresh").exists()


def test_a_login_older_than_15_minutes_must_confirm_the_password(alice_client, time_machine):
    time_machine.move_to(datetime.now(UTC) + timedelta(minutes=16), tick=False)
    page = alice_client.get("/settings/events-api/").content.decode()
    assert 'name="password"' in page

    def post(**password):
        return alice_client.post(
            "/settings/tokens/", {"name": "Old", "form_id": fresh_form_id(alice_client), **password}
        )

    refused, wrong, right = post(), post(password="guess"), post(password=PASSWORD)

    assert refused.status_code == 400 and "This field is required." in refused.content.decode()
    assert wrong.status_code == 400 and "That is not your password." in wrong.content.decode()
    assert right.status_code == 200
    assert ApiToken.objects.filter(name="Old").count() == 1
    # Confirming counts as a fresh login for the next 15 minutes.
    time_machine.shift(timedelta(minutes=14))
    assert 'name="password"' not in alice_client.get("/settings/events-api/").content.decode()


@pytest.mark.parametrize(
    "name, message",
    [
        pytest.param("", NAME_REQUIRED_MESSAGE, id="empty"),
        pytest.param("   ", NAME_REQUIRED_MESSAGE, id="only-spaces"),
        pytest.param("x" * 101, "at most 100 characters", id="too-long"),
    ],
)
def test_a_bad_name_is_a_field_error(alice_client, name, message):
    response = alice_client.post("/settings/tokens/", {"name": name, "form_id": fresh_form_id(alice_client)})

    assert response.status_code == 400
    assert re.search(rf'<small class="error">[^<]*{re.escape(message)}', response.content.decode())
    assert elements_with_testid(response, "new-token") == []
    assert not ApiToken.objects.exists()


def test_the_corrected_form_creates_the_token(alice_client, acme):
    form_id = fresh_form_id(alice_client)
    alice_client.post("/settings/tokens/", {"name": "", "form_id": form_id})

    response = alice_client.post("/settings/tokens/", {"name": "Production stream", "form_id": form_id})

    assert secret.is_well_formed(shown_token(response))
    assert ApiToken.objects.filter(team=acme).count() == 1


def test_owner_revokes_a_token_after_confirming(alice_client, live_token):
    confirm = alice_client.get(f"/settings/tokens/{live_token.pk}/revoke/confirm/")
    assert confirm.status_code == 200
    assert "Revocation is permanent" in confirm.content.decode()
    assert live_token.hint in confirm.content.decode()
    assert not ApiToken.objects.get(pk=live_token.pk).is_revoked  # showing the page changes nothing

    response = alice_client.post(f"/settings/tokens/{live_token.pk}/revoke/", follow=True)

    assert response.redirect_chain == [("/settings/events-api/", 302)]
    live_token.refresh_from_db()
    assert live_token.is_revoked
    assert "revoked" in response.content.decode()
    [row] = table_rows(response, "token-list")  # still listed, as revoked
    assert f"Revoked on {live_token.revoked_at:%Y-%m-%d %H:%M} UTC" in row
    assert "Revoke</a>" not in row
    assert AuditEntry.objects.filter(action=AuditAction.TOKEN_REVOKED, token_hint=live_token.hint).count() == 1


def test_revoking_needs_a_post(alice_client, live_token):
    assert alice_client.get(f"/settings/tokens/{live_token.pk}/revoke/").status_code == 405
    assert not ApiToken.objects.get(pk=live_token.pk).is_revoked


def test_a_revoked_token_cannot_be_revoked_again(alice_client, live_token):
    alice_client.post(f"/settings/tokens/{live_token.pk}/revoke/")
    assert alice_client.get(f"/settings/tokens/{live_token.pk}/revoke/confirm/").status_code == 404
    assert alice_client.post(f"/settings/tokens/{live_token.pk}/revoke/").status_code == 404
    assert AuditEntry.objects.filter(action=AuditAction.TOKEN_REVOKED).count() == 1


@pytest.mark.parametrize(
    "method, suffix", [("get", ""), ("get", "revoke/confirm/"), ("post", "revoke/")], ids=["page", "confirm", "revoke"]
)
def test_outsider_cannot_find_another_teams_token(charlie_client, live_token, method, suffix):
    response = getattr(charlie_client, method)(f"/settings/tokens/{live_token.pk}/{suffix}")
    assert response.status_code == 404
    assert not ApiToken.objects.get(pk=live_token.pk).is_revoked


@pytest.mark.parametrize(
    "method, suffix", [("get", ""), ("get", "revoke/confirm/"), ("post", "revoke/")], ids=["page", "confirm", "revoke"]
)
def test_member_cannot_see_or_revoke_a_token(bob_client, live_token, method, suffix):
    response = getattr(bob_client, method)(f"/settings/tokens/{live_token.pk}/{suffix}")
    assert response.status_code == 403
    assert not ApiToken.objects.get(pk=live_token.pk).is_revoked


def test_outsider_sees_nothing_of_another_teams_tokens(charlie_client, live_token):
    page = charlie_client.get("/settings/events-api/").content.decode()
    assert live_token.hint not in page
    assert "Production stream" not in page
    assert "alice@acme.test" not in page


@pytest.mark.parametrize(
    "method, url",
    [
        pytest.param("get", "/settings/events-api/", id="page"),
        pytest.param("post", "/settings/tokens/", id="create"),
        pytest.param("get", "/settings/tokens/1/", id="token"),
        pytest.param("get", "/settings/tokens/1/revoke/confirm/", id="confirm"),
        pytest.param("post", "/settings/tokens/1/revoke/", id="revoke"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(client, db, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_owners_see_the_last_fifty_audit_entries(alice_client, acme, alice):
    for number in range(AUDIT_ENTRIES_SHOWN + 5):
        services.api_token_create(team=acme, created_by=alice, name=f"Stream {number}", ip="192.0.2.1")
    newest = AuditEntry.objects.filter(team=acme).first()

    rows = table_rows(alice_client.get("/settings/events-api/"), "audit-log")

    assert len(rows) == AUDIT_ENTRIES_SHOWN
    assert newest.token_hint in rows[0]
    assert "alice@acme.test" in rows[0]
    assert "192.0.2.1" in rows[0]
    assert "Token created" in rows[0]


def test_members_see_no_audit_log(bob_client, live_token):
    assert elements_with_testid(bob_client.get("/settings/events-api/"), "audit-log") == []


def test_outsiders_see_only_their_own_teams_audit_log(charlie_client, live_token, globex, charlie):
    services.api_token_create(team=globex, created_by=charlie, name="Globex stream")
    rows = table_rows(charlie_client.get("/settings/events-api/"), "audit-log")
    assert len(rows) == 1
    assert live_token.hint not in rows[0]


class _IdCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.ids.extend(value for name, value in attrs if name == "id")


@pytest.mark.parametrize("persona", ["alice_client", "bob_client"])
def test_every_id_on_the_events_api_page_is_unique(request, persona, live_token):
    client = request.getfixturevalue(persona)
    collector = _IdCollector()
    collector.feed(client.get("/settings/events-api/").content.decode())
    assert len(collector.ids) == len(set(collector.ids)), sorted(collector.ids)


def test_the_token_name_label_points_at_the_token_field(alice_client):
    page = alice_client.get("/settings/events-api/").content.decode()
    form = page[page.index('class="create-token"') :]
    label_then_field = r'<label for="id_token_name">Token name</label>\s*<input[^>]*name="name"[^>]*id="id_token_name"'
    assert re.search(label_then_field, form)


def test_refused_events_are_shown_to_the_team_with_path_and_reason(bob_client, acme, globex, live_token):
    rejections_record(
        [
            rejection_record(
                team_id=acme.id,
                token_id=live_token.id,
                token_hint=live_token.hint,
                endpoint="/v1/event",
                status=400,
                payload=b'{"version": 2}',
                problems=[FieldError("/version", "Must be the integer 1.")],
            ),
            rejection_record(
                team_id=globex.id,
                token_id=None,
                token_hint="cnv_…zzzz",
                endpoint="/v1/event",
                status=400,
                payload=b"x",
                problems=[],
            ),
        ]
    )

    [row] = table_rows(bob_client.get("/settings/events-api/"), "refused-events")

    assert "/version" in row and "Must be the integer 1." in row
    assert "Production stream" in row and live_token.hint in row  # the token by its name
    assert "400" in row and "Bad Request" in row
    assert RejectedEvent.objects.count() == 2  # another team's refusals stay theirs


def test_a_burst_shows_its_count_and_a_revoked_token_its_revocation(bob_client, acme, alice, live_token, time_machine):
    time_machine.move_to(datetime(2026, 3, 4, 5, 6, tzinfo=UTC), tick=False)
    services.api_token_revoke(token=live_token, by=alice)
    RejectedEvent.objects.create(
        team=acme,
        token=live_token,
        token_hint=live_token.hint,
        endpoint="/v1/batch",
        status=401,
        count=1234,
        received_at=datetime(2026, 3, 5, 0, 0, tzinfo=UTC),
        last_received_at=datetime(2026, 3, 5, 1, 30, tzinfo=UTC),
    )

    [row] = table_rows(bob_client.get("/settings/events-api/"), "refused-events")

    assert "\N{MULTIPLICATION SIGN} 1234" in row
    assert "2026-03-05 01:30:00" in row and "first 2026-03-05 00:00:00" in row
    assert "revoked on 2026-03-04" in row


def test_revoked_tokens_stay_listed_greyed_with_when_and_who(bob_client, acme, alice, live_token):
    services.api_token_create(team=acme, created_by=alice, name="Staging stream")
    services.api_token_revoke(token=live_token, by=alice)

    page = bob_client.get("/settings/events-api/")
    live_row, revoked_row = table_rows(page, "token-list")

    assert "Staging stream" in live_row and "Live" in live_row
    assert "Production stream" in revoked_row
    assert f"Revoked on {live_token.revoked_at:%Y-%m-%d %H:%M} UTC" in revoked_row
    assert "by alice@acme.test" in revoked_row
    assert [row["class"] for row in elements_with_testid(page, "revoked-token")] == ["revoked-token"]


def test_outsiders_never_see_another_teams_refused_events(charlie_client, acme, live_token):
    rejections_record(
        [
            rejection_record(
                team_id=acme.id,
                token_id=live_token.id,
                token_hint=live_token.hint,
                endpoint="/v1/event",
                status=415,
                payload=b"",
                problems=[],
            )
        ]
    )

    response = charlie_client.get("/settings/events-api/")

    assert elements_with_testid(response, "refused-events") == []
    assert live_token.hint not in response.content.decode()
