"""The onboarding component (events/tokens/onboarding.py, templates/events/onboarding.html) and the first-event
status it polls (events.tokens.views.token_first_event), for an Owner, a Member, another team's Owner and no one."""

from datetime import timedelta

import pytest
import time_machine
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from events.models import ApiToken
from events.tokens import services
from events.tokens.onboarding import EXAMPLES, TOKEN_PLACEHOLDER, first_event, onboarding_context

pytestmark = pytest.mark.django_db

EVENT_BODY = b'{"version": 1, "type": "event", "event": "Purchased an Item", "properties": {"revenue": "39.95"}}'


def examples(**kwargs) -> dict[str, str]:
    context = onboarding_context(RequestFactory().get("/settings/", headers={"host": "localhost:8123"}), **kwargs)
    return {example["key"]: example["code"] for example in context["onboarding"]["examples"]}


def first_event_url(token: ApiToken) -> str:
    return f"/settings/tokens/{token.pk}/first-event"


def send_event(client, plaintext: str, body: bytes = EVENT_BODY):
    response = client.post("/v1/event", body, "application/json", headers={"X-Auth-Token": plaintext})
    assert response.status_code == 200, response.content
    return response.json()["id"]


# --- The examples --------------------------------------------------------------------------------------------


def test_every_language_has_an_example(settings):
    settings.EVENTS_PUBLIC_URL = ""
    shown = examples()
    assert list(shown) == ["curl", "python-requests", "node-axios", "python-segment", "node-segment"]
    assert [example.key for example in EXAMPLES] == list(shown)
    assert "curl " in shown["curl"]
    assert "import requests" in shown["python-requests"] and "json={" in shown["python-requests"]
    assert 'require("axios")' in shown["node-axios"]
    assert "import segment.analytics as analytics" in shown["python-segment"]
    assert "analytics.shutdown()" in shown["python-segment"]
    assert "new Analytics({" in shown["node-segment"] and "closeAndFlush()" in shown["node-segment"]


def test_without_events_public_url_the_examples_aim_at_the_pages_own_origin(settings):
    settings.EVENTS_PUBLIC_URL = ""
    shown = examples()
    assert "curl http://localhost:8123/v1/event " in shown["curl"]
    assert '"http://localhost:8123/v1/event"' in shown["python-requests"]
    assert '"http://localhost:8123/v1/event"' in shown["node-axios"]
    assert 'analytics.host = "http://localhost:8123"' in shown["python-segment"]
    assert 'host: "http://localhost:8123" }' in shown["node-segment"]


@pytest.mark.parametrize("configured", ["https://events.example.com", "https://events.example.com/"])
def test_events_public_url_sets_the_origin_of_every_example(settings, configured):
    settings.EVENTS_PUBLIC_URL = configured
    for code in examples().values():
        assert "https://events.example.com" in code
        assert "localhost" not in code
        assert "example.com//" not in code


def test_without_a_new_token_every_example_shows_the_same_placeholder():
    for key, code in examples().items():
        assert TOKEN_PLACEHOLDER in code, key
        assert "cnv_" not in code and "your_api_token" not in code and "your api token" not in code


def test_a_new_tokens_plaintext_fills_every_example(acme_token):
    token, plaintext = acme_token
    for key, code in examples(token=token, plaintext=plaintext).items():
        assert plaintext in code, key
        assert TOKEN_PLACEHOLDER not in code


def test_no_example_carries_a_fixed_timestamp():
    shown = examples()
    assert "$(date -u +%Y-%m-%dT%H:%M:%SZ)" in shown["curl"]
    assert "datetime.now(timezone.utc).isoformat()" in shown["python-requests"]
    assert "new Date().toISOString()" in shown["node-axios"]
    assert all("2012" not in code for code in shown.values())


def test_the_origin_is_quoted_for_each_language_and_escaped_in_the_page(settings):
    settings.EVENTS_PUBLIC_URL = "https://ev'i\"l<b>&.example.com"
    shown = examples()
    assert "curl 'https://ev'\"'\"'i\"l<b>&.example.com/v1/event'" in shown["curl"]
    assert '"https://ev\'i\\"l<b>&.example.com/v1/event"' in shown["python-requests"]

    page = render_to_string("events/onboarding.html", onboarding_context(RequestFactory().get("/settings/")))
    assert "<b>" not in page
    assert "l&lt;b&gt;&amp;.example.com" in page
    assert "&lt;your token&gt;" in page


# --- The page --------------------------------------------------------------------------------------------------


def test_the_settings_page_shows_placeholder_examples_and_no_watcher(bob_client):
    page = bob_client.get("/settings/events-api/").content.decode()
    assert 'data-testid="onboarding"' in page
    assert "http://testserver/v1/event" in page
    assert "&lt;your token&gt;" in page
    assert "data-first-event-url" not in page


def test_the_response_that_creates_a_token_fills_the_examples_and_watches_for_its_first_event(alice_client):
    form_id = alice_client.get("/settings/events-api/").context["token_form"].initial["form_id"]
    page = alice_client.post("/settings/tokens/", {"name": "First", "form_id": form_id}).content.decode()
    token = ApiToken.objects.get(name="First")
    plaintext = page.split('data-testid="new-token"', 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]
    assert page.count(plaintext) == 1 + len(EXAMPLES)
    assert page.count('data-testid="onboarding"') == 1
    assert f'data-first-event-url="{first_event_url(token)}"' in page
    assert "Waiting for your first event…" in page
    assert plaintext not in alice_client.get("/settings/events-api/").content.decode()


def test_a_team_without_the_api_gets_no_examples(alice_client, acme):
    acme.events_api_enabled = False
    acme.save()
    assert 'data-testid="onboarding"' not in alice_client.get("/settings/events-api/").content.decode()


# --- The first-event status -----------------------------------------------------------------------------------


def test_before_any_event_the_status_says_none_received(alice_client, acme_token):
    token, _ = acme_token
    response = alice_client.get(first_event_url(token))
    assert response.status_code == 200
    assert response.json() == {"received": False}
    assert "no-store" in response["Cache-Control"]


def test_before_the_tokens_first_use_a_poll_reads_no_events(alice_client, acme_token, django_assert_num_queries):
    token, _ = acme_token
    alice_client.get(first_event_url(token))
    with django_assert_num_queries(4):  # session, user, membership, token
        alice_client.get(first_event_url(token))


def test_after_an_event_the_status_names_it_and_links_to_it(alice_client, client, acme_token):
    token, plaintext = acme_token
    event_id = send_event(client, plaintext)

    answer = alice_client.get(first_event_url(token)).json()

    assert answer.pop("received_at").startswith(str(timezone.now().year))
    assert answer == {
        "received": True,
        "id": event_id,
        "event": "Purchased an Item",
        "url": "/events/?event=Purchased+an+Item",
    }
    events_page = alice_client.get(answer["url"]).content.decode()
    assert f'data-event-id="{event_id}"' in events_page


def test_the_status_names_the_first_event_not_the_latest(alice_client, client, acme_token):
    token, plaintext = acme_token
    first_id = send_event(client, plaintext, b'{"version": 1, "type": "event", "event": "Signed Up"}')
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        send_event(client, plaintext)

    answer = alice_client.get(first_event_url(token)).json()

    assert (answer["id"], answer["event"]) == (first_id, "Signed Up")


def test_events_of_another_token_do_not_count(alice_client, client, acme_token, acme, alice):
    token, _ = acme_token
    _, other_plaintext = services.api_token_create(team=acme, created_by=alice, name="Other stream")
    send_event(client, other_plaintext)

    assert alice_client.get(first_event_url(token)).json() == {"received": False}
    assert first_event(token) is None


def test_a_member_may_read_the_status(bob_client, acme_token):
    token, _ = acme_token
    assert bob_client.get(first_event_url(token)).json() == {"received": False}


def test_another_teams_user_gets_404(charlie_client, acme_token):
    token, _ = acme_token
    assert charlie_client.get(first_event_url(token)).status_code == 404


def test_anonymous_is_sent_to_log_in(client, acme_token):
    token, _ = acme_token
    response = client.get(first_event_url(token))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_only_get_is_allowed(alice_client, acme_token):
    token, _ = acme_token
    assert alice_client.post(first_event_url(token)).status_code == 405
