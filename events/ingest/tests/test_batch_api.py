"""POST /v1/batch and the Segment single-message endpoints."""

import base64
import gzip

import orjson
import pytest

from events.ingest.rejections import KEEP_PER_TEAM, PAYLOAD_LIMIT
from events.ingest.validation import MAX_BATCH_EVENTS
from events.models import Event, RejectedEvent

pytestmark = pytest.mark.django_db


def track(i: int, **extra) -> dict:
    return {"type": "track", "userId": f"user-{i}", "event": "Item Viewed", "properties": {"i": i}, **extra}


@pytest.fixture
def post_batch(client, acme_token):
    _, plaintext = acme_token

    def post(document, *, path: str = "/v1/batch", body: bytes | None = None, **headers):
        return client.post(
            path,
            body if body is not None else orjson.dumps(document),
            content_type="application/json",
            headers={"X-Auth-Token": plaintext, **headers},
        )

    return post


def test_a_clean_batch_is_stored_whole_with_a_receipt_per_event(post_batch, acme):
    response = post_batch({"batch": [track(i, messageId=f"m-{i}") for i in range(3)]})

    assert response.status_code == 200
    body = response.json()
    assert (body["stored"], body["duplicates"], body["rejected"]) == (3, 0, 0)
    assert [r["status"] for r in body["results"]] == ["stored"] * 3
    stored = Event.objects.filter(team=acme).order_by("id")
    assert [e.id for e in stored] == [r["id"] for r in body["results"]]
    assert [e.properties for e in stored] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_invalid_events_are_refused_one_by_one_and_the_rest_stored(post_batch, acme):
    response = post_batch({"batch": [track(0), {"type": "track", "userId": "u"}, track(2, properties=[])]})

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_events"
    assert [r["status"] for r in body["results"]] == ["stored", "rejected", "rejected"]
    assert body["results"][1]["errors"] == [{"path": "/batch/1/event", "message": "This field is required."}]
    assert body["results"][2]["errors"][0]["path"] == "/batch/2/properties"
    assert {f["path"] for f in body["error"]["fields"]} == {"/batch/1/event", "/batch/2/properties"}
    assert Event.objects.filter(team=acme).count() == 1
    assert RejectedEvent.objects.filter(team=acme, endpoint="/v1/batch").count() == 2


def test_resent_and_repeated_message_ids_are_duplicates_pointing_at_the_first_row(post_batch, acme):
    first = post_batch({"batch": [track(0, messageId="a")]}).json()["results"][0]["id"]

    body = post_batch({"batch": [track(0, messageId="a"), track(1, messageId="b"), track(2, messageId="b")]}).json()

    assert body["results"][0] == {"index": 0, "status": "duplicate", "id": first}
    assert body["results"][1]["status"] == "stored"
    assert body["results"][2] == {"index": 2, "status": "duplicate", "id": body["results"][1]["id"]}
    assert Event.objects.filter(team=acme).count() == 2


def test_a_resent_batch_is_recognised_whole_and_a_new_event_in_it_stored(post_batch, acme):
    first = post_batch({"batch": [track(i, messageId=f"r-{i}") for i in range(3)]}).json()

    # The claims' INSERT fails on their primary key; the staging path then tells the three duplicates from the new one.
    again = post_batch({"batch": [track(i, messageId=f"r-{i}") for i in range(4)]}).json()

    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3 + ["stored"]
    assert [r["id"] for r in again["results"][:3]] == [r["id"] for r in first["results"]]
    assert Event.objects.filter(team=acme).count() == 4


def test_canvas_events_are_welcome_in_a_batch(post_batch, acme):
    canvas_event = {"version": 1, "type": "event", "event": "Purchased an Item", "properties": {"revenue": "39.95"}}

    response = post_batch({"batch": [canvas_event, {**canvas_event, "version": 2}]})

    assert response.json()["results"][1]["errors"] == [
        {"path": "/batch/1/version", "message": "Must be the integer 1."}
    ]
    assert Event.objects.get(team=acme).event == "Purchased an Item"


def test_batch_context_and_sent_at_apply_to_items_that_lack_them(post_batch, acme):
    post_batch(
        {
            "batch": [track(0, timestamp="2026-01-01T00:00:00Z"), track(1, context={"ip": "10.0.0.1"})],
            "context": {"library": {"name": "analytics-python"}},
            "sentAt": "2026-01-01T00:00:10Z",
        }
    )

    first, second = Event.objects.filter(team=acme).order_by("id")
    assert first.context == {"library": {"name": "analytics-python"}}
    assert second.context == {"ip": "10.0.0.1"}
    # Segment's clock-skew rule: the client's clock ran 10 s between timestamp and sentAt.
    assert (first.received_at - first.timestamp).total_seconds() == pytest.approx(10, abs=0.001)


def test_gzip_batches_are_accepted(post_batch, acme):
    body = gzip.compress(orjson.dumps({"batch": [track(i) for i in range(50)]}))

    assert post_batch(None, body=body, **{"Content-Encoding": "gzip"}).status_code == 200
    assert Event.objects.filter(team=acme).count() == 50


@pytest.mark.parametrize(
    "document, status, path",
    [
        pytest.param([], 400, "", id="not-an-object"),
        pytest.param({"events": []}, 400, "/batch", id="no-batch"),
        pytest.param({"batch": {}}, 400, "/batch", id="batch-not-array"),
        pytest.param({"batch": [], "extra": 1}, 400, "/extra", id="unknown-field"),
        pytest.param({"batch": [], "sentAt": "yesterday"}, 400, "/sentAt", id="bad-sent-at"),
        pytest.param({"batch": [], "context": "x"}, 400, "/context", id="context-not-object"),
    ],
)
def test_a_malformed_batch_is_refused_whole(post_batch, acme, document, status, path):
    response = post_batch(document)

    assert response.status_code == status
    assert path in [f["path"] for f in response.json()["error"]["fields"]]
    assert not Event.objects.filter(team=acme).exists()


def test_more_than_the_maximum_number_of_events_is_413(post_batch, acme):
    response = post_batch({"batch": [{}] * (MAX_BATCH_EVENTS + 1)})

    assert response.status_code == 413
    assert "2,500" in response.json()["error"]["message"]


def test_a_batch_body_over_500_kb_is_413(post_batch):
    big = {"batch": [track(i, properties={"pad": "x" * 1000}) for i in range(520)]}

    assert post_batch(big).status_code == 413


def test_a_batch_of_2500_small_events_fits(post_batch, acme):
    response = post_batch({"batch": [{"type": "track", "userId": "u", "event": "e"}] * MAX_BATCH_EVENTS})

    assert response.status_code == 200
    assert Event.objects.filter(team=acme).count() == MAX_BATCH_EVENTS


@pytest.mark.parametrize("kind", ["track", "identify", "page", "screen", "group", "alias"])
def test_each_segment_endpoint_stores_its_type(post_batch, acme, kind):
    message = {
        "track": {"event": "Clicked", "userId": "u"},
        "identify": {"userId": "u", "traits": {"plan": "pro"}},
        "page": {"anonymousId": "a", "name": "Home"},
        "screen": {"anonymousId": "a", "name": "Feed"},
        "group": {"userId": "u", "groupId": "g"},
        "alias": {"userId": "u", "previousId": "a"},
    }[kind]

    response = post_batch(message, path=f"/v1/{kind}")

    assert response.status_code == 200
    assert response.json()["success"] is True
    assert Event.objects.get(team=acme).type == kind


def test_segment_endpoints_refuse_a_contradicting_type(post_batch, acme):
    response = post_batch({"type": "identify", "userId": "u"}, path="/v1/track")

    assert response.status_code == 400
    assert response.json()["error"]["fields"][0]["path"] == "/type"


def test_http_basic_with_the_token_as_username_authenticates(client, acme_token, acme):
    _, plaintext = acme_token
    basic = base64.b64encode(f"{plaintext}:".encode()).decode()

    response = client.post(
        "/v1/track",
        orjson.dumps({"userId": "u", "event": "Basic"}),
        content_type="application/json",
        headers={"Authorization": f"Basic {basic}"},
    )

    assert response.status_code == 200
    assert Event.objects.get(team=acme).event == "Basic"


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"cnv_wrong:").decode()])
def test_bad_basic_credentials_are_401(client, acme_token, header):
    response = client.post("/v1/track", b"{}", content_type="application/json", headers={"Authorization": header})

    assert response.status_code == 401


def test_refused_events_are_logged_cut_to_4_kb_and_capped_per_team(post_batch, acme):
    huge_bad = track(0, properties="x" * 10_000)
    post_batch({"batch": [huge_bad]})
    entry = RejectedEvent.objects.get(team=acme)
    assert len(entry.payload) == PAYLOAD_LIMIT
    assert entry.errors[0]["path"] == "/batch/0/properties"

    for _ in range(3):
        post_batch({"batch": [{"type": "track"}] * 50})

    assert RejectedEvent.objects.filter(team=acme).count() == KEEP_PER_TEAM


def test_a_refused_single_event_is_logged_with_its_body(client, acme_token, acme):
    token, plaintext = acme_token
    body = b'{"version": 1, "type": "event", "event": "x", "revenue": 1}'

    client.post("/v1/event", body, content_type="application/json", headers={"X-Auth-Token": plaintext})

    entry = RejectedEvent.objects.get(team=acme)
    assert (entry.endpoint, entry.status, entry.token_hint) == ("/v1/event", 400, token.hint)
    assert entry.payload == body.decode()
    assert entry.errors == [{"path": "/revenue", "message": 'Unknown field "revenue".'}]


def test_unauthenticated_refusals_are_not_logged_against_any_team(client, acme):
    client.post("/v1/event", b"{}", content_type="application/json")

    assert not RejectedEvent.objects.exists()
