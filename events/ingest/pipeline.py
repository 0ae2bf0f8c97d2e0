"""The one ingest pipeline: authenticate -> throttle -> read -> parse -> validate -> store -> answer.

Every POST to an ingest endpoint is decided here, as plain functions of the request's WSGI environ (Django's
request.META holds the same keys) and its body stream, with no Django request object. Two thin adapters call
`answer_request` and write its Answer out: the DRF views (events.ingest.views, the documented contract, which
serve every request when the front end is off) and the WSGI front end (events.ingest.wsgi, which answers in front
of Django's request machinery). Whichever takes a request answers it, refusals included: a refusal after
authentication is kept in the refused-events log, and every answer is counted in the metrics, each once, here.

ROUTES is the one table of ingest paths; events.ingest.urls builds its URL patterns from it and the front end
its look-up.
"""

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict, cast
from urllib.parse import parse_qsl

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from rest_framework import status

from accounts.models import Team
from events.ingest import errors
from events.ingest.body import Readable, read_body
from events.ingest.errors import ApiError
from events.ingest.group_commit import (
    Arrival,
    CommitterUnavailable,
    can_group_commit,
    committer,
    connection_was_cut,
)
from events.ingest.rejections import refusal_record, rejection_record, rejections_record
from events.ingest.storage import event_row, json_text, store_batch, store_row
from events.ingest.throttling import is_refused, rate_limit_headers, usage_of
from events.ingest.validation import (
    EMPTY_BODY,
    MAX_BATCH_EVENTS,
    SEGMENT_TYPES,
    EventPayload,
    FieldError,
    InvalidJSON,
    parse_json,
    validate_batch,
    validate_batch_item,
    validate_event,
    validate_segment_message,
)
from events.metrics import record_answer
from events.models import Event, RejectedEvent
from events.tokens.authentication import RecognisedTokenRefused, authenticate_token, token_from_headers
from events.tokens.lookup import TokenSnapshot
from events.warehouse.dry_run import warehouse_changes

logger = logging.getLogger(__name__)
_thread = threading.local()

DATABASE_RETRY_AFTER_SECONDS = 5
EVENT_BODY_LIMIT = 32 * 1024
BATCH_BODY_LIMIT = 500 * 1024

# A request's WSGI environ, or Django's request.META, which holds the same keys.
Meta = dict[str, Any]


def thread_database() -> BaseDatabaseWrapper:
    """This thread's connection to the default database, connections[DEFAULT_DB_ALIAS], remembered: Django keeps
    it in an asgiref Local, whose every read is dear on this path (docs/performance.md#the-front-end)."""
    try:
        database: BaseDatabaseWrapper = _thread.database
        return database
    except AttributeError:
        database = _thread.database = connections[DEFAULT_DB_ALIAS]
        return database


# --- Routes ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a path of the Events API takes: one Canvas event, one Segment message, or a batch."""

    kind: Literal["event", "segment", "batch"]
    name: str  # counted and logged under this name: "/v1/event", "/v1/track", "/v1/batch"
    body_limit: int
    segment_type: str | None = None  # the type a Segment endpoint's messages default to
    documented: bool = True  # the one spelling in the OpenAPI schema; slash spellings and aliases are not


def _routes() -> dict[str, Endpoint]:
    event = Endpoint("event", "/v1/event", EVENT_BODY_LIMIT)
    batch = Endpoint("batch", "/v1/batch", BATCH_BODY_LIMIT)
    segment = [Endpoint("segment", f"/v1/{kind}", EVENT_BODY_LIMIT, segment_type=kind) for kind in SEGMENT_TYPES]
    routes = {}
    # Both spellings answer directly: a redirect would turn a client's POST into a GET.
    for endpoint in [event, batch, *segment]:
        routes[endpoint.name] = endpoint
        routes[endpoint.name + "/"] = replace(endpoint, documented=False)
    routes["/v1/import"] = replace(batch, documented=False)  # Segment's alias of /v1/batch
    return routes


ROUTES: dict[str, Endpoint] = _routes()


# --- The answer -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    """What the adapter writes out: a status, a JSON body and the headers the pipeline decided on."""

    status: int
    body: Mapping[str, object]  # a JSON object
    headers: dict[str, str]


class _ResultLine(TypedDict):
    """A batch receipt's line for one event."""

    index: int
    status: Literal["stored", "duplicate", "rejected"]
    id: NotRequired[int]  # stored or duplicate
    errors: NotRequired[list[dict[str, str]]]  # rejected


class _Receipt(TypedDict):
    stored: int
    duplicates: int
    rejected: int
    results: list[_ResultLine]


@dataclass(slots=True)
class _Request:
    """What the pipeline has learned of a request so far: the refused-events log and the answer need it."""

    endpoint: Endpoint
    meta: Meta
    received_at: datetime
    token: TokenSnapshot | None = None
    raw: bytes = b""
    headers: dict[str, str] | None = None  # the RateLimit-* headers, once the request is counted


def answer_request(endpoint: Endpoint, meta: Meta, stream: Readable) -> Answer:
    """Decide a POST to `endpoint`: `meta` is the WSGI environ, `stream` the body (read at most to its limit)."""
    started = time.perf_counter()
    # Announced to the group committer as the request starts, so that it knows to wait for this row (Arrival).
    single = endpoint.kind != "batch"
    arrival = Arrival(committer()) if single and can_group_commit(thread_database()) else None
    request = _Request(endpoint, meta, received_at=timezone.now())
    try:
        answer = _answer(request, stream, arrival)
    finally:
        if arrival is not None:
            arrival.done()
    record_answer(endpoint=endpoint.name, status=answer.status, data=answer.body, seconds=time.perf_counter() - started)
    return answer


def _answer(request: _Request, stream: Readable, arrival: Arrival | None) -> Answer:
    try:
        token = request.token = authenticate_token(token_from_headers(request.meta))
        # Before the body: a refused request is counted too, as is the log row it writes.
        headers = request.headers = _throttle(token)
        request.raw = _read(request, stream)
        document = _parse(request.raw)
        if request.endpoint.kind == "batch":
            return _answer_batch(request, token, headers, document)
        return _answer_one(request, token, headers, document, arrival)
    except ApiError as error:
        # Every refusal once the token is recognised, the revoked token's included (authentication names it).
        recognised = error.token if isinstance(error, RecognisedTokenRefused) else request.token
        if recognised is not None:
            problems = error.fields or [{"path": "", "message": error.message}]
            refusal_record(_refusal(request, recognised, error.status_code, request.raw, problems))
        return _refused(error, request.headers)
    except (OperationalError, InterfaceError, CommitterUnavailable):
        # The database is unreachable: tell the client to retry, never a 500. Nothing was stored.
        code, message = errors.DATABASE_UNAVAILABLE
        headers = {**(request.headers or {}), "Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        return Answer(status.HTTP_503_SERVICE_UNAVAILABLE, errors.error_body(code, message), headers)
    except Exception:
        # Answered in the one shape by either adapter; the traceback goes to the log.
        logger.exception("ingest request to %s failed", request.endpoint.name)
        code, message = errors.INTERNAL_ERROR
        return Answer(status.HTTP_500_INTERNAL_SERVER_ERROR, errors.error_body(code, message), {})


def _refused(error: ApiError, headers: dict[str, str] | None) -> Answer:
    return Answer(
        error.status_code,
        errors.error_body(error.code, error.message, error.fields),
        {**(headers or {}), **error.headers},
    )


# --- Read and parse -------------------------------------------------------------------------------------------


def _read(request: _Request, stream: Readable) -> bytes:
    """The body: 415 unless declared JSON, 411 for a chunked body without a length, 400 when there is none; then
    read_body's own refusals (413, 408, gzip)."""
    meta = request.meta
    content_type = meta.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, errors.UNSUPPORTED_MEDIA_TYPE)
    length = meta.get("CONTENT_LENGTH")
    if "HTTP_TRANSFER_ENCODING" in meta and not length:
        raise ApiError(status.HTTP_411_LENGTH_REQUIRED, errors.LENGTH_REQUIRED)
    if not length or length == "0":
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, fields=[FieldError("", EMPTY_BODY)])
    return read_body(stream, meta=meta, limit=request.endpoint.body_limit)


def _parse(raw: bytes) -> Any:
    try:
        return parse_json(raw)
    except InvalidJSON as invalid:
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, fields=invalid.errors) from None


def _invalid(problems: list[FieldError]) -> ApiError:
    return ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_PAYLOAD, fields=problems)


# --- Throttle -------------------------------------------------------------------------------------------------


def _throttle(token: TokenSnapshot) -> dict[str, str]:
    """Count the request against its token's rate limit: its RateLimit-* headers (none while the counter is
    unreachable), or a 429."""
    usage = usage_of(token.id)
    if usage is None:
        return {}
    headers = rate_limit_headers(usage)
    if is_refused(usage):
        raise ApiError(status.HTTP_429_TOO_MANY_REQUESTS, errors.RATE_LIMITED, headers=headers)
    return headers


# --- One event or Segment message -----------------------------------------------------------------------------


def _answer_one(
    request: _Request, token: TokenSnapshot, headers: dict[str, str], document: Any, arrival: Arrival | None
) -> Answer:
    endpoint, received_at = request.endpoint, request.received_at
    if endpoint.kind == "event":
        payload, problems = validate_event(document, received_at=received_at)
    else:
        payload, problems = validate_segment_message(
            document, received_at=received_at, default_type=endpoint.segment_type
        )
    if payload is None:  # then there are problems
        raise _invalid(problems)
    if is_dry_run(request.meta):
        return Answer(200, dry_run_report(token=token, payloads=[payload]), headers)
    row = event_row(team_id=token.team_id, token_id=token.id, payload=payload, received_at=received_at)
    stored = arrival.committer.submit(row, arrival=arrival) if arrival is not None else store_row(row)
    body = {"id": stored.id, "duplicate": stored.duplicate}
    if endpoint.kind == "segment":
        body = {"success": True, **body}
    return Answer(200, body, headers)


# --- A batch --------------------------------------------------------------------------------------------------


def _answer_batch(request: _Request, token: TokenSnapshot, headers: dict[str, str], document: Any) -> Answer:
    """Valid events are stored and invalid ones refused, each with its JSON paths: 200 when all were stored (or
    were duplicates), 400 with the receipt when some were refused."""
    received_at = request.received_at
    batch, problems = validate_batch(document, received_at=received_at)
    if batch is None:
        raise _invalid(problems)
    if len(batch.items) > MAX_BATCH_EVENTS:
        raise ApiError(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            errors.BODY_TOO_LARGE,
            message=f"A batch holds at most {MAX_BATCH_EVENTS:,} events; this one has {len(batch.items):,}.",
        )
    # Each line is filled in below: a refusal's now, a stored event's once the batch is stored.
    results: list[_ResultLine | None] = [None] * len(batch.items)
    payloads: list[EventPayload] = []
    stored_at: list[int] = []  # the index of each payload's item
    refusals: list[RejectedEvent] = []
    all_problems: list[FieldError] = []
    for index, item in enumerate(batch.items):
        payload, problems = validate_batch_item(item, index=index, received_at=received_at, batch=batch)
        if payload is None:  # then there are problems
            results[index] = {"index": index, "status": "rejected", "errors": _fields(problems)}
            all_problems.extend(problems)
            refusals.append(_refusal(request, token, 400, json_text(item), problems))
        else:
            payloads.append(payload)
            stored_at.append(index)
    if is_dry_run(request.meta):
        report = dry_run_report(token=token, payloads=payloads)
        report["rejected"] = [result for result in results if result is not None]
        return Answer(400 if refusals else 200, report, headers)
    _check_connection(thread_database())
    team_id, token_id = token.team_id, token.id
    rows = [event_row(team_id=team_id, token_id=token_id, payload=p, received_at=received_at) for p in payloads]
    for index, (event_id, duplicate) in zip(stored_at, store_batch(rows), strict=True):
        results[index] = {"index": index, "status": "duplicate" if duplicate else "stored", "id": event_id}
    rejections_record(refusals)
    receipt = _batch_receipt(cast("list[_ResultLine]", results))  # every line is filled in now
    if not refusals:
        return Answer(200, receipt, headers)
    code, _ = errors.INVALID_EVENTS
    message = f"{len(refusals)} of {len(batch.items)} events were refused; the others were stored."
    return Answer(400, {**errors.error_body(code, message, _fields(all_problems)), **receipt}, headers)


def _check_connection(database: BaseDatabaseWrapper) -> None:
    """Django's health check of a reused connection before its first query (CONN_HEALTH_CHECKS), without its
    SELECT 1 round trip: a connection the server hung up on is closed, and the COPY opens a new one
    (docs/performance.md#the-front-end)."""
    # django-stubs 6.1 lacks the wrapper's health_check_* attributes (Django 4.1+), hence the two ignores.
    if database.connection is None or database.health_check_done or not database.health_check_enabled:  # type: ignore[attr-defined]
        return
    if database.connection.closed or connection_was_cut(database.connection):
        database.close()
    else:
        database.health_check_done = True  # type: ignore[attr-defined]


def _batch_receipt(results: list[_ResultLine]) -> _Receipt:
    statuses = [result["status"] for result in results]
    return {
        "stored": statuses.count("stored"),
        "duplicates": statuses.count("duplicate"),
        "rejected": statuses.count("rejected"),
        "results": results,
    }


def _fields(problems: list[FieldError]) -> list[dict[str, str]]:
    return [{"path": problem.path, "message": problem.message} for problem in problems]


def _refusal(
    request: _Request,
    token: TokenSnapshot,
    status_code: int,
    payload: bytes | str,
    problems: Sequence[FieldError | Mapping[str, str]],
) -> RejectedEvent:
    return rejection_record(
        team_id=token.team_id,
        token_id=token.id,
        token_hint=token.hint,
        endpoint=request.endpoint.name,
        status=status_code,
        payload=payload,
        problems=problems,
        received_at=request.received_at,
    )


# --- Dry runs -------------------------------------------------------------------------------------------------


def is_dry_run(meta: Meta) -> bool:
    """`?dry_run=1` (or true, yes): validate and report, store nothing."""
    query = meta.get("QUERY_STRING")
    if not query:
        return False
    values = [value for name, value in parse_qsl(query, keep_blank_values=True) if name == "dry_run"]
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


class _WouldStore(TypedDict):
    type: str
    event: str
    timestamp: str
    messageId: str | None
    duplicate: bool


class DryRunReport(TypedDict):
    dry_run: Literal[True]
    events: list[_WouldStore]
    warehouse: dict[str, Any]
    rejected: NotRequired[list[_ResultLine]]  # a batch's refused events


def dry_run_report(*, token: TokenSnapshot, payloads: list[EventPayload]) -> DryRunReport:
    """What storing these events would do, without storing anything: each event as it would be stored (and
    whether its messageId is already taken), and which warehouse views and columns would appear or change."""
    team = Team.objects.get(pk=token.team_id)
    message_ids = [p.message_id for p in payloads if p.message_id]
    taken = set(
        Event.objects.filter(team_id=token.team_id, message_id__in=message_ids).values_list("message_id", flat=True)
    )
    would_store: list[_WouldStore] = [
        {
            "type": p.type,
            "event": p.event,
            "timestamp": p.timestamp.isoformat(),
            "messageId": p.message_id,
            "duplicate": p.message_id in taken,
        }
        for p in payloads
    ]
    return {"dry_run": True, "events": would_store, "warehouse": warehouse_changes(team=team, payloads=payloads)}
