"""Fixtures for the Events API tests: tokens for the personas' teams and a client that posts events."""

import re

import pytest

from events.tests.event_factories import DOC_EVENT_BODY
from events.tokens import secret, services


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


# A JSON escape of an ASCII character, as a reader would write it out (backslashes doubled in a row's text too).
_ASCII_ESCAPE = re.compile(r"\\+u00([0-7][0-9A-Fa-f])")
_OVERLAPPING_TOKEN = re.compile(f"(?=({secret.TOKEN_PATTERN.pattern}))")


@pytest.fixture
def find_tokens():
    """A function: every string in a text that passes the token checksum, also when spelled with JSON escapes
    (what nothing stored or logged may hold)."""

    def find(text: str) -> list[str]:
        written_out = _ASCII_ESCAPE.sub(lambda match: chr(int(match[1], 16)), text)
        candidates = _OVERLAPPING_TOKEN.findall(written_out)  # `cnv_` + 35 characters + a token holds a token
        return [found for found in candidates if secret.is_well_formed(found)]

    return find


@pytest.fixture
def post_event(client):
    """POST a body to the Events API as an event stream does: JSON, with the token in X-Auth-Token."""

    def post(body: bytes, *, token: str | None, path: str = "/v1/event", **extra):
        headers = {"X-Auth-Token": token} if token is not None else {}
        return client.post(path, body, content_type="application/json", headers=headers, **extra)

    return post
