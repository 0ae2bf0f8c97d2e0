"""Per-token rate limit, counted in the shared cache (Redis) so every worker and app server share one limit.

Counting is django-ratelimit's fixed window (an atomic INCR per request). If the cache is unreachable the
limit fails open: refusing every event because the counter is down would lose data, which is worse.
"""

import logging

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)


class TokenRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        try:
            usage = get_usage(
                request._request,
                group="events-api",
                key=_token_key_for(request),
                rate=f"{settings.EVENTS_RATE_LIMIT_PER_SECOND}/s",
                increment=True,
            )
        except Exception:  # The cache is down: see the module docstring.
            logger.warning("rate limit counter unavailable; allowing the request", exc_info=True)
            return True
        if usage is None:
            return True
        request.rate_limit = usage
        return not usage["should_limit"]

    def wait(self) -> float:
        return 1.0


def _token_key_for(request):
    token_id = str(request.auth.id)
    return lambda group, django_request: token_id


def rate_limit_headers(usage: dict) -> dict[str, str]:
    """IETF draft RateLimit header fields, plus Retry-After when the limit is reached."""
    remaining = max(usage["limit"] - usage["count"], 0)
    reset = max(usage["time_left"], 1)
    headers = {
        "RateLimit-Limit": str(usage["limit"]),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }
    if usage["should_limit"]:
        headers["Retry-After"] = str(reset)
    return headers
