"""Token look-ups for the ingest hot path, cached in two tiers.

Each worker process keeps what it looked up for TOKEN_LOCAL_SECONDS (1 s); behind it the shared cache (Redis
in production) keeps it for a minute, so a fleet of workers asks the database about a token about once a
minute instead of once a request. Revoking a token or disabling a team's API overwrites the shared entry on
commit with what the database now says; every worker then sees the change within the 1 s of its local copy.

Look-ups store what they read with `add`, never `set`: a look-up that read the database just before a
revocation committed must not put the live token back after the revocation refreshed the entry.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from time import monotonic  # imported by name, so that tests can move this module's clock alone

from django.core.cache import cache
from django.db.models import QuerySet

from events.models import ApiToken

logger = logging.getLogger(__name__)

TOKEN_LOCAL_SECONDS = 1.0
TOKEN_SHARED_SECONDS = 60


@dataclass(frozen=True, slots=True)
class TokenSnapshot:
    """What authentication needs to know about a token; never holds the secret."""

    id: int
    digest: str
    team_id: int
    hint: str
    name: str
    revoked: bool
    api_enabled: bool
    last_used_at: datetime | None


_local: dict[str, tuple[float, TokenSnapshot | None]] = {}


def _shared_key(digest: str) -> str:
    return f"events:token:{digest}"


def _snapshots(tokens: QuerySet[ApiToken]) -> dict[str, TokenSnapshot]:
    rows = tokens.values_list(
        "id", "digest", "team_id", "hint", "name", "revoked_at", "team__events_api_enabled", "last_used_at"
    )
    return {
        digest: TokenSnapshot(token_id, digest, team_id, hint, name, revoked_at is not None, enabled, last_used_at)
        for token_id, digest, team_id, hint, name, revoked_at, enabled, last_used_at in rows
    }


def _from_database(digest: str) -> TokenSnapshot | None:
    return _snapshots(ApiToken.objects.filter(digest=digest)).get(digest)


def _shared_get(digest: str) -> TokenSnapshot | bool | None:
    """The shared copy, or False when there is none or the shared cache cannot be reached.

    A cache outage must not stop ingestion: the database still answers, only more often.
    """
    try:
        return cache.get(_shared_key(digest), default=False)
    except Exception:
        logger.warning("shared token cache unavailable; reading the database", exc_info=True)
        return False


def _shared_add(digest: str, snapshot: TokenSnapshot | None) -> None:
    """Store what a look-up read, unless a refresh after a commit has stored something newer meanwhile."""
    try:
        cache.add(_shared_key(digest), snapshot, TOKEN_SHARED_SECONDS)
    except Exception:
        logger.warning("shared token cache unavailable; not caching", exc_info=True)


def _fresh_local(digest: str) -> tuple[float, TokenSnapshot | None] | None:
    """This process's entry for the digest while it is younger than TOKEN_LOCAL_SECONDS."""
    cached = _local.get(digest)
    return cached if cached is not None and monotonic() - cached[0] < TOKEN_LOCAL_SECONDS else None


def known_locally(digest: str) -> TokenSnapshot | None:
    """This process's fresh copy of the token with this digest; None when there is none (or no such token)."""
    cached = _fresh_local(digest)
    return cached[1] if cached is not None else None


def lookup(digest: str) -> TokenSnapshot | None:
    """The token with this digest, or None when there is no such token."""
    cached = _fresh_local(digest)
    if cached is not None:
        return cached[1]
    now = monotonic()
    snapshot = _shared_get(digest)
    if snapshot is False:
        snapshot = _from_database(digest)
        _shared_add(digest, snapshot)
    if len(_local) > 10_000:  # Unknown digests are cached too; keep a flood of them from growing memory.
        _local.clear()
    _local[digest] = (now, snapshot)
    return snapshot


def _refresh(tokens: QuerySet[ApiToken]) -> None:
    """Call on commit: replace the shared entries of these tokens with the committed state.

    Overwriting rather than deleting is what closes the race described at the top of this module.
    """
    snapshots = _snapshots(tokens)
    for digest in snapshots:
        _local.pop(digest, None)
    try:
        cache.set_many({_shared_key(digest): snapshot for digest, snapshot in snapshots.items()}, TOKEN_SHARED_SECONDS)
    except Exception:
        # The change is committed; workers reading the database (the cache is down for them too) see it at once.
        # An entry that survives the outage expires within TOKEN_SHARED_SECONDS.
        logger.error("shared token cache unavailable; could not refresh %d tokens", len(snapshots), exc_info=True)


def refresh_token(digest: str) -> None:
    _refresh(ApiToken.objects.filter(digest=digest))


def refresh_team_tokens(team_id: int) -> None:
    _refresh(ApiToken.objects.filter(team_id=team_id))


def clear_local() -> None:
    """For tests: forget this process's copies."""
    _local.clear()
