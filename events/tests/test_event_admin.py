"""Events in Django admin (EventAdmin in events/admin.py): read-only, filterable, and cheap on a large table.

The changelist must never COUNT(*) the whole events table: with millions of rows that is a full scan on
every page load. The table here has enough rows for PostgreSQL's planner to call it large.
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from events.models import Event

CHANGELIST = "/admin/events/event/"
MANY = 12_000  # over EstimatedCountPaginator.EXACT_BELOW


@pytest.fixture
def staff_client(client, db):
    staff = User.objects.create_superuser("admin@canvas.test", "a staff password")
    client.force_login(staff)
    return client


@pytest.fixture
def many_events(acme, globex):
    """MANY events an hour apart from 2024-01-01: two names for Acme, one for Globex."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_event (team_id, type, event, properties, timestamp, received_at)
            SELECT CASE WHEN n %% 3 = 0 THEN %(globex)s ELSE %(acme)s END, 'track',
                   CASE n %% 3 WHEN 0 THEN 'Globex Order' WHEN 1 THEN 'Purchased an Item' ELSE 'Signed Up' END,
                   '{}'::jsonb, at, at
            FROM generate_series(1, %(many)s) AS n,
                 LATERAL (SELECT timestamptz '2024-01-01 00:00Z' + n * interval '1 hour' AS at) AS moment
            """,
            {"acme": acme.id, "globex": globex.id, "many": MANY},
        )
        cursor.execute("ANALYZE events_event")


def counts_of_the_whole_table(queries: list[dict]) -> list[str]:
    """COUNT queries over events_event with no WHERE after the FROM (a FILTER (WHERE ...) before it is no help)."""
    found = []
    for query in queries:
        sql = query["sql"]
        if not re.search(r"\bCOUNT\(", sql, re.IGNORECASE) or 'FROM "events_event"' not in sql:
            continue
        after_from = sql.split('FROM "events_event"', 1)[1]
        if not re.search(r"\bWHERE\b", after_from, re.IGNORECASE):
            found.append(sql)
    return found


def results(response) -> list[Event]:
    return list(response.context["cl"].result_list)


def test_staff_see_the_latest_events_first(staff_client, many_events):
    response = staff_client.get(CHANGELIST)

    assert response.status_code == 200
    shown = results(response)
    assert len(shown) == 100
    assert shown[0] == Event.objects.latest("timestamp")
    assert [event.timestamp for event in shown] == sorted((event.timestamp for event in shown), reverse=True)


CHANGELIST_PAGES = [
    "",
    "?p=3",
    "?team__id__exact={acme}",
    "?team__id__exact={acme}&event=Signed+Up",
    "?q=Purchased",
    "?timestamp__year=2024",
    "?timestamp__year=2024&timestamp__month=3",
    "?type__exact=track",
    "?_facets=True",
    "?_facets=True&team__id__exact={acme}",
]


def test_no_changelist_page_counts_the_whole_table(staff_client, many_events, acme):
    for query in CHANGELIST_PAGES:
        with CaptureQueriesContext(connection) as captured:
            response = staff_client.get(CHANGELIST + query.format(acme=acme.id))

        assert response.status_code == 200, query
        assert counts_of_the_whole_table(captured.captured_queries) == [], query


def test_the_check_for_whole_table_counts_finds_one(many_events):
    with CaptureQueriesContext(connection) as captured:
        Event.objects.count()
        Event.objects.filter(team_id=0).count()

    assert len(counts_of_the_whole_table(captured.captured_queries)) == 1


def test_choosing_a_team_offers_that_teams_event_names(staff_client, many_events, acme):
    before = staff_client.get(CHANGELIST).content.decode()
    page = staff_client.get(f"{CHANGELIST}?team__id__exact={acme.id}").content.decode()

    assert "?event=Purchased+an+Item" not in before
    assert f"?event=Purchased+an+Item&amp;team__id__exact={acme.id}" in page
    assert f"?event=Signed+Up&amp;team__id__exact={acme.id}" in page
    assert "Globex Order" not in page


def test_the_event_name_filter_shows_only_that_name_of_that_team(staff_client, many_events, acme):
    response = staff_client.get(f"{CHANGELIST}?team__id__exact={acme.id}&event=Signed+Up")

    shown = results(response)
    assert shown
    assert {(event.team_id, event.event) for event in shown} == {(acme.id, "Signed Up")}


def test_search_finds_events_by_name(staff_client, many_events, globex):
    response = staff_client.get(f"{CHANGELIST}?q=globex+order")

    shown = results(response)
    assert shown
    assert {(event.team_id, event.event) for event in shown} == {(globex.id, "Globex Order")}


def test_the_date_hierarchy_drills_down_from_years_to_months(staff_client, many_events):
    page = staff_client.get(CHANGELIST).content.decode()
    assert "?timestamp__year=2024" in page
    assert "?timestamp__year=2025" in page

    response = staff_client.get(f"{CHANGELIST}?timestamp__year=2025")

    assert {event.timestamp.year for event in results(response)} == {2025}
    assert "?timestamp__month=2&amp;timestamp__year=2025" in response.content.decode()


def test_events_cannot_be_added_changed_or_deleted(staff_client, acme):
    event = Event.objects.create(
        team=acme, event="Purchased an Item", timestamp="2012-12-02T00:30:08Z", received_at="2012-12-02T00:30:09Z"
    )
    changelist = staff_client.get(CHANGELIST).content.decode()
    change_page = staff_client.get(f"{CHANGELIST}{event.pk}/change/")

    assert f'href="{CHANGELIST}add/"' not in changelist
    assert "delete_selected" not in changelist
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    assert change_page.status_code == 200
    assert 'name="_save"' not in change_page.content.decode()
    assert staff_client.post(f"{CHANGELIST}{event.pk}/change/", {"event": "Changed"}).status_code == 403
    assert staff_client.get(f"{CHANGELIST}{event.pk}/delete/").status_code == 403
    assert staff_client.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.get(pk=event.pk).event == "Purchased an Item"
