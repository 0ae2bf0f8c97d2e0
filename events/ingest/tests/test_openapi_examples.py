"""The OpenAPI schema's request examples (events/ingest/openapi.py) are events the API takes, and the docs page's
"Try it out" sends them as dry runs, so trying the API from its docs stores nothing."""

import json

import pytest
from django.test import Client
from playwright.sync_api import expect

from events.models import Event

pytest_plugins = ["events.tests.browser"]  # the browser fixture


@pytest.fixture
def operations(client) -> dict[str, dict]:
    schema = json.loads(client.get("/v1/openapi.json").content)
    return {path: item["post"] for path, item in schema["paths"].items()}


def _dry_run(operation: dict) -> dict:
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "dry_run"]
    return parameter


def test_every_operation_has_a_request_example_and_tries_it_as_a_dry_run(operations):
    assert set(operations) == {f"/v1/{name}" for name in
                               ["event", "batch", "track", "identify", "page", "screen", "group", "alias"]}  # fmt: skip
    for path, operation in operations.items():
        assert operation["requestBody"]["content"]["application/json"]["examples"], path
        dry_run = _dry_run(operation)
        assert dry_run["in"] == "query" and dry_run["schema"] == {"type": "boolean"}
        assert [example["value"] for example in dry_run["examples"].values()] == [True], path
        assert "default" not in dry_run and "default" not in dry_run["schema"]  # without it, the API stores


def test_each_example_is_taken_by_the_api_and_the_dry_run_stores_nothing(operations, acme_token):
    _, plaintext = acme_token
    client = Client()  # the API's own client: no session
    for path, operation in operations.items():
        dry_run = next(iter(_dry_run(operation)["examples"].values()))["value"]
        for name, example in operation["requestBody"]["content"]["application/json"]["examples"].items():
            response = client.post(
                f"{path}?dry_run={json.dumps(dry_run)}",
                json.dumps(example["value"]),
                content_type="application/json",
                headers={"X-Auth-Token": plaintext},
            )
            assert response.status_code == 200, (path, name, response.content)
            report = response.json()
            assert report["dry_run"] is True
            assert report.get("rejected", []) == [], (path, name)
            assert len(report["events"]) == len(example["value"].get("batch", [example["value"]]))
    assert not Event.objects.exists()


def test_the_event_example_is_the_demo_datas_first_event(operations):
    from events.demo import EXAMPLE_EVENT

    examples = operations["/v1/event"]["requestBody"]["content"]["application/json"]["examples"]
    assert next(iter(examples.values()))["value"] == EXAMPLE_EVENT
    batch = operations["/v1/batch"]["requestBody"]["content"]["application/json"]["examples"]
    assert [item.get("type") for item in next(iter(batch.values()))["value"]["batch"]] == ["event", "track"]


@pytest.mark.browser
def test_try_it_out_on_the_docs_page_sends_a_dry_run(browser, live_server, plain_static_files, acme_token):
    """In Chromium: authorize with a token, Try it out, Execute, as a reader of the docs would. Nothing is stored."""
    _, plaintext = acme_token
    page = browser.new_page(base_url=live_server.url)
    page.set_default_timeout(15_000)
    page.goto("/v1/docs")
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.locator(".auth-container input").fill(plaintext)
    dialog.locator("button.modal-btn.authorize").click()
    dialog.locator("button.btn-done").click()
    operation = page.locator(".opblock-post", has=page.locator('[data-path="/v1/event"]'))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda response: "/v1/event" in response.url) as answer:
        operation.get_by_role("button", name="Execute").click()
    response = answer.value
    assert "dry_run=true" in response.url
    assert response.status == 200 and response.json()["dry_run"] is True
    expect(operation.locator(".live-responses-table")).to_contain_text('"dry_run": true')
    page.close()
    assert not Event.objects.exists()
