"""Events API authentication (events/tokens/authentication.py and its cache, events/tokens/lookup.py)."""

import json
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from events.ingest import errors
from events.ingest.errors import ApiError
from events.models import ApiToken
from events.tokens import lookup, secret, services
from events.tokens.authentication import CHALLENGE, EventsTokenAuthentication, authenticate_token


class TeamOfToken(APIView):
    """A stand-in for the ingestion API: answers with the team the token belongs to."""

    authentication_classes = [EventsTokenAuthentication]

    def get(self, request):
        return Response({"team_id": request.auth.team_id, "user": request.user})

    post = get


team_of_token = TeamOfToken.as_view()
factory = APIRequestFactory()


@pytest.fixture
def plaintext(acme_token) -> str:
    return acme_token[1]


def call_api(headers: dict | None = None, path: str = "/v1/event", data=None):
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()}
    if data is None:
        request = factory.get(path, **meta)
    else:
        request = factory.post(path, data=json.dumps(data), content_type="application/json", **meta)
    response = team_of_token(request)
    response.render()
    return response


def assert_unauthorized(response, code_and_message: tuple[str, str]) -> None:
    code, message = code_and_message
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE
    assert json.loads(response.content) == {"error": {"code": code, "message": message, "fields": []}}


def revoke(token: ApiToken, by, django_capture_on_commit_callbacks) -> None:
    # Cache invalidation runs on commit; tests run inside a transaction that never commits.
    with django_capture_on_commit_callbacks(execute=True):
        services.api_token_revoke(token=token, by=by)


def set_enabled(team, enabled: bool, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.events_api_set_enabled(team=team, enabled=enabled, by=None)


@contextmanager
def just_after_the_token_is_read(change: Callable[[], None]):
    """Commit `change` right after a look-up has read the token from the database, before it caches what it read:
    what another worker's revocation does to a worker that was reading at that moment."""
    pending = [change]

    def after_the_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if pending and sql.startswith("SELECT") and '"events_apitoken"' in sql:
            pending.pop()()
        return result

    with connection.execute_wrapper(after_the_read):
        yield
    assert not pending, "the look-up never read the token from the database"


@pytest.fixture
def worker_clock(stop_monotonic_clock):
    """The clock by which this worker ages its copies of tokens (events/tokens/lookup.py), stopped."""
    return stop_monotonic_clock(lookup)


def test_a_live_token_authenticates_as_its_team(plaintext, acme):
    response = call_api({"X-Auth-Token": plaintext})
    assert response.status_code == 200
    assert json.loads(response.content) == {"team_id": acme.pk, "user": None}


@pytest.mark.parametrize(
    "headers, expected",
    [
        pytest.param({}, errors.MISSING_TOKEN, id="no-header"),
        pytest.param({"X-Auth-Token": ""}, errors.MISSING_TOKEN, id="empty-header"),
        pytest.param({"X-Auth-Token": "cnv_short"}, errors.MALFORMED_TOKEN, id="too-short"),
        pytest.param({"X-Auth-Token": "not a token at all"}, errors.MALFORMED_TOKEN, id="garbage"),
        pytest.param({"X-Auth-Token": "cnv_" + "A" * 38}, errors.MALFORMED_TOKEN, id="bad-checksum"),
        pytest.param({"X-Auth-Token": secret.generate()}, errors.UNKNOWN_TOKEN, id="well-formed-but-unknown"),
    ],
)
def test_it_refuses_missing_malformed_and_unknown_tokens(db, headers, expected):
    assert_unauthorized(call_api(headers), expected)


def test_a_token_known_to_this_process_lets_no_near_miss_through(plaintext):
    """A known token skips the format check for a second; a mistyped copy of it, or a non-ASCII one, does not."""
    assert call_api({"X-Auth-Token": plaintext}).status_code == 200  # now in this process's copy

    mistyped = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert_unauthorized(call_api({"X-Auth-Token": mistyped}), errors.MALFORMED_TOKEN)
    with pytest.raises(ApiError) as refused:
        authenticate_token(plaintext[:-1] + "é")
    assert (refused.value.status_code, refused.value.code) == (401, errors.MALFORMED_TOKEN[0])
    assert call_api({"X-Auth-Token": plaintext}).status_code == 200


def test_it_rejects_revoked_token(acme_token, alice, django_capture_on_commit_callbacks):
    token, plaintext = acme_token
    revoke(token, alice, django_capture_on_commit_callbacks)
    assert_unauthorized(call_api({"X-Auth-Token": plaintext}), errors.UNKNOWN_TOKEN)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("query-token", id="query-string-token"),
        pytest.param("query-header-name", id="query-string-x-auth-token"),
        pytest.param("body", id="json-body"),
        pytest.param("authorization", id="authorization-bearer"),
        pytest.param("other-header", id="x-api-key-header"),
    ],
)
def test_a_token_anywhere_but_the_x_auth_token_header_is_ignored(plaintext, where):
    if where == "query-token":
        response = call_api(path=f"/v1/event?token={plaintext}")
    elif where == "query-header-name":
        response = call_api(path=f"/v1/event?X-Auth-Token={plaintext}&x_auth_token={plaintext}")
    elif where == "body":
        response = call_api(data={"token": plaintext, "X-Auth-Token": plaintext, "event": "Signed up"})
    elif where == "authorization":
        response = call_api({"Authorization": f"Bearer {plaintext}"})
    else:
        response = call_api({"X-Api-Key": plaintext})
    assert_unauthorized(response, errors.MISSING_TOKEN)


def test_a_disabled_api_answers_403_and_enabling_it_again_restores_the_token(
    plaintext, acme, django_capture_on_commit_callbacks
):
    assert call_api({"X-Auth-Token": plaintext}).status_code == 200  # now cached

    set_enabled(acme, False, django_capture_on_commit_callbacks)
    response = call_api({"X-Auth-Token": plaintext})
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == errors.API_DISABLED[0]

    set_enabled(acme, True, django_capture_on_commit_callbacks)
    assert call_api({"X-Auth-Token": plaintext}).status_code == 200


def test_disabling_one_team_leaves_other_teams_tokens_working(
    plaintext, acme, globex, charlie, django_capture_on_commit_callbacks
):
    _, globex_plaintext = services.api_token_create(team=globex, created_by=charlie, name="Globex stream")
    set_enabled(acme, False, django_capture_on_commit_callbacks)
    assert authenticate_token(globex_plaintext).team_id == globex.pk


def test_revocation_is_seen_at_once_by_the_worker_that_revoked(acme_token, alice, django_capture_on_commit_callbacks):
    token, plaintext = acme_token
    authenticate_token(plaintext)  # cached locally and in the shared cache

    revoke(token, alice, django_capture_on_commit_callbacks)

    with pytest.raises(ApiError) as refused:
        authenticate_token(plaintext)
    assert refused.value.status_code == 401


def test_revocation_reaches_other_workers_within_their_one_second_local_copy(
    acme_token, alice, worker_clock, django_capture_on_commit_callbacks
):
    token, plaintext = acme_token
    # This worker reads the live token just as another worker's revocation commits: its copy says live.
    with just_after_the_token_is_read(lambda: revoke(token, alice, django_capture_on_commit_callbacks)):
        authenticate_token(plaintext)

    worker_clock.advance(lookup.TOKEN_LOCAL_SECONDS / 2)
    assert authenticate_token(plaintext).id == token.id  # from the copy, which no other worker can reach
    worker_clock.advance(lookup.TOKEN_LOCAL_SECONDS / 2)
    with pytest.raises(ApiError) as refused:
        authenticate_token(plaintext)
    assert refused.value.code == errors.UNKNOWN_TOKEN[0]


def test_revocation_does_not_wait_for_the_shared_cache_to_expire(acme_token, alice, django_capture_on_commit_callbacks):
    token, plaintext = acme_token
    authenticate_token(plaintext)
    revoke(token, alice, django_capture_on_commit_callbacks)
    lookup.clear_local()  # any other worker, once its one-second copy is gone

    with pytest.raises(ApiError):
        authenticate_token(plaintext)


def test_a_lookup_racing_a_revocation_cannot_put_the_live_token_back_in_the_shared_cache(
    acme_token, alice, django_capture_on_commit_callbacks
):
    token, plaintext = acme_token
    with just_after_the_token_is_read(lambda: revoke(token, alice, django_capture_on_commit_callbacks)):
        authenticate_token(plaintext)  # read before the revocation: accepted, once
    lookup.clear_local()

    with pytest.raises(ApiError) as refused:
        authenticate_token(plaintext)
    assert refused.value.code == errors.UNKNOWN_TOKEN[0]


def test_a_lookup_racing_a_disable_cannot_put_the_enabled_team_back_in_the_shared_cache(
    plaintext, acme, django_capture_on_commit_callbacks
):
    with just_after_the_token_is_read(lambda: set_enabled(acme, False, django_capture_on_commit_callbacks)):
        authenticate_token(plaintext)
    lookup.clear_local()

    with pytest.raises(ApiError) as refused:
        authenticate_token(plaintext)
    assert refused.value.status_code == 403


def test_a_cached_token_is_authenticated_without_a_query(plaintext, django_assert_num_queries):
    authenticate_token(plaintext)
    with django_assert_num_queries(0):
        authenticate_token(plaintext)
    lookup.clear_local()  # as in another worker: the shared cache answers
    with django_assert_num_queries(0):
        authenticate_token(plaintext)


def last_used_updates(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "last_used_at" in q["sql"]]


def test_a_hundred_authentications_within_a_minute_write_last_used_once(acme_token, time_machine):
    token, plaintext = acme_token
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    time_machine.move_to(now, tick=False)
    with CaptureQueriesContext(connection) as queries:
        for number in range(100):
            authenticate_token(plaintext)
            if number % 10 == 0:
                lookup.clear_local()  # workers' local copies expire along the way

    assert len(last_used_updates(queries)) == 1
    token.refresh_from_db()
    assert token.last_used_at == now


def test_last_used_is_written_again_after_a_minute(acme_token, time_machine):
    token, plaintext = acme_token
    time_machine.move_to(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), tick=False)
    authenticate_token(plaintext)
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at

    a_minute_later = first_use + timedelta(minutes=1, seconds=1)
    time_machine.move_to(a_minute_later, tick=False)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(10):
            authenticate_token(plaintext)

    assert len(last_used_updates(queries)) == 1
    assert ApiToken.objects.get(pk=token.pk).last_used_at == a_minute_later


def test_the_conditional_update_leaves_a_recent_last_used_alone(acme_token):
    """Another worker wrote last_used_at a moment ago: this worker's UPDATE matches no row."""
    token, plaintext = acme_token
    just_now = timezone.now() - timedelta(seconds=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=just_now)

    authenticate_token(plaintext)

    assert ApiToken.objects.get(pk=token.pk).last_used_at == just_now


def test_the_shared_cache_never_holds_the_plaintext(plaintext):
    authenticate_token(plaintext)

    shared = redis.Redis.from_url(settings.REDIS_URL)
    stored = {key: shared.get(key) for key in shared.scan_iter() if shared.type(key) == b"string"}
    assert any(secret.digest(plaintext).encode() in key for key in stored)  # the token's entry is there
    for value in stored.values():
        assert plaintext.encode() not in value
        assert plaintext[4:36].encode() not in value
