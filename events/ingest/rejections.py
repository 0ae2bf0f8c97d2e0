"""The per-team log of refused events: nothing a recognised token sends is refused silently.

Each refusal after the token was recognised is kept with what was sent (cut to 4 KB), why, and which token sent
it; only the newest KEEP_PER_TEAM rows per team are kept, so a stream of bad events cannot grow the table without
bound. Refusals that nothing else limits (COUNTED_STATUSES) are counted in one row per burst instead of a row each.
"""

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from events.ingest.validation import FieldError
from events.models import RejectedEvent
from events.tokens import secret

logger = logging.getLogger(__name__)

PAYLOAD_LIMIT = 4 * 1024
KEEP_PER_TEAM = 100

# A revoked token's 401 and a disabled team's 403 come before the rate limit, and a 429 is the rate limit: nothing
# bounds how many a client sends, so each is counted, not listed (every other refusal counts against the limit).
COUNTED_STATUSES = frozenset({401, 403, 429})
# Refusals of one token, status and endpoint belong to one burst (one row) until none came for this long.
BURST_GAP = timedelta(hours=1)
# A worker writes a burst's count at most this many times a second: a few refusals are counted exactly, and a flood
# costs the database that many UPDATEs a second per worker, not one per refusal. The price: past them, what came in
# a worker's last second of a burst is counted only if the burst goes on.
COUNT_WRITES_PER_SECOND = 10


def rejection_record(
    *,
    team_id: int,
    token_id: int | None,
    token_hint: str,
    endpoint: str,
    status: int,
    payload: bytes | str,
    problems: Sequence[FieldError | Mapping[str, str]],
    received_at: datetime | None = None,
) -> RejectedEvent:
    # A body in UTF-16 or UTF-32 (refused: JSON must be UTF-8) read as UTF-8 would spell a token between NULs.
    text = payload.decode(json.detect_encoding(payload), "replace") if isinstance(payload, bytes) else payload
    # Scrubbed before it is cut: a token cut in two would keep its whole random part, and so be known.
    # PostgreSQL text cannot hold NUL, and a refused payload may well contain one.
    text = secret.scrub(text)[:PAYLOAD_LIMIT].replace("\x00", "\ufffd")
    received_at = received_at or timezone.now()
    return RejectedEvent(
        team_id=team_id,
        token_id=token_id,
        token_hint=token_hint,
        endpoint=endpoint,
        status=status,
        payload=text,
        errors=[_problem(p) for p in problems],
        received_at=received_at,
        last_received_at=received_at,
    )


def _problem(problem: FieldError | Mapping[str, str]) -> dict[str, str]:
    """A problem as stored: its path and message may quote keys and values of what was sent."""
    if isinstance(problem, FieldError):
        problem = {"path": problem.path, "message": problem.message}
    return {name: secret.scrub(value).replace("\x00", "\ufffd") for name, value in problem.items()}


def refusal_record(record: RejectedEvent) -> None:
    """Log one refused request: listed on its own row, or counted into its burst's row (COUNTED_STATUSES)."""
    if record.status in COUNTED_STATUSES:
        _count(record)
    else:
        rejections_record([record])


def rejections_record(records: list[RejectedEvent]) -> None:
    """Store refusals and trim each team's log. A failure here must never turn a 4xx into a 500."""
    if not records:
        return
    try:
        with transaction.atomic():
            _store_and_trim(records)
    except DatabaseError:
        logger.warning("could not record %d refused events", len(records), exc_info=True)


def _store_and_trim(records: list[RejectedEvent]) -> None:
    RejectedEvent.objects.bulk_create(records)
    for team_id in {record.team_id for record in records}:
        newest = RejectedEvent.objects.filter(team_id=team_id).order_by("-id").values_list("id", flat=True)
        cutoff = newest[KEEP_PER_TEAM : KEEP_PER_TEAM + 1]
        if cutoff:
            RejectedEvent.objects.filter(team_id=team_id, id__lte=cutoff[0]).delete()


# --- Counted refusals -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    """This worker's count of one burst: writes in the current second, refusals not written yet, the latest one."""

    second: int
    writes: int
    unwritten: int
    last_at: datetime


_tallies: dict[tuple[int | None, int, str], _Tally] = {}
_tallies_lock = threading.Lock()


def _count(record: RejectedEvent) -> None:
    key = (record.token_id, record.status, record.endpoint)
    now = record.received_at
    second = int(now.timestamp())
    with _tallies_lock:
        tally = _tallies.get(key)
        if tally is None or now - tally.last_at >= BURST_GAP:
            # A count left unwritten when its burst ended belongs to that burst's row: it is given up.
            if len(_tallies) > 10_000:  # one entry per token seen refused: keep a worker with many tokens bounded
                _tallies.clear()
            tally = _tallies[key] = _Tally(second=second, writes=0, unwritten=0, last_at=now)
        if tally.second != second:
            tally.second, tally.writes = second, 0
        tally.last_at = now
        if tally.writes >= COUNT_WRITES_PER_SECOND:
            tally.unwritten += 1
            return
        tally.writes += 1
        record.count, tally.unwritten = 1 + tally.unwritten, 0
    try:
        with transaction.atomic():
            _add_to_burst(record)
    except DatabaseError:
        logger.warning("could not count %d refused requests", record.count, exc_info=True)


def _add_to_burst(record: RejectedEvent) -> None:
    """Add the record's count to its burst's row, or start a burst with the record as its row."""
    burst = RejectedEvent.objects.filter(
        team_id=record.team_id,
        token_id=record.token_id,
        status=record.status,
        endpoint=record.endpoint,
        last_received_at__gt=record.received_at - BURST_GAP,
    ).order_by("-id")[:1]
    # Two workers may start the same burst at once, and so two rows: one more row, once, is cheaper than a lock.
    added = RejectedEvent.objects.filter(pk__in=burst.values("pk")).update(
        count=F("count") + record.count, last_received_at=record.received_at
    )
    if not added:
        _store_and_trim([record])


def forget_tallies() -> None:
    """For tests: forget this worker's unwritten counts."""
    with _tallies_lock:
        _tallies.clear()
