"""The per-team log of refused events: nothing is refused silently.

Each refusal after authentication is kept with what was sent (cut to 4 KB) and why; only the newest
KEEP_PER_TEAM rows per team are kept, so a stream of bad events cannot grow the table without bound.
"""

import json
import logging
from collections.abc import Mapping, Sequence

from django.db import DatabaseError, transaction

from events.ingest.validation import FieldError
from events.models import RejectedEvent
from events.tokens import secret

logger = logging.getLogger(__name__)

PAYLOAD_LIMIT = 4 * 1024
KEEP_PER_TEAM = 100


def rejection_record(
    *,
    team_id: int,
    token_hint: str,
    endpoint: str,
    status: int,
    payload: bytes | str,
    problems: Sequence[FieldError | Mapping[str, str]],
) -> RejectedEvent:
    # A body in UTF-16 or UTF-32 (refused: JSON must be UTF-8) read as UTF-8 would spell a token between NULs.
    text = payload.decode(json.detect_encoding(payload), "replace") if isinstance(payload, bytes) else payload
    # Scrubbed before it is cut: a token cut in two would keep its whole random part, and so be known.
    # PostgreSQL text cannot hold NUL, and a refused payload may well contain one.
    text = secret.scrub(text)[:PAYLOAD_LIMIT].replace("\x00", "\ufffd")
    return RejectedEvent(
        team_id=team_id,
        token_hint=token_hint,
        endpoint=endpoint,
        status=status,
        payload=text,
        errors=[_problem(p) for p in problems],
    )


def _problem(problem: FieldError | Mapping[str, str]) -> dict[str, str]:
    """A problem as stored: its path and message may quote keys and values of what was sent."""
    if isinstance(problem, FieldError):
        problem = {"path": problem.path, "message": problem.message}
    return {name: secret.scrub(value).replace("\x00", "\ufffd") for name, value in problem.items()}


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
