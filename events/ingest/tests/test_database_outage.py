"""Outages of what the Events API depends on, made for real: connections dropped, ports with nothing behind them.

PostgreSQL down: 503 with Retry-After in the one error shape, never a 500, and service resumes by itself.
Redis down: events are still accepted; the rate limit fails open and tokens are read from the database.
"""

import socket
from dataclasses import dataclass

import pytest
from django.db import connection

from events.ingest import errors
from events.ingest.pipeline import DATABASE_RETRY_AFTER_SECONDS
from events.models import Event
from events.tokens import lookup, services


@dataclass
class Outage:
    port: int
    saved: dict

    def begin(self) -> None:
        """As when the database server goes away: every open connection drops, and new ones are refused."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(self.port))

    def end(self) -> None:
        connection.close()
        connection.settings_dict.update(self.saved)


@pytest.fixture
def database_outage(transactional_db):
    """Start and end a database outage. The group committer connects with the same settings, so it is cut off
    too. The outage's port is bound but never listens, so connecting to it is refused at once."""
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))
    outage = Outage(
        port=closed_port.getsockname()[1],
        saved={name: connection.settings_dict[name] for name in ("HOST", "PORT")},
    )
    yield outage
    outage.end()
    closed_port.close()


def assert_database_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_RETRY_AFTER_SECONDS)
    assert response["Content-Type"] == "application/json"
    code, message = errors.DATABASE_UNAVAILABLE
    assert response.json() == {"error": {"code": code, "message": message, "fields": []}}


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "direct-insert"])
def test_while_the_database_is_down_events_get_503_and_service_resumes(
    post_event, client, acme, alice, acme_token, doc_event_body, database_outage, settings, group_commit
):
    settings.EVENTS_GROUP_COMMIT = group_commit
    _, warm = acme_token
    _, cold = services.api_token_create(team=acme, created_by=alice, name="Not used yet")
    assert post_event(doc_event_body, token=warm).status_code == 200

    database_outage.begin()
    # A token known to the caches gets as far as storing the event; an unknown one fails at its look-up.
    assert_database_unavailable(post_event(doc_event_body, token=warm))
    assert_database_unavailable(post_event(doc_event_body, token=cold))
    readiness = client.get("/readyz")
    assert readiness.status_code == 503
    assert readiness.json() == {"status": "unavailable", "database": "unreachable"}

    database_outage.end()
    assert client.get("/readyz").status_code == 200
    assert post_event(doc_event_body, token=warm).status_code == 200
    assert post_event(doc_event_body, token=cold).status_code == 200
    assert Event.objects.count() == 3


REDIS_NOWHERE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


def test_while_redis_is_down_events_are_accepted(post_event, acme_token, doc_event_body, settings):
    _, plaintext = acme_token
    settings.CACHES = REDIS_NOWHERE

    response = post_event(doc_event_body, token=plaintext)

    assert response.status_code == 200
    assert response.json() == {"id": Event.objects.get().id, "duplicate": False}
    # The rate limit could not count, so it let the event through and has no numbers to report.
    assert "RateLimit-Limit" not in response


def test_while_redis_is_down_tokens_are_read_from_the_database(
    post_event, acme_token, doc_event_body, settings, django_assert_num_queries
):
    _, plaintext = acme_token
    settings.CACHES = REDIS_NOWHERE
    post_event(doc_event_body, token=plaintext)
    lookup.clear_local()  # a worker that has not seen the token: with Redis down, only the database knows

    with django_assert_num_queries(2) as captured:
        assert post_event(doc_event_body, token=plaintext).status_code == 200

    assert 'FROM "events_apitoken"' in captured.captured_queries[0]["sql"]
    assert "INSERT INTO events_event " in captured.captured_queries[1]["sql"]  # with its messageId's claim


def test_while_redis_is_down_an_owner_can_still_revoke_a_token(
    transactional_db, alice_client, acme_token, post_event, doc_event_body, settings
):
    token, plaintext = acme_token
    settings.CACHES = REDIS_NOWHERE

    response = alice_client.post(f"/settings/tokens/{token.pk}/revoke/")

    assert response.status_code == 302
    assert post_event(doc_event_body, token=plaintext).status_code == 401


def test_while_the_database_is_down_the_front_end_answers_503_and_service_resumes(
    acme, alice, acme_token, doc_event_body, database_outage
):
    """With the group committer and Django's request signals in play, as in production."""
    from canvas.wsgi import application
    from events.ingest.tests.test_wsgi import wsgi_post

    _, warm = acme_token
    _, cold = services.api_token_create(team=acme, created_by=alice, name="Not used yet")
    assert wsgi_post(application, doc_event_body, token=warm).status == 200

    database_outage.begin()
    stored = wsgi_post(application, doc_event_body, token=warm)
    looked_up = wsgi_post(application, doc_event_body, token=cold)
    database_outage.end()

    # The warm token's event reached the committer; the cold token's look-up failed: both in the one shape.
    for answer in (stored, looked_up):
        assert not answer.by_django
        assert answer.status == 503
        assert answer.headers["Retry-After"] == str(DATABASE_RETRY_AFTER_SECONDS)
        code, message = errors.DATABASE_UNAVAILABLE
        assert answer.json() == {"error": {"code": code, "message": message, "fields": []}}
    assert wsgi_post(application, doc_event_body, token=cold).status == 200
    assert Event.objects.count() == 2
