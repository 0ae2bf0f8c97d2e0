"""The OpenAPI schema (/v1/openapi.json), the docs page (/v1/docs) and schemathesis fuzzing the live API."""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from drf_spectacular.validation import validate_schema
from playwright.sync_api import sync_playwright

from events.models import Event

CDN_HOSTS = ["cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "fonts.googleapis.com", "fonts.gstatic.com"]
ERROR_STATUSES = {"400", "401", "403", "413", "415", "429", "503"}


@pytest.fixture
def openapi(client) -> dict:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json"
    return json.loads(response.content)


def test_the_schema_is_valid_openapi_3(openapi):
    assert openapi["openapi"].startswith("3.")
    validate_schema(openapi)  # against the OpenAPI Initiative's JSON Schema for 3.0 documents


def test_the_schema_describes_post_v1_event_with_the_token_header(openapi):
    send_event = openapi["paths"]["/v1/event"]["post"]

    assert openapi["components"]["securitySchemes"]["EventsToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Auth-Token",
    }
    assert send_event["security"] == [{"EventsToken": []}]
    assert set(send_event["responses"]) == {"200"} | ERROR_STATUSES
    request_schema = send_event["requestBody"]["content"]["application/json"]["schema"]
    event_request = openapi["components"]["schemas"][request_schema["$ref"].rsplit("/", 1)[1]]
    assert set(event_request["properties"]) == {
        "version",
        "type",
        "event",
        "properties",
        "timestamp",
        "messageId",
        "sentAt",
    }
    assert set(event_request["required"]) == {"version", "type", "event"}
    assert send_event["requestBody"]["required"] is True
    stored = send_event["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(openapi["components"]["schemas"][stored]["properties"]) == {"id", "duplicate"}
    # The slash spelling answers too, but is one operation, documented once.
    assert "/v1/event/" not in openapi["paths"]


class LinkedResources(HTMLParser):
    """Collects the URLs a page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        url = attributes.get("src") if tag in ("script", "img") else attributes.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


def test_the_docs_page_loads_everything_from_this_server(client):
    response = client.get("/v1/docs")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    resources = LinkedResources()
    resources.feed(page)
    assert any(url.endswith(".js") and "swagger-ui-bundle" in url for url in resources.urls)
    assert any(url.endswith(".css") and "swagger-ui" in url for url in resources.urls)
    for url in resources.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert url.startswith(("/static/", "/v1/docs")), url
        loaded = client.get(url)
        assert loaded.status_code == 200, url
        text = b"".join(loaded.streaming_content) if loaded.streaming else loaded.content
        if url.startswith("/v1/docs"):  # the page's own start-up script: it loads the schema from here too
            assert b"https://" not in text and b"http://" not in text
    assert "https://" not in page and "http://" not in page
    for host in CDN_HOSTS:
        assert host not in page


@pytest.mark.browser
def test_the_docs_page_makes_no_request_to_another_host(live_server, settings):
    """In Chromium, under a public-looking host name: every request the page makes goes to this server."""
    host = "events.canvas.test"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, host]
    # live_server serves /static/ through the finders, which do not know the manifest's hashed names.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    port = live_server.url.rsplit(":", 1)[1]
    origin = f"http://{host}:{port}"
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", f"--host-resolver-rules=MAP {host} 127.0.0.1"],
            headless=True,
        )
        page = browser.new_page()
        page.on("request", lambda request: requested.append(request.url))
        # Nothing may leave the machine, even when the test fails.
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(origin) else route.abort())
        page.goto(f"{origin}/v1/docs")
        page.get_by_text("Send one event").wait_for(timeout=10_000)
        page.wait_for_load_state("networkidle")
        browser.close()

    assert f"{origin}/v1/openapi.json" in requested
    assert [url for url in requested if not url.startswith(origin)] == []


@pytest.mark.live
def test_schemathesis_finds_no_server_error(ingest_live_server, transactional_db, acme_token, tmp_path):
    """Schema examples, coverage cases and fuzzed (also schema-violating) requests: none may answer 5xx."""
    _, plaintext = acme_token

    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{ingest_live_server.url}/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"X-Auth-Token: {plaintext}",
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "50",
            "--seed",
            "20121202",
            "--generation-database",
            "none",
            "--request-timeout",
            "10",
            "--no-color",
            "--include-path",
            "/v1/event",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stdout[-6000:] + finished.stderr[-2000:]
    assert re.search(r"Test cases:\s+(\d+) generated, \1 passed", finished.stdout), finished.stdout
    assert Event.objects.exists()  # valid examples got through, so the fuzzing reached storage
