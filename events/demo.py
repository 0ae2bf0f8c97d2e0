"""Demo events for `seed_demo`, so a fresh `make run` shows a live Events page, catalog and chart: two days of a
storefront's events, and the Events API's example event (EXAMPLE_EVENT, also the OpenAPI schema's first example)
sent minutes before the seed ran, as a first event would be."""

import random
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Team
from events.ingest.storage import event_row, store_batch
from events.ingest.validation import EventPayload, validate_event
from events.models import Event

DEMO_EVENTS = 400
# The example of the Events API's documentation. No timestamp: Canvas stamps it with the time it arrives.
EXAMPLE_EVENT: dict[str, Any] = {
    "version": 1,
    "type": "event",
    "event": "Purchased an Item",
    "properties": {"revenue": "39.95", "shippingMethod": "2-day"},
}
EXAMPLE_SENT_AGO = timedelta(minutes=3)
PRODUCTS = [("Canvas Tote", "19.00"), ("Chart Mug", "12.50"), ("Dashboard Hoodie", "49.50")]


def _demo_payload(rng: random.Random, when) -> EventPayload:
    user = f"user-{rng.randint(1, 60)}"
    name, price = rng.choice(PRODUCTS)
    kind = rng.choices(["Product Viewed", "Product Added", "Order Completed", "Signed Up"], [60, 20, 8, 4])[0]
    properties_of_kind: dict[str, dict[str, Any]] = {
        "Product Viewed": {"product": name, "price": price},
        "Product Added": {"product": name, "price": price, "quantity": rng.randint(1, 3)},
        "Order Completed": {"revenue": price, "shippingMethod": rng.choice(["2-day", "standard"]), "coupon": False},
        "Signed Up": {"plan": rng.choice(["free", "pro"]), "referrer": {"source": "newsletter"}},
    }
    return EventPayload(
        event=kind,
        properties=properties_of_kind[kind],
        timestamp=when,
        original_timestamp=when,
        sent_at=None,
        message_id=None,
        user_id=user,
    )


def _example_payload(received_at: datetime) -> EventPayload:
    payload, problems = validate_event(EXAMPLE_EVENT, received_at=received_at)
    if payload is None:
        raise ValueError(f"EXAMPLE_EVENT is not a valid event: {problems}")
    return payload


def seed_demo_events(*, team: Team) -> int:
    """Store demo events for a team that has none yet, all of them relative to now; returns how many were stored."""
    if Event.objects.filter(team=team).exists():
        return 0
    rng = random.Random(team.slug)  # the same demo every time
    now = timezone.now()
    rows = []
    for _ in range(DEMO_EVENTS):
        when = now - timedelta(seconds=rng.randint(0, 2 * 24 * 3600))
        rows.append(event_row(team_id=team.id, token_id=None, payload=_demo_payload(rng, when), received_at=when))
    example_received_at = now - EXAMPLE_SENT_AGO
    rows.append(
        event_row(
            team_id=team.id,
            token_id=None,
            payload=_example_payload(example_received_at),
            received_at=example_received_at,
        )
    )
    rows.sort(key=lambda row: row[8])  # by received_at, as they would have arrived
    return len(store_batch(rows))
