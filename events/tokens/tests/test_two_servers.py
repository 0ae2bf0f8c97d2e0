"""Two app servers behind one load balancer behave as one: one rate limit, one revocation, one row per messageId.

Each test starts two gunicorn instances (gunicorn.conf.py, 2 workers each) on two ports, both on the test database
and the tests' Redis, so what one server counts or caches the other sees only through PostgreSQL and Redis, as
in production.
"""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
import pytest
import requests
from django.conf import settings
from django.db import connection
from django.db.models import Count, Min

from chaos.processes import Gunicorn, app_environment, database_url, wait_until
from events.ingest import errors
from events.models import Event
from events.tokens import services
from events.tokens.lookup import TOKEN_LOCAL_SECONDS

pytestmark = pytest.mark.live

RATE_LIMIT = 20
# Each server alone gets fewer requests than the limit: only a limit shared by both can refuse any of them.
REQUESTS_PER_SERVER = 15
BURST_TRIES = 10
MESSAGE_IDS = 50
COPIES_PER_SERVER = 2


@pytest.fixture
def start_servers(transactional_db, tmp_path):
    """Start app servers on the test database; they are stopped before the database is flushed."""
    assert settings.REDIS_URL, "the servers share rate limits and tokens through Redis: set REDIS_URL"
    db = connection.settings_dict
    url = database_url(user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"], name=db["NAME"])
    started: list[Gunicorn] = []

    def start(*, rate_limit_per_second: int = 100_000) -> tuple[Gunicorn, Gunicorn]:
        env = app_environment(
            database_url=url, redis_url=settings.REDIS_URL, rate_limit_per_second=rate_limit_per_second
        )
        servers = [Gunicorn(env, log=tmp_path / f"server-{len(started) + n}.log") for n in range(2)]
        started.extend(servers)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(Gunicorn.start, servers))
        return servers[0], servers[1]

    yield start
    for server in started:
        server.stop()


@dataclass(frozen=True, slots=True)
class Answer:
    server: int
    sent_at: float  # time.monotonic()
    answered_at: float
    status: int
    headers: dict
    body: dict


def post_event(servers, server: int, plaintext: str, message_id: str | None = None) -> Answer:
    """One POST /v1/event on a new connection (so that successive requests reach either worker)."""
    document = {"version": 1, "type": "event", "event": "Two servers"}
    if message_id is not None:
        document["messageId"] = message_id
    sent_at = time.monotonic()
    response = requests.post(
        f"{servers[server].url}/v1/event",
        data=orjson.dumps(document),
        headers={"Content-Type": "application/json", "X-Auth-Token": plaintext, "Connection": "close"},
        timeout=30,
    )
    return Answer(server, sent_at, time.monotonic(), response.status_code, dict(response.headers), response.json())


def warm_up(servers, plaintext: str) -> None:
    """Every worker has answered once (imports, URL resolver), so the measured requests are not the first."""
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: post_event(servers, n % 2, plaintext), range(16)))
    assert {answer.status for answer in answers} == {200}


def sleep_until_next_second() -> None:
    """The rate limit counts in windows of int(time.time()) (events/ingest/throttling.py)."""
    now = time.time()
    time.sleep(int(now) + 1.02 - now)


def burst_within_one_second(servers, plaintext: str) -> list[Answer]:
    """REQUESTS_PER_SERVER to each server at once, released together just after a whole second starts.

    Retried (with the next second's fresh counter) until the answers all come back within one second: a busy
    machine needs a few tries.
    """
    jobs = [server for server in (0, 1) for _ in range(REQUESTS_PER_SERVER)]
    for _ in range(BURST_TRIES):
        window = {}

        def open_window(window=window):
            sleep_until_next_second()
            window["start"] = time.time()

        release = threading.Barrier(len(jobs), action=open_window)

        def send(server: int, release=release) -> Answer:
            release.wait()
            return post_event(servers, server, plaintext)

        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(pool.map(send, jobs))
        if int(time.time()) == int(window["start"]):
            return answers
    pytest.fail(f"{BURST_TRIES} bursts in a row did not fit in one second; the machine is too busy to measure this")


def test_the_rate_limit_is_one_limit_across_both_servers(start_servers, acme_token, globex_token):
    servers = start_servers(rate_limit_per_second=RATE_LIMIT)
    warm_up(servers, globex_token[1])  # another token: its own counter

    answers = burst_within_one_second(servers, acme_token[1])

    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] == RATE_LIMIT, f"{statuses[200]} accepted in one second; the limit is {RATE_LIMIT}"
    accepted_per_server = Counter(answer.server for answer in answers if answer.status == 200)
    assert accepted_per_server[0] and accepted_per_server[1]  # both took part in the one count
    for answer in answers:
        if answer.status == 429:
            assert int(answer.headers["Retry-After"]) >= 1
            assert answer.headers["RateLimit-Limit"] == str(RATE_LIMIT)
            assert answer.headers["RateLimit-Remaining"] == "0"
            assert int(answer.headers["RateLimit-Reset"]) >= 1
            assert answer.body["error"]["code"] == errors.RATE_LIMITED[0]


def test_a_revoked_token_is_refused_by_both_servers_within_a_second(start_servers, acme_token, alice):
    token, plaintext = acme_token
    servers = start_servers()
    warm_up(servers, plaintext)  # every worker now holds the live token in its per-process cache
    answers: list[Answer] = []
    stop = threading.Event()

    def poll(server: int) -> None:
        while not stop.is_set():
            answers.append(post_event(servers, server, plaintext))

    def answered_by_both(which) -> bool:
        return all(sum(1 for answer in list(answers) if answer.server == n and which(answer)) >= 3 for n in (0, 1))

    pollers = [threading.Thread(target=poll, args=(n % 2,)) for n in range(8)]
    for poller in pollers:
        poller.start()
    try:
        wait_until(lambda: answered_by_both(lambda answer: answer.status == 200), timeout=60, what="the live token")
        revoking_at = time.monotonic()
        services.api_token_revoke(token=token, by=alice)
        # Committed, and the shared cache refreshed on commit: from here each worker's copy lives 1 s at most.
        revoked_at = time.monotonic()
        in_force_at = revoked_at + TOKEN_LOCAL_SECONDS
        wait_until(lambda: answered_by_both(lambda answer: answer.sent_at > in_force_at), timeout=60, what="polls")
    finally:
        stop.set()
        for poller in pollers:
            poller.join()

    assert {answer.status for answer in answers} <= {200, 401}
    for server in (0, 1):
        mine = [answer for answer in answers if answer.server == server]
        last_accepted = max((answer for answer in mine if answer.status == 200), key=lambda answer: answer.sent_at)
        print(
            f"server {server}: the revocation took {revoked_at - revoking_at:.3f} s; the last request still "
            f"accepted left {last_accepted.sent_at - revoked_at:.3f} s after it had committed"
        )
        # Both clocks are the machine's one monotonic clock, and a request is answered after it is sent: a
        # request sent after `in_force_at` reached a worker whose copy of the live token had expired.
        late = [answer for answer in mine if answer.sent_at > in_force_at]
        assert {answer.status for answer in late} == {401}, f"server {server} accepted a request after the second"
        assert all(answer.body["error"]["code"] == errors.UNKNOWN_TOKEN[0] for answer in late)


def test_a_message_id_sent_to_both_servers_at_once_is_stored_exactly_once(start_servers, acme_token):
    token, plaintext = acme_token
    servers = start_servers()
    warm_up(servers, plaintext)
    message_ids = [f"both-servers-{n}" for n in range(MESSAGE_IDS)]
    # The copies of one messageId are next to each other, so the pool sends them at the same moment.
    jobs = [(message_id, server) for message_id in message_ids for server in (0, 1) for _ in range(COPIES_PER_SERVER)]

    with ThreadPoolExecutor(4 * COPIES_PER_SERVER) as pool:
        answers = list(pool.map(lambda job: (job[0], post_event(servers, job[1], plaintext, job[0])), jobs))

    assert {answer.status for _, answer in answers} == {200}
    rows = {
        row["message_id"]: row
        for row in Event.objects.filter(team=token.team, message_id__isnull=False)
        .values("message_id")
        .annotate(rows=Count("id"), id=Min("id"))
    }
    assert set(rows) == set(message_ids)
    assert {row["rows"] for row in rows.values()} == {1}
    for message_id in message_ids:
        bodies = [answer.body for sent_id, answer in answers if sent_id == message_id]
        assert {body["id"] for body in bodies} == {rows[message_id]["id"]}
        assert sorted(body["duplicate"] for body in bodies) == [False] + [True] * (2 * COPIES_PER_SERVER - 1)
