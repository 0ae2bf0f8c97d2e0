"""Authenticating an Events API request by its token, for every way into the API.

The token comes from `X-Auth-Token`, or from HTTP Basic with the token as username (what Segment's libraries
send); never from the query string or the body, which end up in logs. A malformed token is refused before any
query; a well-formed one is found by its digest (events.tokens.lookup, cached) and compared in constant time.
`last_used_at` is written at most once a minute per token. EventsTokenAuthentication wraps it for DRF.

The rule a newcomer must know: `authenticate_token` is the one place that decides 401 or 403; every adapter
calls it rather than checking a token itself.
"""

import base64
import hmac
from datetime import UTC, datetime, timedelta

from rest_framework import status
from rest_framework.authentication import BaseAuthentication

from events.ingest import errors
from events.ingest.errors import ApiError
from events.models import ApiToken
from events.tokens import lookup, secret

LAST_USED_PRECISION = timedelta(minutes=1)
CHALLENGE = 'X-Auth-Token realm="Canvas Events"'


def _unauthorized(code_and_message: tuple[str, str]) -> ApiError:
    return ApiError(status.HTTP_401_UNAUTHORIZED, code_and_message, headers={"WWW-Authenticate": CHALLENGE})


class RecognisedTokenRefused(ApiError):
    """A refusal of a token Canvas made (revoked, or its team's API is off): the client is told no more than for an
    unknown token, but the refused-events log names the token, so its team sees who still uses it."""

    def __init__(self, token: lookup.TokenSnapshot, status_code: int, code_and_message: tuple[str, str]) -> None:
        headers = {"WWW-Authenticate": CHALLENGE} if status_code == status.HTTP_401_UNAUTHORIZED else None
        super().__init__(status_code, code_and_message, headers=headers)
        self.token = token


def authenticate_token(plaintext: str | None) -> lookup.TokenSnapshot:
    """The live token for this plaintext, or an ApiError (401 unknown/malformed/revoked, 403 API disabled)."""
    if not plaintext:
        raise _unauthorized(errors.MISSING_TOKEN)
    # Looked up by digest, so the database never compares secrets; the cached entry is then checked against
    # the digest in constant time, so a cache mix-up can never let one token pass for another.
    digest = secret.digest(plaintext) if plaintext.isascii() else ""
    # A token this process has known for less than a second passed the format check then: only tokens Canvas
    # made have snapshots. Skipping the check again saves a regex, a CRC and a base62 encoding per request.
    snapshot = lookup.known_locally(digest)
    if snapshot is None:
        if not secret.is_well_formed(plaintext):
            raise _unauthorized(errors.MALFORMED_TOKEN)
        snapshot = lookup.lookup(digest)
    if snapshot is None or not hmac.compare_digest(snapshot.digest, digest):
        raise _unauthorized(errors.UNKNOWN_TOKEN)
    if snapshot.revoked:
        raise RecognisedTokenRefused(snapshot, status.HTTP_401_UNAUTHORIZED, errors.UNKNOWN_TOKEN)
    if not snapshot.api_enabled:
        raise RecognisedTokenRefused(snapshot, status.HTTP_403_FORBIDDEN, errors.API_DISABLED)
    _touch_last_used(snapshot)
    return snapshot


_last_touch: dict[int, datetime] = {}


def _now() -> datetime:
    """timezone.now() (USE_TZ is on), without its settings look-up on every request."""
    return datetime.now(UTC)


def _touch_last_used(snapshot: lookup.TokenSnapshot) -> None:
    """Record use at most once a minute per token and process, with a conditional UPDATE.

    The WHERE clause makes concurrent workers harmless: only one of them changes the row each minute.
    """
    now = _now()
    last = _last_touch.get(snapshot.id) or snapshot.last_used_at
    if last is not None and now - last < LAST_USED_PRECISION:
        return
    cutoff = now - LAST_USED_PRECISION
    _last_touch[snapshot.id] = now
    ApiToken.objects.filter(pk=snapshot.id).exclude(last_used_at__gt=cutoff).update(last_used_at=now)


def token_from_headers(meta: dict) -> str | None:
    """The token from `X-Auth-Token`, or from HTTP Basic with the token as username (what Segment's libraries
    send). Never from the query string or the body: those end up in logs."""
    token = meta.get("HTTP_X_AUTH_TOKEN")
    if token:
        return token.strip()
    scheme, _, credentials = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        username, _, _password = base64.b64decode(credentials.strip(), validate=True).decode("ascii").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise _unauthorized(errors.MALFORMED_TOKEN) from None
    return username


class EventsTokenAuthentication(BaseAuthentication):
    """Returns (None, TokenSnapshot): the caller is a team's event stream, not a user."""

    def authenticate(self, request):
        return None, authenticate_token(token_from_headers(request.META))

    def authenticate_header(self, request) -> str:
        return CHALLENGE
