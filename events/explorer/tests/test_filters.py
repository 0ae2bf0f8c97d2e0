"""events/explorer: what the Events page's filters do to its counters, chart and tail; searching by user id and
by a property's value; paging back through the tail; what the page says when the API is off or the sync is not
running. Against PostgreSQL, with the query plans that keep these reads bounded."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.explorer import selectors
from events.explorer.selectors import TAIL_LIMIT, EventFilters
from events.explorer.views import PROPERTY_PATH_INVALID, VALUE_WITHOUT_PROPERTY
from events.models import CatalogSyncState, Event
from events.tests.event_factories import fetch, store_event, sync
from events.warehouse.catalog import catalog_sync

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans of PostgreSQL")
NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)


def _ids(response) -> list[int]:
    return [event["id"] for event in response.json()["events"]]


# --- Counters ---------------------------------------------------------------------------------------------


def test_the_counters_follow_every_filter(bob_client, acme):
    store_event(acme, "Signed Up", {"plan": "pro"}, user_id="ann", timestamp=timezone.now() - timedelta(days=3))
    store_event(acme, "Signed Up", {"plan": "free"}, user_id="bob")
    store_event(acme, "Order Completed", {"plan": "pro", "revenue": 39.95}, user_id="ann")
    sync()

    def counts(query: str) -> tuple[int, int, bool]:
        answer = bob_client.get(f"/events/counts.json?{query}").json()
        return answer["events"], answer["names"], answer["filtered"]

    assert counts("") == (3, 2, False)  # the catalog's totals
    assert counts("event=Signed+Up") == (2, 1, True)
    assert counts("user=ann") == (2, 2, True)
    assert counts("property=plan&value=pro") == (2, 2, True)
    assert counts("property=revenue&value=39.95") == (1, 1, True)
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert counts(f"since={since}") == (2, 2, True)
    page = bob_client.get("/events/?user=ann").content.decode()
    assert 'data-testid="events-counted">2<' in page and "Events counted · filtered" in page


def test_the_unfiltered_counters_move_when_the_sync_has_run(bob_client, acme):
    store_event(acme, "Signed Up")
    sync()
    first = bob_client.get("/events/counts.json").json()
    store_event(acme, "Order Completed")
    assert bob_client.get("/events/counts.json").json()["events"] == 1  # the catalog has not read it yet
    catalog_sync()
    second = bob_client.get("/events/counts.json").json()
    assert (second["events"], second["names"]) == (2, 2)
    assert second["catalog_synced_at"] > first["catalog_synced_at"]


def test_a_filtered_count_stops_at_the_cap(bob_client, acme, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    for name in ["Signed Up", "Signed Up", "Order Completed"]:
        store_event(acme, name, user_id="ann")
    answer = bob_client.get("/events/counts.json?user=ann").json()
    assert (answer["events"], answer["capped"]) == (2, True)
    assert 'data-testid="events-counted">2+<' in bob_client.get("/events/?user=ann").content.decode()


# --- Search -----------------------------------------------------------------------------------------------


def test_a_user_search_matches_user_and_anonymous_ids_exactly(bob_client, acme, globex):
    by_user = store_event(acme, "Signed Up", user_id="user-7")
    by_anonymous = store_event(acme, "Page Viewed", user_id=None, anonymous_id="user-7")
    store_event(acme, "Signed Up", user_id="user-70")
    store_event(globex, "Signed Up", user_id="user-7")
    assert _ids(bob_client.get("/events/tail.json?user=user-7")) == [by_anonymous, by_user]
    assert _ids(bob_client.get("/events/tail.json?user=USER-7")) == []


def test_a_property_search_matches_a_value_at_a_dotted_path_as_text(bob_client, acme):
    number = store_event(acme, "Order Completed", {"revenue": 39.95})
    text = store_event(acme, "Order Completed", {"revenue": "39.95"})
    nested = store_event(acme, "Signed Up", {"referrer": {"source": "newsletter"}})
    flag = store_event(acme, "Signed Up", {"coupon": False})
    store_event(acme, "Order Completed", {"revenue": 12})

    assert _ids(bob_client.get("/events/tail.json?property=revenue&value=39.95")) == [text, number]
    assert _ids(bob_client.get("/events/tail.json?property=referrer.source&value=newsletter")) == [nested]
    assert _ids(bob_client.get("/events/tail.json?property=coupon&value=false")) == [flag]
    # Without a value: every event that has the property.
    assert len(_ids(bob_client.get("/events/tail.json?property=revenue"))) == 3


@pytest.mark.parametrize(
    "query, message",
    [
        pytest.param("value=pro", VALUE_WITHOUT_PROPERTY, id="value-without-property"),
        pytest.param("property=referrer..source&value=x", PROPERTY_PATH_INVALID, id="empty-key"),
    ],
)
def test_a_property_search_needs_a_property(bob_client, acme, query, message):
    response = bob_client.get(f"/events/tail.json?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == [{"path": "property", "message": message}]
    assert bob_client.get(f"/events/?{query}").status_code == 400


def test_a_search_reads_only_the_latest_events(bob_client, acme, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 3)
    store_event(acme, "Signed Up", user_id="ann")  # the 4th latest: outside the window
    recent = store_event(acme, "Signed Up", user_id="ann")
    store_event(acme, "Signed Up", user_id="bob")
    store_event(acme, "Signed Up", user_id="bob")
    assert _ids(bob_client.get("/events/tail.json?user=ann")) == [recent]
    assert "latest 3 events" in bob_client.get("/events/").content.decode()


# --- Paging back ------------------------------------------------------------------------------------------


def test_older_events_page_back_beyond_the_first_page(bob_client, acme):
    ids = [store_event(acme, "Signed Up", user_id=f"user-{i}") for i in range(TAIL_LIMIT + 5)]
    first = bob_client.get("/events/tail.json").json()
    assert _ids_of(first) == ids[::-1][:TAIL_LIMIT]
    assert first["older"] == ids[5]
    second = bob_client.get(f"/events/tail.json?before_id={first['older']}").json()
    assert _ids_of(second) == ids[4::-1] and second["older"] is None
    page = bob_client.get(f"/events/?before_id={first['older']}").content.decode()
    assert "Older events" in page and "Back to the latest" in page and 'data-live="off"' in page
    assert 'data-testid="older-events"' in bob_client.get("/events/").content.decode()


def test_a_full_page_with_nothing_before_it_offers_no_older_events(bob_client, acme):
    for _ in range(TAIL_LIMIT):
        store_event(acme, "Signed Up")
    assert bob_client.get("/events/tail.json").json()["older"] is None
    assert '<p class="older" data-older hidden>' in bob_client.get("/events/").content.decode()


def _ids_of(answer: dict) -> list[int]:
    return [event["id"] for event in answer["events"]]


def test_older_events_keep_the_filters(bob_client, acme):
    signed_up = [store_event(acme, "Signed Up") for _ in range(TAIL_LIMIT + 1)]
    store_event(acme, "Order Completed")
    first = bob_client.get("/events/tail.json?event=Signed+Up").json()
    second = bob_client.get(f"/events/tail.json?event=Signed+Up&before_id={first['older']}").json()
    assert _ids_of(second) == [signed_up[0]]


# --- Chart ------------------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_chart_spans_the_time_range_and_follows_a_search(bob_client, acme):
    store_event(acme, "Signed Up", user_id="ann", timestamp=NOW - timedelta(days=10))
    store_event(acme, "Signed Up", user_id="bob", timestamp=NOW - timedelta(days=10))
    store_event(acme, "Order Completed", user_id="ann", timestamp=NOW - timedelta(days=9, hours=23))
    catalog_sync()
    query = "since=2026-05-21T00:00&until=2026-05-23T00:00"
    volume = bob_client.get(f"/events/volume.json?period=30d&{query}").json()
    assert volume["starts"] == ["2026-05-21T00:00:00Z", "2026-05-22T00:00:00Z"]
    assert {s["event"]: s["counts"] for s in volume["series"]} == {"Signed Up": [0, 2], "Order Completed": [0, 1]}

    searched = bob_client.get(f"/events/volume.json?period=30d&{query}&user=ann").json()
    assert {s["event"]: s["counts"] for s in searched["series"]} == {"Signed Up": [0, 1], "Order Completed": [0, 1]}
    hours = bob_client.get("/events/volume.json?period=24h&until=2026-05-22T14:00&user=ann").json()
    assert (hours["starts"][0], hours["starts"][-1]) == ("2026-05-21T14:00:00Z", "2026-05-22T13:00:00Z")
    assert hours["series"] == [{"event": "Order Completed", "counts": [0] * 23 + [1]},
                               {"event": "Signed Up", "counts": [0] * 22 + [1, 0]}]  # fmt: skip


# --- What the page says -----------------------------------------------------------------------------------


def test_the_tail_shows_when_each_event_happened_and_arrived(bob_client, acme):
    happened = datetime(2025, 12, 2, 0, 30, 8, tzinfo=UTC)
    store_event(acme, "Purchased an Item", timestamp=happened, received_at=happened + timedelta(seconds=2))
    (event,) = bob_client.get("/events/tail.json").json()["events"]
    assert (event["timestamp"], event["received_at"]) == ("2025-12-02T00:30:08Z", "2025-12-02T00:30:10Z")
    page = bob_client.get("/events/").content.decode()
    # ISO in the markup, with the year; static/js/events.js shows it in the reader's words.
    assert '<time datetime="2025-12-02T00:30:08+00:00" data-time>2025-12-02 00:30:08</time>' in page
    assert 'received <time datetime="2025-12-02T00:30:10+00:00" data-time>' in page


def test_new_events_are_announced_to_screen_readers(bob_client, acme):
    page = bob_client.get("/events/").content.decode()
    assert 'role="status" aria-live="polite" data-tail-announcer' in page


def test_the_page_says_not_enabled_where_the_api_is_off(charlie_client, globex):
    globex.events_api_enabled = False
    globex.save()
    page = charlie_client.get("/events/").content.decode()
    assert ">Not enabled</span>" in page and ">Live<" not in page
    assert 'data-live="off"' in page
    assert "No events: your team's Events API is not enabled." in page


def test_the_empty_catalog_says_whether_the_sync_is_running(bob_client, acme):
    assert "it has not run yet" in bob_client.get("/events/").content.decode()
    CatalogSyncState.objects.update_or_create(pk=1, defaults={"synced_at": timezone.now() - timedelta(hours=2)})
    assert "it last ran 2\xa0hours ago" in bob_client.get("/events/").content.decode()
    CatalogSyncState.objects.filter(pk=1).update(synced_at=timezone.now())
    page = bob_client.get("/events/").content.decode()
    assert "within seconds of their first event" in page and "within a minute" not in page


# --- Query plans ------------------------------------------------------------------------------------------


@pytest.fixture
def ninety_days(acme, globex):
    """120,000 events over 90 days ending at NOW for Acme and Globex, as ingest stores them (ids in time order),
    with statistics: enough rows for the planner to choose as it does on millions (docs/performance.md)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (team_id, type, event, properties, timestamp, received_at, user_id) "
            "SELECT CASE WHEN n %% 2 = 0 THEN %(acme)s ELSE %(globex)s END, 'track', 'Event ' || (n %% 10), "
            "  jsonb_build_object('n', n), at, at, 'user-' || (n %% 5000) "
            "FROM generate_series(1, 120000) n, "
            "  LATERAL (SELECT %(now)s - interval '90 days' + n * interval '90 days' / 120000 AS at) moment",
            {"acme": acme.pk, "globex": globex.pk, "now": NOW},
        )
        cursor.execute("ANALYZE events_event")


def _plans_of(read) -> list[str]:
    """The plans of the queries on events_event that `read()` runs."""
    with CaptureQueriesContext(connection) as captured:
        read()
    queries = [query["sql"] for query in captured.captured_queries if '"events_event"' in query["sql"]]
    assert queries
    return ["\n".join(line for (line,) in fetch(f"EXPLAIN {sql}")) for sql in queries]


def _scan(plan: str) -> str:
    """How the plan reads events_event itself (not a subquery's alias): the scan of the partition that holds the
    rows (the most rows estimated), down to its index condition."""
    lines = plan.splitlines()
    scans = [
        (int(found.group(1)), i)
        for i, line in enumerate(lines)
        if (found := re.search(r" on events_event(?:_\w+)?(?: events_event_\d+)?  \(cost=[0-9.]+ rows=(\d+)", line))
    ]
    assert scans, plan
    at = max(scans)[1]
    end = next((i for i in range(at, len(lines)) if "Index Cond:" in lines[i]), at)
    return "\n".join(lines[at : end + 1]).strip()


# The time index as each monthly partition names it (events_event_y2026m12_team_id_timestamp_id_idx, ...).
TIME_INDEX = r"events_event_\w*team_id_timestamp_id_idx"


def _reads_the_time_range_from_the_time_index(plan: str) -> bool:
    """The time index finds the rows by team and time (in order, or as a bitmap of the range's few rows)."""
    scan = _scan(plan)
    return bool(
        re.search(rf"(Index Scan Backward using|Index Scan using|Bitmap Index Scan on) {TIME_INDEX}", scan)
        and re.search(r"Index Cond: \(\(team_id = \d+\) AND \(\"timestamp\" >= ", scan)
    )


@postgresql_only
def test_a_time_range_a_month_back_starts_on_the_time_index(acme, ninety_days):
    month_back = EventFilters(since=NOW - timedelta(days=31), until=NOW - timedelta(days=30))
    (tail,) = _plans_of(lambda: selectors.events_tail(team=acme, filters=month_back))
    first_page = selectors.events_tail(team=acme, filters=month_back)
    (older,) = _plans_of(lambda: selectors.events_tail(team=acme, filters=month_back, before_id=first_page.older))
    (counts,) = _plans_of(lambda: selectors.event_counts(team=acme, filters=month_back))
    query, params = selectors.export_query(team=acme, filters=month_back)
    export = "\n".join(line for (line,) in fetch(f"EXPLAIN {query}", params))
    for plan in (tail, older, counts, export):
        assert _reads_the_time_range_from_the_time_index(plan), plan


@postgresql_only
def test_paging_polling_and_searching_stay_on_indexes(acme, ninety_days, monkeypatch):
    deep = Event.objects.for_team(acme).order_by("-id").values_list("id", flat=True)[30_000]
    (older,) = _plans_of(lambda: selectors.events_tail(team=acme, filters=EventFilters(), before_id=deep))
    assert re.search(f"Index Scan Backward using {TIME_INDEX}", _scan(older)) and "Sort  (cost" not in older
    latest = Event.objects.for_team(acme).order_by("-id").values_list("id", flat=True)[0]
    (poll,) = _plans_of(lambda: selectors.events_tail(team=acme, filters=EventFilters(), after_id=latest))
    assert re.search(r"using events_event_\w*pkey", _scan(poll)), "new events are found by id, whenever they happened"
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 5_000)  # a window smaller than the team, as in production
    window, searched = _plans_of(lambda: selectors.events_tail(team=acme, filters=EventFilters(user="user-8")))
    assert re.search(f"Index Only Scan Backward using {TIME_INDEX}", _scan(window))
    assert _reads_the_time_range_from_the_time_index(searched), searched


# --- The tail's order -------------------------------------------------------------------------------------


def test_the_tail_is_in_the_order_events_happened_and_the_live_tail_brings_late_ones(bob_client, acme):
    earlier = store_event(acme, "Signed Up", timestamp=NOW - timedelta(hours=2))
    later = store_event(acme, "Signed Up", timestamp=NOW)
    backfilled = store_event(acme, "Signed Up", timestamp=NOW - timedelta(hours=1))  # stored last
    assert _ids(bob_client.get("/events/tail.json")) == [later, backfilled, earlier]
    assert _ids(bob_client.get(f"/events/tail.json?after_id={later}")) == [backfilled]


def test_older_events_page_through_events_that_happened_at_the_same_time(bob_client, acme):
    at_once = [store_event(acme, "Signed Up", timestamp=NOW) for _ in range(TAIL_LIMIT + 3)]
    before = store_event(acme, "Signed Up", timestamp=NOW - timedelta(seconds=1))
    first = bob_client.get("/events/tail.json").json()
    second = bob_client.get(f"/events/tail.json?before_id={first['older']}").json()
    assert _ids_of(first) + _ids_of(second) == [*at_once[::-1], before]
    assert second["older"] is None


def test_older_events_before_an_unknown_event_are_none(bob_client, acme, globex):
    store_event(acme, "Signed Up")
    other_team = store_event(globex, "Signed Up", timestamp=timezone.now() + timedelta(days=1))
    assert _ids(bob_client.get(f"/events/tail.json?before_id={other_team}")) == []
