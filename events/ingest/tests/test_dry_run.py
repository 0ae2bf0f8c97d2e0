"""?dry_run=1 validates and reports what would be stored and which warehouse tables would change, storing nothing."""

import orjson
import pytest

from events.models import Event, RejectedEvent

pytestmark = pytest.mark.django_db


def test_a_dry_run_event_reports_the_new_view_and_columns_and_stores_nothing(post_event, acme_token, acme):
    _, plaintext = acme_token
    body = {"version": 1, "type": "event", "event": "Purchased an Item", "properties": {"revenue": "39.95"}}

    response = post_event(orjson.dumps(body), token=plaintext, path="/v1/event?dry_run=1")

    assert response.status_code == 200
    report = response.json()
    assert report["dry_run"] is True
    assert report["events"][0]["event"] == "Purchased an Item"
    assert {"view": "purchased_an_item", "event": "Purchased an Item", "type": "track", "change": "create"} in report[
        "warehouse"
    ]["views"]
    assert any(c["column"] == "revenue" and c["type"] == "numeric" for c in report["warehouse"]["columns"])
    assert not Event.objects.exists()


def test_a_dry_run_says_when_a_message_id_is_already_stored(post_event, acme_token):
    _, plaintext = acme_token
    body = orjson.dumps({"version": 1, "type": "event", "event": "Seen", "messageId": "m-1"})
    post_event(body, token=plaintext)

    report = post_event(body, token=plaintext, path="/v1/event?dry_run=1").json()

    assert report["events"][0]["duplicate"] is True
    assert Event.objects.count() == 1


def test_an_invalid_event_in_a_dry_run_is_the_usual_400(post_event, acme_token):
    _, plaintext = acme_token

    response = post_event(b'{"version": 2}', token=plaintext, path="/v1/event?dry_run=1")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"


def test_a_dry_run_batch_reports_valid_and_rejected_items_and_stores_nothing(post_event, acme_token):
    _, plaintext = acme_token
    batch = {"batch": [{"type": "track", "userId": "u", "event": "Clicked", "properties": {"ok": True}}, {"type": "x"}]}

    response = post_event(orjson.dumps(batch), token=plaintext, path="/v1/batch?dry_run=1")

    assert response.status_code == 400
    report = response.json()
    assert [e["event"] for e in report["events"]] == ["Clicked"]
    assert report["rejected"][0]["index"] == 1
    assert any(c["column"] == "ok" and c["type"] == "boolean" for c in report["warehouse"]["columns"])
    assert not Event.objects.exists()
    assert not RejectedEvent.objects.exists()
