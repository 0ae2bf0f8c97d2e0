"""The Events API (`/v1/...`): thin DRF views over events.ingest.validation and .storage."""

import time
from datetime import datetime
from operator import itemgetter

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Team
from events.ingest import errors, openapi
from events.ingest.body import StrictJSONParser
from events.ingest.errors import ApiError
from events.ingest.group_commit import CommitterUnavailable, can_group_commit, committer
from events.ingest.rejections import rejection_record, rejections_record
from events.ingest.renderers import JSONOnlyNegotiation, OrjsonRenderer
from events.ingest.storage import StoredEvent, event_row, json_text, store_batch, store_row
from events.ingest.throttling import TokenRateThrottle, rate_limit_headers
from events.ingest.validation import (
    EMPTY_BODY,
    MAX_BATCH_EVENTS,
    BatchEnvelope,
    FieldError,
    validate_batch,
    validate_batch_item,
    validate_event,
    validate_segment_message,
)
from events.metrics import record_answer
from events.models import Event
from events.tokens.authentication import EventsTokenAuthentication
from events.warehouse.dry_run import warehouse_changes

DATABASE_RETRY_AFTER_SECONDS = 5

ERROR_RESPONSES = {
    400: OpenApiResponse(openapi.ErrorResponse, description="Invalid JSON or event; `fields` has paths."),
    401: OpenApiResponse(openapi.ErrorResponse, description="Missing, malformed, unknown or revoked token."),
    403: OpenApiResponse(openapi.ErrorResponse, description="The team's Events API is not enabled."),
    413: OpenApiResponse(openapi.ErrorResponse, description="Body over the limit (after gzip expansion)."),
    415: OpenApiResponse(openapi.ErrorResponse, description="Body not sent as application/json."),
    429: OpenApiResponse(openapi.ErrorResponse, description="Rate limit reached; see Retry-After."),
    503: OpenApiResponse(openapi.ErrorResponse, description="Storage unavailable; retry after Retry-After."),
}


class IngestAPIView(APIView):
    """What every ingest endpoint shares: token auth, per-token rate limit, strict JSON, one error shape."""

    authentication_classes = [EventsTokenAuthentication]
    permission_classes: list = []
    throttle_classes = [TokenRateThrottle]
    parser_classes = [StrictJSONParser]
    renderer_classes = [OrjsonRenderer]
    content_negotiation_class = JSONOnlyNegotiation
    max_body_bytes = 32 * 1024
    endpoint = "/v1/event"

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = super().dispatch(request, *args, **kwargs)
        data = getattr(response, "data", None)
        record_answer(
            endpoint=self.endpoint, status=response.status_code, data=data, seconds=time.perf_counter() - started
        )
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            _require_json(request)

    def throttled(self, request, wait):
        raise ApiError(
            status.HTTP_429_TOO_MANY_REQUESTS, errors.RATE_LIMITED, headers=rate_limit_headers(request.rate_limit)
        )

    def handle_exception(self, exc):
        if isinstance(exc, OperationalError | InterfaceError | CommitterUnavailable):
            # The database is unreachable: tell the client to retry, never a 500. Nothing was stored.
            exc = ApiError(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                errors.DATABASE_UNAVAILABLE,
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        if isinstance(exc, ApiError) and exc.status_code in (400, 408, 413):
            self._record_refusal(exc)
        return super().handle_exception(exc)

    def _record_refusal(self, exc: ApiError) -> None:
        token = getattr(self.request, "_auth", None)
        if token is None:
            return
        raw = getattr(self.request, "raw_body", b"")
        problems = exc.fields or [{"path": "", "message": exc.message}]
        rejections_record([self._refusal(token, exc.status_code, raw, problems)])

    def _refusal(self, token, status_code: int, payload: bytes | str, problems: list):
        return rejection_record(
            team_id=token.team_id,
            token_hint=token.hint,
            endpoint=self.endpoint,
            status=status_code,
            payload=payload,
            problems=problems,
        )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        usage = getattr(request, "rate_limit", None)
        if usage is not None:
            for name, value in rate_limit_headers(usage).items():
                response.setdefault(name, value)
        return response

    def store(self, payload, received_at) -> StoredEvent:
        """Store one event; answered only once the transaction holding it has committed."""
        token = self.request.auth
        row = event_row(team_id=token.team_id, token_id=token.id, payload=payload, received_at=received_at)
        return committer().submit(row) if can_group_commit() else store_row(row)


def is_dry_run(request) -> bool:
    return request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")


def dry_run_report(*, token, payloads: list) -> dict:
    """What storing these events would do, without storing anything: each event as it would be stored (and
    whether its messageId is already taken), and which warehouse views and columns would appear or change."""
    team = Team.objects.get(pk=token.team_id)
    message_ids = [p.message_id for p in payloads if p.message_id]
    taken = set(
        Event.objects.filter(team_id=token.team_id, message_id__in=message_ids).values_list("message_id", flat=True)
    )
    would_store = [
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


def _require_json(request) -> None:
    """415 for a body that is not declared JSON; 411 for a chunked body without a length; 400 for no body.

    DRF hands an empty body to no parser at all (request.data is then {}), so emptiness is caught here.
    """
    content_type = request.content_type.split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, errors.UNSUPPORTED_MEDIA_TYPE)
    length = request.META.get("CONTENT_LENGTH")
    if "HTTP_TRANSFER_ENCODING" in request.META and not length:
        raise ApiError(status.HTTP_411_LENGTH_REQUIRED, errors.LENGTH_REQUIRED)
    if not length or length == "0":
        raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_JSON, fields=[FieldError("", EMPTY_BODY)])


def _invalid(problems: list[FieldError]) -> ApiError:
    return ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_PAYLOAD, fields=problems)


class EventIngestView(IngestAPIView):
    """POST /v1/event: one event in Canvas's format."""

    @extend_schema(
        operation_id="send_event",
        summary="Send one event",
        request=openapi.EventRequest,
        responses={200: openapi.EventStored, **ERROR_RESPONSES},
    )
    def post(self, request):
        received_at = timezone.now()
        payload, problems = validate_event(request.data, received_at=received_at)
        if problems:
            raise _invalid(problems)
        if is_dry_run(request):
            return Response(dry_run_report(token=request.auth, payloads=[payload]))
        stored = self.store(payload, received_at)
        return Response({"id": stored.id, "duplicate": stored.duplicate})


class SegmentMessageView(IngestAPIView):
    """POST /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias: Segment's HTTP Tracking API."""

    segment_type = "track"

    @property
    def endpoint(self) -> str:
        return f"/v1/{self.segment_type}"

    @extend_schema(
        summary="Send one Segment message",
        request=openapi.SegmentMessage,
        responses={200: openapi.SegmentStored, **ERROR_RESPONSES},
    )
    def post(self, request):
        received_at = timezone.now()
        payload, problems = validate_segment_message(
            request.data, received_at=received_at, default_type=self.segment_type
        )
        if problems:
            raise _invalid(problems)
        if is_dry_run(request):
            return Response(dry_run_report(token=request.auth, payloads=[payload]))
        stored = self.store(payload, received_at)
        return Response({"success": True, "id": stored.id, "duplicate": stored.duplicate})


class BatchIngestView(IngestAPIView):
    """POST /v1/batch: up to 2,500 events in one request, stored in one transaction."""

    max_body_bytes = 500 * 1024
    endpoint = "/v1/batch"

    @extend_schema(
        operation_id="send_batch",
        summary="Send up to 2,500 events",
        request=openapi.BatchRequest,
        responses={200: openapi.BatchReceipt, **ERROR_RESPONSES},
    )
    def post(self, request):
        received_at = timezone.now()
        batch = batch_envelope(request.data, received_at=received_at)
        items = batch.items
        results: list[dict | None] = [None] * len(items)
        accepted: list[tuple[int, tuple]] = []
        valid_payloads = []
        refusals, all_problems = [], []
        token = request.auth
        for index, item in enumerate(items):
            payload, problems = validate_batch_item(item, index=index, received_at=received_at, batch=batch)
            if problems:
                results[index] = {"index": index, "status": "rejected", "errors": _fields(problems)}
                all_problems.extend(problems)
                refusals.append(self._refusal(token, 400, json_text(item), problems))
                continue
            valid_payloads.append(payload)
            row = event_row(team_id=token.team_id, token_id=token.id, payload=payload, received_at=received_at)
            accepted.append((index, row))
        if is_dry_run(request):
            report = dry_run_report(token=token, payloads=valid_payloads)
            report["rejected"] = [result for result in results if result is not None]
            return Response(report, status=400 if refusals else 200)
        for (index, _), stored in zip(accepted, store_batch([row for _, row in accepted]), strict=True):
            results[index] = stored_result(index, stored)
        rejections_record(refusals)
        body = batch_receipt(results)
        if not refusals:
            return Response(body)
        code, _ = errors.INVALID_EVENTS
        message = f"{len(refusals)} of {len(items)} events were refused; the others were stored."
        return Response({**errors.error_body(code, message, _fields(all_problems)), **body}, status=400)


def batch_envelope(document, *, received_at: datetime) -> BatchEnvelope:
    """validate_batch, its problems answered 400 and more than MAX_BATCH_EVENTS items 413."""
    batch, problems = validate_batch(document, received_at=received_at)
    if problems:
        raise _invalid(problems)
    if len(batch.items) > MAX_BATCH_EVENTS:
        raise ApiError(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            errors.BODY_TOO_LARGE,
            message=f"A batch holds at most {MAX_BATCH_EVENTS:,} events; this one has {len(batch.items):,}.",
        )
    return batch


def _fields(problems: list[FieldError]) -> list[dict]:
    return [{"path": problem.path, "message": problem.message} for problem in problems]


def stored_result(index: int, stored: StoredEvent) -> dict:
    """A batch receipt's line for an event that was stored, or was there already."""
    return {"index": index, "status": "duplicate" if stored.duplicate else "stored", "id": stored.id}


def stored_receipt(stored: list[StoredEvent]) -> dict:
    """batch_receipt for a batch whose every event was stored or was a duplicate, built in one pass: the fast
    lane answers most batches with it."""
    results = [
        {"index": index, "status": "duplicate" if duplicate else "stored", "id": event_id}
        for index, (event_id, duplicate) in enumerate(stored)
    ]
    duplicates = sum(map(itemgetter(1), stored))
    return {"stored": len(stored) - duplicates, "duplicates": duplicates, "rejected": 0, "results": results}


def batch_receipt(results: list[dict]) -> dict:
    statuses = [result["status"] for result in results]
    return {
        "stored": statuses.count("stored"),
        "duplicates": statuses.count("duplicate"),
        "rejected": statuses.count("rejected"),
        "results": results,
    }


def not_found(request, *args, **kwargs):
    """Unknown /v1/ paths answer in the API's error shape, not with an HTML page."""
    code, message = errors.NOT_FOUND
    return JsonResponse(errors.error_body(code, message), status=404)
