"""Per-token rate limit, counted in the shared cache (Redis) so every worker and app server share one limit.

A fixed one-second window per token: one Lua script (INCR, EXPIRE on first count), a single round trip. (We
used django-ratelimit first; its counter costs three round trips per request — SET NX, EXISTS, INCR — which
cost more than the rest of an ingest request on a busy machine.) Without Redis (`make run`) the local-memory
cache counts per process. If the cache is unreachable the limit fails open: refusing every event because the
counter is down would lose data, which is worse than letting a burst through.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 1


# INCR, and start the key's expiry with its first count: one command, one round trip, atomic in Redis.
_COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
def _redis_script(backend: RedisCache):
    """The counting script, bound once to this cache backend's Redis client (Django keeps a backend per thread).

    Django's RedisCache builds a new client object for every call, and redis-py's client setup costs about
    half a millisecond of CPU: on the hot path that was more than the whole rest of the request.
    """
    script = getattr(backend, "_events_count_script", None)
    if script is None:
        script = backend._cache.get_client(None, write=True).register_script(_COUNT_SCRIPT)
        backend._events_count_script = script
    return script


def count_request(key: str) -> int:
    """Add one to `key`'s counter for this window and return the new count."""
    backend = caches["default"]  # `cache` is only a proxy: the backend says whether Redis is behind it
    if isinstance(backend, RedisCache):
        return int(_redis_script(backend)(keys=[backend.make_and_validate_key(key)], args=[WINDOW_SECONDS + 1]))
    cache.add(key, 0, WINDOW_SECONDS + 1)
    return cache.incr(key)


class TokenRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        limit = settings.EVENTS_RATE_LIMIT_PER_SECOND
        now = time.time()
        window = int(now)
        try:
            count = count_request(f"events:rate:{request.auth.id}:{window}")
        except Exception:  # The cache is down: see the module docstring.
            logger.warning("rate limit counter unavailable; allowing the request", exc_info=True)
            return True
        request.rate_limit = {"count": count, "limit": limit, "reset": max(window + WINDOW_SECONDS - now, 0)}
        return count <= limit

    def wait(self) -> float:
        return WINDOW_SECONDS


def rate_limit_headers(usage: dict) -> dict[str, str]:
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
