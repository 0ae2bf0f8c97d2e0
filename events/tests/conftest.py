"""Fixtures for the Events API tests: tokens for the personas' teams and a client that posts events."""

import pytest

from events import services

# The example body of the Events API page (`POST /v1/event`), byte for byte.
DOC_EVENT_BODY = b"""{
  "version": 1,
  "type": "event",
  "event": "Purchased an Item",
  "properties": {
    "revenue": "39.95",
    "shippingMethod": "2-day"
  },
  "timestamp": "2012-12-02T00:30:08.276Z"
}"""


@pytest.fixture
def doc_event_body() -> bytes:
    return DOC_EVENT_BODY


@pytest.fixture
def acme_token(acme, alice):
    """(ApiToken, plaintext) of a live token of Acme, created by its Owner."""
    return services.api_token_create(team=acme, created_by=alice, name="Production stream")


@pytest.fixture
def globex_token(globex, charlie):
    return services.api_token_create(team=globex, created_by=charlie, name="Globex stream")


@pytest.fixture
def post_event(client):
    """POST a body to the Events API as an event stream does: JSON, with the token in X-Auth-Token."""

    def post(body: bytes, *, token: str | None, path: str = "/v1/event", **extra):
        headers = {"X-Auth-Token": token} if token is not None else {}
        return client.post(path, body, content_type="application/json", headers=headers, **extra)

    return post
