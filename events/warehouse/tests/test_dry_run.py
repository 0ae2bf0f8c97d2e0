"""events/warehouse/dry_run.py: what storing events would change in the warehouse, without writing."""

import pytest
from django.utils import timezone

from events.ingest.validation import EventPayload
from events.models import CatalogEvent, CatalogProperty, TeamWarehouse
from events.tests.event_factories import fill_catalog, store_event
from events.warehouse.catalog import MAX_CATALOG_EVENTS, MAX_CATALOG_PROPERTIES, catalog_sync
from events.warehouse.dry_run import warehouse_changes

NUMERIC, TEXT = "numeric", "text"


def _payload(event: str, properties: dict, *, type: str = "track") -> EventPayload:
    now = timezone.now()
    return EventPayload(
        event=event, properties=properties, timestamp=now, original_timestamp=None, sent_at=None, message_id=None,
        type=type,
    )  # fmt: skip


@pytest.mark.django_db
def test_dry_run_reports_new_views_and_columns_for_a_new_team(acme):
    changes = warehouse_changes(team=acme, payloads=[_payload("Purchased an Item", {"revenue": "39.95"})])
    assert changes == {
        "schema": "team_acme",
        "views": [
            {"view": "tracks", "event": None, "type": "track", "change": "create"},
            {"view": "purchased_an_item", "event": "Purchased an Item", "type": "track", "change": "create"},
        ],
        "columns": [
            {
                "view": "purchased_an_item",
                "column": "revenue",
                "property": "revenue",
                "type": NUMERIC,
                "change": "add",
            }
        ],
    }


@pytest.mark.django_db
def test_dry_run_reports_added_columns_and_type_changes_and_nothing_else(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1, "coupon": "A"})
    store_event(acme, "Home", {"url": "/"}, type="page", name="Home")
    catalog_sync()
    payloads = [
        _payload("Purchased an Item", {"revenue": "free", "coupon": "B", "address": {"city": "Paris"}}),
        _payload("Home", {"url": "/about", "referrer": "x"}, type="page"),
    ]
    changes = warehouse_changes(team=acme, payloads=payloads)
    assert changes["views"] == []
    assert changes["columns"] == [
        {
            "view": "purchased_an_item",
            "column": "revenue",
            "property": "revenue",
            "type": TEXT,
            "previous_type": NUMERIC,
            "change": "type",
        },
        {
            "view": "purchased_an_item",
            "column": "address_city",
            "property": "address.city",
            "type": TEXT,
            "change": "add",
        },
        {"view": "pages", "column": "referrer", "property": "referrer", "type": TEXT, "change": "add"},
    ]


@pytest.mark.django_db
def test_dry_run_reports_names_and_properties_the_catalog_would_count_as_other(acme):
    store_event(acme, "Purchased an Item", {f"p{i}": i for i in range(MAX_CATALOG_PROPERTIES)})
    catalog_sync()
    fill_catalog(acme, MAX_CATALOG_EVENTS - 2)  # room for one name more
    payloads = [
        _payload("Signed Up", {"plan": "pro"}),  # takes the last place
        _payload("Viewed 1", {"sku": "a"}),
        _payload("Viewed 1", {"sku": "b"}),
        _payload("Purchased an Item", {"p0": 1, "coupon": "A"}),
        _payload("Home", {"url": "/"}, type="page"),
    ]
    changes = warehouse_changes(team=acme, payloads=payloads)
    assert [view["event"] for view in changes["views"]] == ["Signed Up"]
    assert {column["column"] for column in changes["columns"]} == {"plan"}
    assert changes["counted_as_other"] == {
        "events": [{"type": "track", "event": "Viewed 1"}, {"type": "page", "event": "Home"}],
        "properties": [{"type": "track", "event": "Purchased an Item", "property": "coupon"}],
    }


@pytest.mark.django_db
def test_dry_run_writes_nothing(acme, django_assert_max_num_queries):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    catalog_sync()
    counts = (CatalogEvent.objects.count(), CatalogProperty.objects.count(), TeamWarehouse.objects.count())
    with django_assert_max_num_queries(6) as captured:
        warehouse_changes(team=acme, payloads=[_payload("Signed Up", {"plan": "pro"}) for _ in range(50)])
    assert not [q for q in captured.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert (CatalogEvent.objects.count(), CatalogProperty.objects.count(), TeamWarehouse.objects.count()) == counts
