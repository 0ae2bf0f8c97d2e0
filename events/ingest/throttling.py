"""Per-token rate limit, counted in the shared cache (Redis) so every worker and app server share one limit.

A fixed one-second window per token, counted with one Lua script (INCRBY, EXPIRE on first count) per round
trip, and reserved in small shares so that most requests need no round trip at all (see LEASE_SHARE); round
trips are what a counter costs (docs/performance.md#the-rate-limit). Without Redis (`make run`) the local-memory
cache counts per process. If the cache is unreachable the limit fails open: refusing every event because the
counter is down would lose data, which is worse than letting a burst through.
"""

import logging
import time
from collections.abc import Iterator
from itertools import count as count_from
from typing import TypedDict

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.commands.core import Script

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 1


# INCRBY, and start the key's expiry with its first count: one command, one round trip, atomic in Redis.
_COUNT_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
# A process reserves this share of a token's per-second limit at a time and admits that many requests before
# asking Redis again: at the default 1,000/s that is one round trip per 10 requests instead of one per request.
# Reservations are counted in Redis before anything is admitted, so all processes together never admit more
# than the limit; a process may leave part of its last reservation unused, so near the limit up to one
# reservation per process can go unused in a window. Limits under 100/s reserve one request at a time (exact).
LEASE_SHARE = 100
_SCRIPT_ATTRIBUTE = "_events_count_script"  # where _redis_script keeps the bound script on a cache backend


class Usage(TypedDict):
    """One token's use of this window: a count past the limit means refused; `reset` is in seconds."""

    count: int
    limit: int
    reset: float


def _redis_script(backend: RedisCache) -> Script:
    """The counting script, bound once to this cache backend's Redis client (Django keeps a backend per thread).

    Django's RedisCache builds a new client object for every call, which costs more than the rest of the request
    (docs/performance.md#the-rate-limit).
    """
    script: Script | None = getattr(backend, _SCRIPT_ATTRIBUTE, None)
    if script is None:
        script = backend._cache.get_client(None, write=True).register_script(_COUNT_SCRIPT)
        setattr(backend, _SCRIPT_ATTRIBUTE, script)
    return script


def count_requests(key: str, amount: int) -> int:
    """Add `amount` to `key`'s counter for this window and return the new count."""
    backend = caches["default"]  # `cache` is only a proxy: the backend says whether Redis is behind it
    if isinstance(backend, RedisCache):
        return int(_redis_script(backend)(keys=[backend.make_and_validate_key(key)], args=[WINDOW_SECONDS + 1, amount]))
    cache.add(key, 0, WINDOW_SECONDS + 1)
    return cache.incr(key, amount)


class Leases:
    """A process's unused reservations: token id -> (window, draws, left, base).

    A reservation of the current window admits the requests that draw the numbers 1 to `left` from `draws`
    (an itertools.count: one call in C, so no two threads ever draw the same number, and no lock is needed),
    the n-th of them as the `base + n`-th request of the window. An entry of an earlier window is worthless and
    is replaced by the next reservation."""

    def __init__(self) -> None:
        self.by_token: dict[int, tuple[int, Iterator[int], int, int]] = {}

    def take_local(self, token_id: int, window: int) -> int | None:
        """Admit one request from a reservation: the count of admitted requests, or None when none is left."""
        lease = self.by_token.get(token_id)
        if lease is None or lease[0] != window:
            return None
        _, draws, left, base = lease
        drawn = next(draws)
        return base + drawn if drawn <= left else None

    def keep(self, token_id: int, window: int, left: int, count: int) -> None:
        """Admit `left` more requests of this window locally; `count` is the shared count after reserving them."""
        current = self.by_token.get(token_id)
        if current is not None and current[0] > window:
            return  # a thread that read the clock later has reserved for the next window already
        if len(self.by_token) > 10_000:  # one entry per token seen: keep a process with many tokens bounded
            self.by_token.clear()
        self.by_token[token_id] = (window, count_from(1), left, count - left)


_leases = Leases()


def reset() -> None:
    """For tests: forget this process's reservations (the counts in Redis stay)."""
    _leases.by_token.clear()


def admit(*, token_id: int, limit: int, window: int, leases: Leases = _leases) -> tuple[bool, int]:
    """Whether one more request of this token fits this window's limit, and how many were admitted so far (as far
    as the process holding `leases` knows: other processes' unused reservations count as admitted)."""
    count = leases.take_local(token_id, window)
    if count is not None:
        return True, count
    size = max(1, limit // LEASE_SHARE)
    count = count_requests(f"events:rate:{token_id}:{window}", size)
    granted = min(size, max(0, limit - (count - size)))
    if granted:
        leases.keep(token_id, window, granted - 1, count)
        return True, count - (granted - 1)
    return False, count


def usage_of(token_id: int, *, limit: int | None = None) -> Usage | None:
    """Admit one request of this token: {"count", "limit", "reset"}, a count past the limit meaning refused.
    None when the counter is unreachable: see the module docstring. `limit` defaults to
    EVENTS_RATE_LIMIT_PER_SECOND."""
    if limit is None:
        limit = settings.EVENTS_RATE_LIMIT_PER_SECOND
    now = time.time()
    window = int(now)
    try:
        allowed, count = admit(token_id=token_id, limit=limit, window=window)
    except Exception:
        logger.warning("rate limit counter unavailable; allowing the request", exc_info=True)
        return None
    return {
        "count": count if allowed else max(count, limit + 1),
        "limit": limit,
        "reset": max(window + WINDOW_SECONDS - now, 0),
    }


def is_refused(usage: Usage | None) -> bool:
    return usage is not None and usage["count"] > usage["limit"]


def rate_limit_headers(usage: Usage) -> dict[str, str]:
    """IETF draft RateLimit header fields, plus Retry-After once the limit is reached."""
    reset = max(1, round(usage["reset"] + 0.5))
    headers = {
        "RateLimit-Limit": str(usage["limit"]),
        "RateLimit-Remaining": str(max(usage["limit"] - usage["count"], 0)),
        "RateLimit-Reset": str(reset),
    }
    if usage["count"] > usage["limit"]:
        headers["Retry-After"] = str(reset)
    return headers
