"""events/explorer/views.py: the Events page and its JSON endpoints per persona, CSV export, warehouse login."""

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.http import StreamingHttpResponse
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts.models import Membership
from conftest import make_user
from events.explorer.selectors import (
    CATALOG_PAGE_SIZE,
    EVENT_VIEWS_SHOWN,
    EXPORT_CHUNK_BYTES,
    EXPORT_COLUMNS,
    FORMULA_STARTS,
    OTHER_EVENTS,
    PROPERTY_PAGE_SIZE,
    PROPERTY_PREVIEW,
    TAIL_LIMIT,
    VOLUME_RANGES,
    VOLUME_SERIES,
)
from events.explorer.views import WAREHOUSE_NOT_SET_UP
from events.models import CatalogEvent, CatalogOther, Event, EventVolume, TeamWarehouse
from events.tests.event_factories import data_made_in_postgresql, store_event, sync
from events.warehouse.catalog import MAX_CATALOG_EVENTS, MAX_CATALOG_PROPERTIES, catalog_sync
from events.warehouse.credentials import WarehouseLoginUnsafe
from events.warehouse.distinct_count import sketch_add
from events.warehouse.view_definitions import MAX_COLUMNS_PER_VIEW, MAX_EVENT_VIEWS

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse logins need PostgreSQL")

ENDPOINTS = ["/events/", "/events/tail.json", "/events/counts.json", "/events/1.json", "/events/catalog.json",
             "/events/catalog/1/", "/events/catalog/1.json", "/events/volume.json", "/events/export.csv"]  # fmt: skip


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- Access -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ENDPOINTS)
def test_anonymous_visitors_are_sent_to_log_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_user_without_a_team_gets_404(client, db, url):
    client.force_login(make_user("loner@nowhere.test"))
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("persona", ["alice_client", "bob_client"])
def test_owners_and_members_see_the_events_page(request, acme, persona):
    store_event(acme, "Purchased an Item", {"revenue": "39.95", "shippingMethod": "2-day"})
    sync()
    client = request.getfixturevalue(persona)
    page = client.get("/events/").content.decode()
    for text in ["Live tail", "Purchased an Item", "revenue: 39.95", "Catalog", "purchased_an_item", "Export CSV"]:
        assert text in page
    assert 'data-tail-url="/events/tail.json?"' in page
    assert "<script>" not in page  # no inline script: the page must work under a strict Content-Security-Policy


def test_an_outsider_sees_nothing_of_another_team(charlie_client, acme, globex):
    acme_id = store_event(acme, "Acme Secret Launch", {"codename": "roadrunner"})
    store_event(globex, "Globex Event")
    catalog_sync()
    page = charlie_client.get("/events/").content.decode()
    assert "Globex Event" in page
    assert "Acme Secret Launch" not in page and "roadrunner" not in page
    tail = charlie_client.get("/events/tail.json").json()["events"]
    assert [event["event"] for event in tail] == ["Globex Event"]
    assert "Acme" not in json.dumps(charlie_client.get("/events/catalog.json").json())
    assert "Acme" not in json.dumps(charlie_client.get("/events/volume.json?period=30d").json())
    assert charlie_client.get("/events/counts.json").json()["events"] == 1
    assert charlie_client.get("/events/counts.json?event=Acme+Secret+Launch").json()["events"] == 0
    assert "Acme" not in b"".join(charlie_client.get("/events/export.csv").streaming_content).decode()
    response = charlie_client.get(f"/events/{acme_id}.json")
    assert response.status_code == 404
    assert response.json() == charlie_client.get("/events/999999999.json").json()  # as if it did not exist


# --- Live tail and raw JSON -------------------------------------------------------------------------------


def test_the_tail_answers_only_events_stored_after_the_cursor(bob_client, acme):
    first = store_event(acme, "Signed Up")
    second = store_event(acme, "Purchased an Item")
    assert [e["id"] for e in bob_client.get("/events/tail.json").json()["events"]] == [second, first]
    assert [e["id"] for e in bob_client.get(f"/events/tail.json?after_id={first}").json()["events"]] == [second]
    assert bob_client.get(f"/events/tail.json?after_id={second}").json()["events"] == []
    third = store_event(acme, "Signed Up")
    assert [e["id"] for e in bob_client.get(f"/events/tail.json?after_id={second}").json()["events"]] == [third]


def test_the_tail_filters_by_event_name_and_time_range(bob_client, acme):
    day = datetime(2024, 3, 1, tzinfo=UTC)
    store_event(acme, "Signed Up", timestamp=day + timedelta(hours=1))
    inside = store_event(acme, "Purchased an Item", timestamp=day + timedelta(hours=2))
    store_event(acme, "Purchased an Item", timestamp=day + timedelta(hours=5))
    store_event(acme, "Purchased an Item", timestamp=day - timedelta(hours=1))
    query = "event=Purchased+an+Item&since=2024-03-01T00:00&until=2024-03-01T05:00"
    events = bob_client.get(f"/events/tail.json?{query}").json()["events"]
    assert [event["id"] for event in events] == [inside]
    assert events[0] | {"received_at": None} == {
        "id": inside,
        "type": "track",
        "event": "Purchased an Item",
        "timestamp": "2024-03-01T02:00:00Z",
        "original_timestamp": "2024-03-01T02:00:00Z",
        "sent_at": None,
        "received_at": None,
        "message_id": None,
        "user_id": "user-1",
        "anonymous_id": None,
        "preview": "",
    }


@pytest.mark.parametrize(
    "query, field",
    [
        pytest.param("after_id=-1", "after_id", id="negative-cursor"),
        pytest.param("after_id=abc", "after_id", id="cursor-not-a-number"),
        pytest.param("since=yesterday", "since", id="since-not-a-date"),
        pytest.param("since=2024-03-02T00:00&until=2024-03-01T00:00", "until", id="reversed-range"),
        pytest.param("event=" + "x" * 201, "event", id="name-too-long"),
    ],
)
def test_invalid_filters_are_refused_with_the_field_named(bob_client, acme, query, field):
    response = bob_client.get(f"/events/tail.json?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filters"
    assert [problem["path"] for problem in error["fields"]] == [field]
    if field != "after_id":  # the page itself has no cursor
        assert bob_client.get(f"/events/?{query}").status_code == 400


def test_polling_the_tail_costs_a_fixed_number_of_queries(bob_client, acme, django_assert_num_queries):
    for _ in range(20):
        store_event(acme, "Purchased an Item", {"revenue": 1})
    # Session, user, membership, events: the same for 1 new event or 50.
    with django_assert_num_queries(4):
        assert len(bob_client.get("/events/tail.json?after_id=0").json()["events"]) == 20


def test_the_tail_previews_properties_shortly(bob_client, acme):
    store_event(acme, "Purchased an Item", {"a": {"b": "Paris"}, "zz": "x" * 500})
    (event,) = bob_client.get("/events/tail.json").json()["events"]
    assert event["preview"].startswith("a.b: Paris · zz: xxx")
    assert len(event["preview"]) == 120


def test_an_events_raw_json_is_everything_stored(bob_client, acme):
    event_id = store_event(
        acme,
        "Home",
        {"url": "/"},
        type="page",
        name="Home",
        context={"ip": "203.0.113.9"},
        message_id="m-42",
        timestamp=datetime(2024, 3, 1, tzinfo=UTC),
    )
    response = bob_client.get(f"/events/{event_id}.json")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    event = response.json()
    assert event["properties"] == {"url": "/"}
    assert event["context"] == {"ip": "203.0.113.9"}
    assert event["extra"] == {"name": "Home"}
    assert (event["id"], event["type"], event["message_id"], event["timestamp"]) == (
        event_id,
        "page",
        "m-42",
        "2024-03-01T00:00:00Z",
    )


# --- Catalog and volume -----------------------------------------------------------------------------------


def test_the_catalog_lists_names_views_columns_and_presence(bob_client, acme):
    store_event(acme, "Purchased an Item", {"revenue": "39.95", "order": 7})
    store_event(acme, "Purchased an Item", {"revenue": 12})
    catalog_sync()
    (entry,) = bob_client.get("/events/catalog.json").json()["events"]
    assert {key: entry[key] for key in ("name", "type", "table", "count")} == {
        "name": "Purchased an Item",
        "type": "track",
        "table": "purchased_an_item",
        "count": 2,
    }
    assert sorted(entry["properties"], key=lambda p: p["path"]) == [
        {"path": ["order"], "column": "order_", "type": "numeric", "present": 1},
        {"path": ["revenue"], "column": "revenue", "type": "numeric", "present": 2},
    ]
    page = bob_client.get("/events/").content.decode()
    assert "<code>order_</code>" in page and "numeric" in page


def test_volume_per_hour_over_24_hours_by_event_name(bob_client, acme):
    now = timezone.now()
    store_event(acme, "Signed Up", timestamp=now)
    store_event(acme, "Signed Up", timestamp=now - timedelta(hours=2))
    store_event(acme, "Purchased an Item", timestamp=now - timedelta(hours=2))
    store_event(acme, "Purchased an Item", timestamp=now - timedelta(hours=30))  # outside the 24 hours
    catalog_sync()
    volume = bob_client.get("/events/volume.json?period=24h").json()
    assert volume["bucket"] == "hour" and len(volume["starts"]) == 24
    series = {s["event"]: s["counts"] for s in volume["series"]}
    assert series["Signed Up"][-1] == 1 and series["Signed Up"][-3] == 1 and sum(series["Signed Up"]) == 2
    assert sum(series["Purchased an Item"]) == 1
    assert volume["total"] == 3


def test_volume_per_day_over_30_days_and_for_one_name(bob_client, acme):
    now = timezone.now()
    store_event(acme, "Signed Up", timestamp=now - timedelta(days=3))
    store_event(acme, "Purchased an Item", timestamp=now - timedelta(days=3))
    store_event(acme, "Purchased an Item", timestamp=now - timedelta(days=29))
    catalog_sync()
    volume = bob_client.get("/events/volume.json?period=30d&event=Purchased+an+Item").json()
    assert volume["bucket"] == "day" and len(volume["starts"]) == 30
    assert [(s["event"], s["counts"][-4], s["counts"][0]) for s in volume["series"]] == [("Purchased an Item", 1, 1)]


def test_volume_adds_up_the_quieter_names_as_other(bob_client, acme):
    for index in range(9):
        for _ in range(index + 1):
            store_event(acme, f"Event {index}")
    catalog_sync()
    series = bob_client.get("/events/volume.json").json()["series"]
    assert [s["event"] for s in series] == [f"Event {i}" for i in range(8, 2, -1)] + [OTHER_EVENTS]
    assert sum(series[-1]["counts"]) == 1 + 2 + 3


# --- CSV export ------------------------------------------------------------------------------------------


def test_the_csv_export_streams_the_filtered_range(bob_client, acme, globex):
    day = datetime(2024, 3, 1, tzinfo=UTC)
    kept = [
        store_event(acme, "Purchased an Item", {"revenue": 1}, timestamp=day + timedelta(hours=1)),
        store_event(acme, "Purchased an Item", {"revenue": 2}, timestamp=day + timedelta(hours=3)),
    ]
    store_event(acme, "Purchased an Item", timestamp=day + timedelta(days=1))
    store_event(acme, "Signed Up", timestamp=day + timedelta(hours=2))
    store_event(globex, "Purchased an Item", timestamp=day + timedelta(hours=2))
    response = bob_client.get(
        "/events/export.csv?event=Purchased+an+Item&since=2024-03-01T00:00&until=2024-03-02T00:00"
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="events-acme-')
    header, *rows = _csv(response)
    assert header == list(EXPORT_COLUMNS)
    assert [int(row[0]) for row in rows] == kept
    assert rows[0][header.index("timestamp")] == "2024-03-01T01:00:00+00:00"
    assert json.loads(rows[1][header.index("properties")]) == {"revenue": 2}


@pytest.fixture
def many_exported(acme):
    """EXPORTED events of about 500 bytes each for Acme, a second apart."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (team_id, type, event, properties, timestamp, received_at, user_id) "
            "SELECT %s, 'track', 'Signed Up', jsonb_build_object('n', n, 'note', repeat('x', 400)), "
            "  timestamptz '2024-03-01 00:00Z' + n * interval '1 second', now(), 'user-' || n "
            "FROM generate_series(1, %s) n",
            [acme.pk, EXPORTED],
        )


EXPORTED = 10_000


def test_the_csv_export_streams_in_chunks_without_holding_the_export(bob_client, acme, many_exported):
    response = bob_client.get("/events/export.csv")
    assert isinstance(response, StreamingHttpResponse)
    chunks = iter(response.streaming_content)
    sizes = [len(next(chunks))]  # the request is answered: what follows is the streaming alone
    lines = 0
    tracemalloc.start()
    for chunk in chunks:
        sizes.append(len(chunk))
        lines += chunk.count(b"\n")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sum(sizes) > 5_000_000 and lines > EXPORTED * 0.98
    assert len(sizes) > 50 and max(sizes) < EXPORT_CHUNK_BYTES + 1_000  # a chunk is cut after the row that fills it
    assert peak < 10 * EXPORT_CHUNK_BYTES, "the export's 5 MB were never all in memory at once"


@pytest.mark.django_db(transaction=True)  # autocommit, as when serving: the cancelled COPY ends its own transaction
def test_a_download_cut_short_leaves_the_connection_usable(bob_client, acme, many_exported):
    response = bob_client.get("/events/export.csv")
    first = next(iter(response.streaming_content))
    # The client went away: the server closes the response, which ends the COPY. (As the test client does, keep
    # request_finished from closing the connection, so the test can use it again.)
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    assert first.startswith(b"id,type,event,")
    assert Event.objects.for_team(acme).count() == EXPORTED


def test_the_csv_export_is_in_the_order_events_happened(bob_client, acme):
    later = store_event(acme, "Signed Up", timestamp=datetime(2024, 3, 2, tzinfo=UTC))
    earlier = store_event(acme, "Signed Up", timestamp=datetime(2024, 3, 1, tzinfo=UTC))
    assert [int(row[0]) for row in _csv(bob_client.get("/events/export.csv"))[1:]] == [earlier, later]


def test_the_csv_export_writes_times_json_and_text_as_a_spreadsheet_reads_them(bob_client, acme):
    happened = datetime(2024, 3, 1, 1, 0, 0, 500, tzinfo=UTC)
    properties = {"note": 'a, "b"\nc', "revenue": 39.95, "zip": "02134", "nested": {"ok": True}}
    event_id = store_event(
        acme, 'Said "hi", then\r\nleft', properties, user_id="", timestamp=happened, received_at=happened
    )
    (header, row) = _csv(bob_client.get("/events/export.csv"))
    cells = dict(zip(header, row, strict=True))
    assert json.loads(cells.pop("properties")) == properties
    assert cells == {
        "id": str(event_id),
        "type": "track",
        "event": 'Said "hi", then\r\nleft',
        "timestamp": "2024-03-01T01:00:00.000500+00:00",
        "original_timestamp": "2024-03-01T01:00:00.000500+00:00",
        "sent_at": "",
        "received_at": "2024-03-01T01:00:00.000500+00:00",
        "message_id": "",
        "user_id": "",
        "anonymous_id": "",
        "context": "",
    }


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=["equals", "plus", "minus", "at", "tab", "carriage-return"])
def test_the_csv_export_defuses_every_formula_start(bob_client, acme, start):
    store_event(acme, f"{start}SUM(A1)", user_id=f"{start}1", message_id=f"{start}m", anonymous_id="a=b")
    (_, row) = _csv(bob_client.get("/events/export.csv"))
    assert row[EXPORT_COLUMNS.index("event")] == f"'{start}SUM(A1)"
    assert row[EXPORT_COLUMNS.index("user_id")] == f"'{start}1"
    assert row[EXPORT_COLUMNS.index("message_id")] == f"'{start}m"
    assert row[EXPORT_COLUMNS.index("anonymous_id")] == "a=b"  # only a leading character starts a formula


def test_the_csv_export_defuses_spreadsheet_formulas(bob_client, acme):
    store_event(acme, '=HYPERLINK("http://evil.test")', user_id="@admin")
    (_, row) = _csv(bob_client.get("/events/export.csv"))
    assert row[EXPORT_COLUMNS.index("event")] == '\'=HYPERLINK("http://evil.test")'
    assert row[EXPORT_COLUMNS.index("user_id")] == "'@admin"


# --- Settings: warehouse login ----------------------------------------------------------------------------


@postgresql_only
def test_an_owner_gets_the_login_url_once(alice_client, acme):
    response = alice_client.post("/events/warehouse/credentials/")
    assert response.status_code == 200
    assert response.context["new_warehouse_url"].startswith("postgres://")
    assert "no-store" in response["Cache-Control"]
    assert "new_warehouse_url" not in alice_client.get("/settings/warehouse/").context


def test_an_owner_is_not_shown_why_the_server_cannot_make_logins(alice_client, acme, monkeypatch, caplog):
    def refuse(**kwargs):
        raise WarehouseLoginUnsafe("A superuser must run: GRANT SET ON PARAMETER temp_file_limit TO canvas_app;")

    monkeypatch.setattr("events.explorer.views.warehouse_credentials_rotate", refuse)
    response = alice_client.post("/events/warehouse/credentials/", follow=True)
    assert [str(message) for message in response.context["messages"]] == [WAREHOUSE_NOT_SET_UP]
    assert "canvas_app" not in response.content.decode()
    assert "GRANT SET ON PARAMETER temp_file_limit TO canvas_app" in caplog.text


def test_a_member_cannot_create_the_login(bob_client, acme):
    assert bob_client.post("/events/warehouse/credentials/").status_code == 403


def test_the_login_action_only_answers_post(alice_client, acme):
    assert alice_client.get("/events/warehouse/credentials/").status_code == 405


def _render_section(user, team, **extra) -> str:
    request = RequestFactory().get("/settings/warehouse/")
    request.user, request.session = user, SessionStore()
    membership = Membership.objects.get(user=user, team=team)
    return render_to_string(
        "events/warehouse_section.html", {"team": team, "membership": membership, **extra}, request=request
    )


@postgresql_only
def test_the_settings_section_offers_owners_the_login_and_shows_a_new_url(alice, bob, acme):
    assert "Create read-only login" in _render_section(alice, acme)
    assert "Only the team's Owners" in _render_section(bob, acme)
    shown = _render_section(alice, acme, new_warehouse_url="postgres://r:secret@db:5432/canvas")
    assert 'value="postgres://r:secret@db:5432/canvas"' in shown
    assert "shown only this once" in shown


# --- The catalog: search, pages, and a team at its caps --------------------------------------------------


def _names(team, names: list[str], *, counts: list[int] | None = None) -> list[CatalogEvent]:
    now = timezone.now()
    counts = counts or [1] * len(names)
    return CatalogEvent.objects.bulk_create(
        CatalogEvent(team=team, type="track", name=name, count=count, first_seen_at=now, last_seen_at=now)
        for name, count in zip(names, counts, strict=True)
    )


def test_the_catalog_is_searched_and_paged_on_the_server(bob_client, acme, globex):
    _names(acme, [f"Signed Up {i:02}" for i in range(45)], counts=list(range(100, 145)))
    _names(acme, ["Purchased an Item"], counts=[1000])
    _names(globex, ["Signed Up Globex"])

    first = bob_client.get("/events/?catalog-q=signed+up")
    page = first.content.decode()
    assert "Purchased an Item" not in page.split('id="catalog"')[1]
    assert "Signed Up Globex" not in page
    assert "45 of 46 names contain “signed up” · page 1 of 3" in page
    assert page.count('class="catalog-event"') == CATALOG_PAGE_SIZE
    assert "Signed Up 44" in page and "Signed Up 24" not in page  # busiest first
    assert '<label for="id_catalog-q">Search event names</label>' in page
    assert 'href="?catalog-q=signed%20up&amp;catalog-page=2#catalog" rel="next"' in page

    last = bob_client.get("/events/?catalog-q=signed+up&catalog-page=3").content.decode()
    assert last.count('class="catalog-event"') == 5 and "Signed Up 00" in last
    assert 'rel="prev"' in last and 'rel="next"' not in last
    beyond = bob_client.get("/events/?catalog-q=signed+up&catalog-page=99").content.decode()
    assert "page 3 of 3" in beyond
    nothing = bob_client.get("/events/?catalog-q=%3Cscript%3E").content.decode()
    assert "No event name contains “&lt;script&gt;”." in nothing

    # The tail's filters survive a search and its pages, and the search keeps them.
    filtered = bob_client.get("/events/?event=Signed+Up+01&catalog-q=signed").content.decode()
    assert '<input type="hidden" name="event" value="Signed Up 01">' in filtered
    assert 'href="?event=Signed+Up+01&amp;catalog-q=signed&amp;catalog-page=2#catalog"' in filtered

    json_page = bob_client.get("/events/catalog.json?q=SIGNED&page=2").json()
    assert (json_page["page"], json_page["pages"], json_page["names"]) == (2, 3, 46)
    assert [e["name"] for e in json_page["events"]][:2] == ["Signed Up 24", "Signed Up 23"]
    assert bob_client.get("/events/catalog.json?page=0").status_code == 400


def test_all_properties_of_a_name_are_on_its_own_pages(bob_client, charlie, acme):
    properties = {f"p{i:03}": i for i in range(PROPERTY_PAGE_SIZE + 5)}
    store_event(acme, "Purchased an Item", properties)
    catalog_sync()
    (entry,) = CatalogEvent.objects.filter(team=acme)
    page = bob_client.get("/events/").content.decode()
    assert f'<a href="/events/catalog/{entry.pk}/">All 105 properties</a>' in page
    assert page.count("<td>p0") == PROPERTY_PREVIEW

    first = bob_client.get(f"/events/catalog/{entry.pk}/").content.decode()
    assert first.count("<td>p") == PROPERTY_PAGE_SIZE and "page 1 of 2" in first
    second = bob_client.get(f"/events/catalog/{entry.pk}/?page=2").content.decode()
    assert second.count("<td>p") == 5 and "<td>p104</td>" in second
    listed = bob_client.get("/events/catalog.json").json()["events"][0]
    assert (listed["property_count"], len(listed["properties"])) == (105, PROPERTY_PREVIEW)
    rest = bob_client.get(f"/events/catalog/{entry.pk}.json?page=2").json()
    assert (rest["name"], rest["page"], rest["pages"], rest["property_count"]) == ("Purchased an Item", 2, 2, 105)
    assert [prop["path"] for prop in rest["properties"]] == [[f"p{i}"] for i in range(100, 105)]

    outsider = Client()
    outsider.force_login(charlie)
    assert outsider.get(f"/events/catalog/{entry.pk}/").status_code == 404
    assert outsider.get(f"/events/catalog/{entry.pk}.json").json() == outsider.get("/events/catalog/0.json").json()


def test_the_catalog_says_what_it_counts_as_other(bob_client, acme, monkeypatch):
    monkeypatch.setattr("events.warehouse.catalog.MAX_CATALOG_EVENTS", 1)
    monkeypatch.setattr("events.explorer.selectors.MAX_CATALOG_EVENTS", 1)
    monkeypatch.setattr("events.warehouse.catalog.MAX_CATALOG_PROPERTIES", 1)
    monkeypatch.setattr("events.explorer.selectors.MAX_CATALOG_PROPERTIES", 1)
    store_event(acme, "Signed Up", {"plan": "pro", "referrer": "ad"})
    store_event(acme, "Signed Up", {"plan": "free", "coupon": "A"})
    for name in ["Viewed 1", "Viewed 2", "Viewed 2"]:
        store_event(acme, name, timestamp=timezone.now())
    catalog_sync()
    page = bob_client.get("/events/").content.decode()
    assert "1 event name listed; 3 more events under about 2 other names are counted together as Other." in page
    assert "The catalog lists at most 1 names per team" in page
    assert "Also 2 values of about 2 more properties, counted together as <strong>Other</strong>" in page
    assert "Viewed 1" not in page.split('id="catalog"')[1]  # in the live tail, not in the catalog
    series = {s["event"]: sum(s["counts"]) for s in bob_client.get("/events/volume.json").json()["series"]}
    assert series == {"Signed Up": 2, OTHER_EVENTS: 3}
    catalog = bob_client.get("/events/catalog.json").json()
    assert catalog["other_names"]["count"] == 3 and catalog["other_names"]["distinct"] == 2
    assert catalog["events"][0]["other_properties"]["count"] == 2


# The longest names, keys and ids validation lets through (events.ingest.validation), made of the character HTML
# escaping lengthens most (" is 6 bytes as &quot;).
LONG_NAME = 200
LONG_PATH = ['"' * 255] * 4
LONG_ID = '"' * 255


@pytest.fixture
def acme_at_the_caps(acme):
    """Acme at every cap: MAX_CATALOG_EVENTS names of the longest length; the busiest page of them with
    MAX_CATALOG_PROPERTIES long properties each and an Other row; Other names; every name's volume in each of
    the last 24 hours and 30 days; MAX_EVENT_VIEWS views built; a tail of events with the largest properties."""
    names = [f"{i:04} ".ljust(LONG_NAME, '"') for i in range(MAX_CATALOG_EVENTS)]
    events = _names(acme, names, counts=list(range(MAX_CATALOG_EVENTS, 0, -1)))
    busiest = [event.pk for event in events[:CATALOG_PAGE_SIZE]]
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_catalogproperty (team_id, catalog_event_id, path, path_digest, column_name, count, "
            "  numeric_count, boolean_count, timestamp_count, text_count) "
            "SELECT %s, e, jsonb_build_array(%s::text, %s::text, %s::text, %s::text || p), md5(e || '/' || p), "
            "  left('column_' || p || repeat('c', 63), 63), 1, 0, 0, 0, 1 "
            "FROM unnest(%s::bigint[]) e, generate_series(1, %s) p",
            [acme.pk, *LONG_PATH, busiest, MAX_CATALOG_PROPERTIES],
        )
        cursor.execute(
            "INSERT INTO events_eventvolume (team_id, event, hour, count) "
            "SELECT %s, n, date_trunc('hour', now()) - make_interval(hours => h), 1 "
            "FROM unnest(%s::text[]) n, generate_series(0, 23) h",
            [acme.pk, [*names, EventVolume.OTHER_NAMES]],
        )
        cursor.execute(
            "INSERT INTO events_dailyeventvolume (team_id, event, day, count) "
            "SELECT %s, n, date_trunc('day', now()) - make_interval(days => d), 24 "
            "FROM unnest(%s::text[]) n, generate_series(0, 29) d",
            [acme.pk, [*names, EventVolume.OTHER_NAMES]],
        )
    for event_id in [None, *busiest]:
        CatalogOther.objects.create(
            team=acme, catalog_event_id=event_id, count=10**6, first_seen_at=now, last_seen_at=now,
            distinct_sketch=sketch_add(b"", (str(i) for i in range(5000))),
        )  # fmt: skip
    view = {"columns": [["column_" + "c" * 56, "text"]] * MAX_COLUMNS_PER_VIEW, "digest": "0" * 64}
    views = {f"view_{i:04}_" + "v" * 50: view for i in range(MAX_EVENT_VIEWS)}
    TeamWarehouse.objects.create(team=acme, schema_name="team_acme", views=views)
    big = {"k" * 200 + str(i): '"' * 100 for i in range(MAX_CATALOG_PROPERTIES)}  # 0.4 MB: a batch holds 0.5
    for name in names[:TAIL_LIMIT]:
        store_event(acme, name, big, user_id=LONG_ID)
    return acme


@data_made_in_postgresql
def test_the_events_page_stays_small_and_cheap_at_the_caps(bob_client, acme_at_the_caps, django_assert_num_queries):
    # Session, user, membership (twice: the view and the navigation's team list), tail, the counters (catalog
    # totals, the Other names), catalog totals, page count, page, its property previews and property counts, Other
    # rows, warehouse, its view names, sync state.
    with django_assert_num_queries(16):
        response = bob_client.get("/events/")
    assert response.status_code == 200
    assert len(response.content) < 300_000
    page = response.content.decode()
    assert page.count('class="catalog-event"') == CATALOG_PAGE_SIZE
    assert f"and {MAX_EVENT_VIEWS - EVENT_VIEWS_SHOWN:,} more (each name's view is in the catalog)" in page
    assert "more events under about 5,0" in page  # the sketch's estimate of 5,000 other names

    with django_assert_num_queries(16):
        searched = bob_client.get("/events/?catalog-q=1999&catalog-page=1")
    assert len(searched.content) < 300_000 and searched.content.decode().count('class="catalog-event"') == 1
    for period in VOLUME_RANGES:
        with django_assert_num_queries(6):  # session, user, membership, names shown, their series, totals
            volume = bob_client.get(f"/events/volume.json?period={period}")
        assert len(volume.content) < 10_000
        assert len(volume.json()["series"]) == VOLUME_SERIES + 1
    # Session, user, membership, then as the page: catalog totals, page count, page, previews, counts, Others.
    with django_assert_num_queries(9):
        catalog = bob_client.get("/events/catalog.json")
    assert len(catalog.content) < 300_000 and len(catalog.json()["events"]) == CATALOG_PAGE_SIZE
    busiest = CatalogEvent.objects.filter(team=acme_at_the_caps).order_by("-count").first()
    with django_assert_num_queries(7):  # session, user, membership, the name, its count, its page, its Other row
        properties = bob_client.get(f"/events/catalog/{busiest.pk}.json?page=10")
    assert len(properties.content) < 300_000 and len(properties.json()["properties"]) == PROPERTY_PAGE_SIZE
    # Session, user, membership (twice), the name, its property count, its page of properties, its Other row.
    with django_assert_num_queries(8):
        properties = bob_client.get(f"/events/catalog/{busiest.pk}/?page=10")
    assert len(properties.content) < 300_000 and properties.content.decode().count("<tr>") == PROPERTY_PAGE_SIZE + 1
