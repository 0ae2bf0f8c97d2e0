"""Retention per team, partitions past every retention, and the dedupe window (events.retention)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse

from accounts.models import Team
from events.models import Event, EventMessageId
from events.partitions import partitions_ensure
from events.retention import events_retention_apply, message_ids_expire
from events.tests.event_factories import drop_team_schemas, fetch, store_event, sync

pytestmark = pytest.mark.django_db

NOW = datetime(2031, 6, 15, 12, tzinfo=UTC)


def _ids(team: Team) -> set[int]:
    return set(Event.objects.filter(team=team).values_list("id", flat=True))


def test_retention_deletes_exactly_the_old_events_of_that_team(acme, globex, monkeypatch):
    monkeypatch.setattr("events.retention.DELETE_BATCH", 2)  # several batches
    Team.objects.filter(pk=acme.pk).update(event_retention_days=30)
    Team.objects.filter(pk=globex.pk).update(event_retention_days=None)
    old = [store_event(acme, received_at=NOW - timedelta(days=31, seconds=s)) for s in range(5)]
    same_instant = [store_event(acme, received_at=NOW - timedelta(days=40)) for _ in range(3)]
    kept = [
        store_event(acme, received_at=NOW - timedelta(days=30) + timedelta(seconds=1)),
        store_event(acme, received_at=NOW),
    ]
    globex_old = store_event(globex, received_at=NOW - timedelta(days=400))

    result = events_retention_apply(now=NOW)

    assert result.events_deleted == len(old) + len(same_instant)
    assert _ids(acme) == set(kept)
    assert _ids(globex) == {globex_old}  # kept forever
    assert result.partitions_dropped == []  # globex keeps everything, so no month may go whole


@pytest.mark.django_db(transaction=True)
def test_retention_deletes_the_old_events_from_the_teams_warehouse_tables_too(acme, globex):
    Team.objects.filter(pk=acme.pk).update(event_retention_days=30)
    Team.objects.filter(pk=globex.pk).update(event_retention_days=None)
    old = store_event(acme, received_at=NOW - timedelta(days=31))
    kept = store_event(acme, received_at=NOW)
    other_team = store_event(globex, received_at=NOW - timedelta(days=400))
    try:
        sync()
        events_retention_apply(now=NOW)
        sync()  # the live part past the boundary must not bring the deleted event back either

        assert fetch("SELECT id FROM team_acme.tracks") == [(kept,)]
        assert fetch("SELECT id FROM team_acme.purchased_an_item") == [(kept,)]
        assert fetch("SELECT id FROM team_globex.tracks") == [(other_team,)]  # globex keeps everything
        assert old not in _ids(acme)
    finally:
        drop_team_schemas()


def test_months_past_the_longest_retention_are_dropped(acme, globex):
    Team.objects.filter(pk=acme.pk).update(event_retention_days=30)
    Team.objects.filter(pk=globex.pk).update(event_retention_days=60)
    partitions_ensure(now=NOW, since=NOW - timedelta(days=120))  # February to August 2031
    globex_april = store_event(globex, received_at=datetime(2031, 4, 20, tzinfo=UTC))

    with time_machine.travel(NOW, tick=False):
        result = events_retention_apply()

    # 60 days before 15 June is 16 April: February and March are past it, April is not.
    assert {"events_event_y2031m02", "events_event_y2031m03"} <= set(result.partitions_dropped)
    assert "events_event_y2031m04" not in result.partitions_dropped
    assert _ids(globex) == {globex_april}


def test_a_message_id_older_than_the_window_is_expired_and_accepted_again(acme):
    with override_settings(EVENTS_DEDUPE_WINDOW_DAYS=30):
        first = store_event(acme, message_id="resent", received_at=NOW - timedelta(days=31))
        recent = store_event(acme, message_id="recent", received_at=NOW - timedelta(days=29))

        assert message_ids_expire(now=NOW) == 1

    assert set(EventMessageId.objects.values_list("message_id", flat=True)) == {"recent"}
    again = store_event(acme, message_id="resent")
    assert again != first
    assert store_event(acme, message_id="recent") == recent  # still within the window: a duplicate
    assert Event.objects.filter(team=acme, message_id="resent").count() == 2


def test_staff_set_a_teams_retention_in_admin(admin_client, acme):
    page = admin_client.get(reverse("admin:accounts_team_change", args=[acme.pk]))
    assert 'name="event_retention_days"' in page.content.decode()

    form = {"name": acme.name, "slug": acme.slug, "events_api_enabled": "on", "event_retention_days": "90"}
    form |= {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}
    response = admin_client.post(reverse("admin:accounts_team_change", args=[acme.pk]), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    acme.refresh_from_db()
    assert acme.event_retention_days == 90


@pytest.mark.parametrize(
    ("days", "sentence"),
    [
        pytest.param(90, "Events are kept for 90 days, then deleted.", id="90-days"),
        pytest.param(1, "Events are kept for 1 day, then deleted.", id="one-day"),
        pytest.param(None, "Events are kept forever.", id="forever"),
    ],
)
def test_owners_read_their_retention_on_the_general_page(alice_client, acme, days, sentence):
    Team.objects.filter(pk=acme.pk).update(event_retention_days=days)

    page = alice_client.get(reverse("settings_general")).content.decode()

    assert sentence in page


@override_settings(EVENTS_RETENTION_DAYS=90)
def test_a_new_team_gets_the_default_retention():
    assert Team.objects.create(name="New", slug="new").event_retention_days == 90
