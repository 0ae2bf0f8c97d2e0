"""The per-token rate limit reserves shares of the limit in Redis and admits from them locally."""

from concurrent.futures import ThreadPoolExecutor

import redis
from django.conf import settings

from events.ingest import throttling


def _redis_value(key: str) -> int:
    from django.core.cache import caches

    backend = caches["default"]
    return int(redis.Redis.from_url(settings.REDIS_URL).get(backend.make_and_validate_key(key)) or 0)


def test_a_process_asks_redis_once_per_share_and_never_admits_past_the_limit():
    answers = [throttling.admit(token_id=424242, limit=1000, window=7) for _ in range(1001)]

    assert [allowed for allowed, _ in answers] == [True] * 1000 + [False]
    # 100 reservations of 10 were enough for 1,000 requests; the refused one asked for one more.
    assert _redis_value("events:rate:424242:7") == 1010
    assert [count for _, count in answers[:3]] == [1, 2, 3]


def test_two_processes_together_never_admit_more_than_the_limit():
    processes = [throttling.Leases(), throttling.Leases()]
    admitted = sum(
        throttling.admit(token_id=515151, limit=250, window=9, leases=processes[i % 2])[0] for i in range(300)
    )

    assert admitted <= 250
    assert admitted >= 250 - 2  # at most one share per process left unused


def test_small_limits_are_counted_one_request_at_a_time():
    answers = [throttling.admit(token_id=616161, limit=3, window=11)[0] for _ in range(5)]

    assert answers == [True, True, True, False, False]
    assert _redis_value("events:rate:616161:11") == 5


def test_threads_taking_from_one_reservation_at_once_admit_each_request_once():
    leases = throttling.Leases()
    leases.keep(717171, 5, left=2_000, count=2_500)  # 2,000 left to admit locally, as requests 501 to 2,500

    def take_many() -> list[int | None]:
        return [leases.take_local(717171, 5) for _ in range(1_000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = [count for counts in pool.map(lambda _: take_many(), range(8)) for count in counts]

    admitted = [count for count in taken if count is not None]
    assert sorted(admitted) == list(range(501, 2_501))
    assert leases.take_local(717171, 6) is None  # a reservation is worth nothing in the next window
