"""Onboarding on Settings → Events API: examples that run as copied (curl, Python, Node, Segment's libraries) and
the "Waiting for your first event…" status, which polls `token_first_event` until the new token's first event is in.

The rule a newcomer must know: the plaintext of a new token fills the examples only in the one response that
creates it (events.tokens.views.token_create); every other page shows TOKEN_PLACEHOLDER. Each example's text is
written once, in templates/events/examples/<key>.txt, with its values already quoted for its language.
"""

import json
import shlex
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse

from events.models import ApiToken, Event

TOKEN_PLACEHOLDER = "<your token>"  # noqa: S105 (what the examples show in place of a token, not a secret)
EVENT_PATH = "/v1/event"
# Application servers' clocks may differ a little: an event's received_at can precede its token's created_at.
CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True)
class Example:
    key: str  # the template's name, and the id of its tab
    label: str
    install: str  # what to install first, as the language's package manager says it


EXAMPLES = (
    Example("curl", "curl", ""),
    Example("python-requests", "Python (requests)", "pip install requests"),
    Example("node-axios", "Node.js (axios)", "npm install axios"),
    Example("python-segment", "Python (Segment)", "pip install segment-analytics-python"),
    Example("node-segment", "Node.js (Segment)", "npm install @segment/analytics-node"),
)


def events_origin(request: HttpRequest) -> str:
    """Where event streams send events: the origin of EVENTS_PUBLIC_URL, else the origin this page was asked on."""
    return (settings.EVENTS_PUBLIC_URL or request.build_absolute_uri("/")).rstrip("/")


def events_endpoint(request: HttpRequest) -> str:
    return events_origin(request) + EVENT_PATH


def onboarding_context(request: HttpRequest, *, token: ApiToken | None = None, plaintext: str | None = None) -> dict:
    """The context of templates/events/onboarding.html: the examples, filled with `plaintext` when given (only in
    the response that created the token), and with `token` the URL that says when its first event has arrived."""
    origin = events_origin(request)
    values = {"origin": origin, "endpoint": origin + EVENT_PATH, "token": plaintext or TOKEN_PLACEHOLDER}
    # A JSON string is also a valid Python and JavaScript string literal.
    literals = {
        "string": {name: json.dumps(value) for name, value in values.items()},
        "shell": {name: shlex.quote(value) for name, value in values.items()}
        | {"auth_header": shlex.quote(f"X-Auth-Token: {values['token']}")},
    }
    examples = [
        {
            "key": example.key,
            "label": example.label,
            "install": example.install,
            "code": render_to_string(f"events/examples/{example.key}.txt", literals).strip(),
        }
        for example in EXAMPLES
    ]
    return {
        "onboarding": {
            "endpoint": values["endpoint"],
            "examples": examples,
            "with_token": plaintext is not None,
            "first_event_url": reverse("token_first_event", args=[token.pk]) if token else "",
        }
    }


def first_event(token: ApiToken) -> Event | None:
    """The token's first stored event, or None.

    Until the token's first use (authentication sets last_used_at) there is nothing to look for. After it, the
    team's received_at index is read from the token's creation on, which for a new token is where its events are.
    """
    if token.last_used_at is None:
        return None
    return (
        Event.objects.filter(team_id=token.team_id, token=token, received_at__gte=token.created_at - CLOCK_SKEW)
        .order_by("received_at")
        .only("id", "event", "received_at")
        .first()
    )


def first_event_status(token: ApiToken) -> dict:
    """What the onboarding status polls: {"received": false}, or the first event's name, time and Events page link."""
    event = first_event(token)
    if event is None:
        return {"received": False}
    return {
        "received": True,
        "id": event.id,
        "event": event.event,
        "received_at": event.received_at.isoformat(),
        "url": reverse("events_page") + "?" + urlencode({"event": event.event}),
    }
