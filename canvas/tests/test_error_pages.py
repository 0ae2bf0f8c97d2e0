"""The error pages with DEBUG off (as the suite runs): the site's look, the reason, a way back, no internals.

Django's own error views render templates/400.html, 403.html, 403_csrf.html, 404.html and 500.html;
canvas.middleware.MethodNotAllowedPageMiddleware renders 405.html. The Events API keeps its JSON errors.
"""

import pytest
from django.template.loader import render_to_string
from django.test import Client

from accounts.access import OWNER_ONLY_MESSAGE
from canvas.tests.failing_urls import FAILURE_DETAIL
from events.ingest import errors
from events.tokens.services import api_token_create

# What Django's debug pages show and a production page must not.
DEBUG_MARKERS = ("Traceback", "URLconf", "Django tried these URL patterns", "DEBUG = True", "canvas.urls")


def assert_styled_error_page(response, *, status: int, template: str) -> str:
    assert response.status_code == status
    assert template in [t.name for t in response.templates]
    page = response.content.decode()
    assert 'data-testid="error-page"' in page
    assert "css/app." in page, "the page carries the site's stylesheet"
    assert 'data-testid="home-link"' in page and 'href="/"' in page
    for marker in DEBUG_MARKERS:
        assert marker not in page
    return page


def test_unknown_page_is_a_styled_404(client):
    page = assert_styled_error_page(client.get("/no-such-page/"), status=404, template="404.html")
    assert "no-such-page" not in page  # Django's debug page echoes the path; this one has no need to


def test_unknown_page_is_a_styled_404_for_a_logged_in_user(alice_client):
    page = assert_styled_error_page(alice_client.get("/no-such-page/"), status=404, template="404.html")
    assert "alice@acme.test" in page  # the header is the site's, with the account menu


def test_members_forced_post_to_an_owner_only_url_is_a_styled_403_with_the_reason(bob_client):
    response = bob_client.post("/settings/team/", {"name": "Taken over"})
    page = assert_styled_error_page(response, status=403, template="403.html")
    assert OWNER_ONLY_MESSAGE.replace("'", "&#x27;") in page
    assert 'href="/settings/"' in page


def test_post_without_csrf_token_is_a_styled_403(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/settings/team/", {"name": "Renamed"})
    page = assert_styled_error_page(response, status=403, template="403_csrf.html")
    assert "That form has expired" in page


def test_get_on_a_form_only_url_is_a_styled_405(alice_client):
    response = alice_client.get("/teams/acme/switch/")
    page = assert_styled_error_page(response, status=405, template="405.html")
    assert response["Allow"] == "POST"
    assert "only receives forms" in page
    assert response["Content-Security-Policy"]  # rendered inside the CSP middleware, so it carries the policy


def test_post_on_a_read_only_url_is_a_styled_405(alice_client):
    response = alice_client.post("/events/")
    page = assert_styled_error_page(response, status=405, template="405.html")
    assert response["Allow"] == "GET"
    assert "not sent a POST request" in page


def test_events_api_keeps_its_json_405(client, acme, alice):
    _, plaintext = api_token_create(team=acme, created_by=alice, name="Production stream")
    response = client.get("/v1/batch", HTTP_X_AUTH_TOKEN=plaintext)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == errors.METHOD_NOT_ALLOWED[0]


def test_events_api_keeps_its_json_404(client):
    response = client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == errors.NOT_FOUND[0]


def test_request_for_an_unknown_host_is_a_styled_400(client):
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    page = assert_styled_error_page(response, status=400, template="400.html")
    assert "evil.example" not in page


def test_server_error_is_a_styled_500_without_the_error(settings, db):
    settings.ROOT_URLCONF = "canvas.tests.failing_urls"
    response = Client(raise_request_exception=False).get("/fail/")
    page = assert_styled_error_page(response, status=500, template="500.html")
    assert FAILURE_DETAIL not in page
    assert "RuntimeError" not in page


@pytest.mark.parametrize("template", ["400.html", "403.html", "403_csrf.html", "404.html", "405.html", "500.html"])
def test_every_error_page_has_a_title(client, template):
    page = render_to_string(template)
    assert "<title>" in page and "<title> ·" not in page
