"""Per-token rate limit, counted in the shared cache (Redis) so every worker and app server share one limit.

A fixed one-second window per token: one pipelined INCR + EXPIRE, a single round trip on the hot path. (We
used django-ratelimit first; its counter costs three round trips per request — SET NX, EXISTS, INCR — which
cost more than the rest of an ingest request on a busy machine.) Without Redis (`make run`) the local-memory
cache counts per process. If the cache is unreachable the limit fails open: refusing every event because the
counter is down would lose data, which is worse than letting a burst through.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 1


def count_request(key: str) -> int:
    """Add one to `key`'s counter for this window and return the new count."""
    if isinstance(cache, RedisCache):
        redis_key = cache.make_and_validate_key(key)
        pipeline = cache._cache.get_client(redis_key, write=True).pipeline(transaction=False)
        pipeline.incr(redis_key)
        pipeline.expire(redis_key, WINDOW_SECONDS + 1, nx=True)
        count, _ = pipeline.execute()
        return count
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
