"""The Events API (`/v1/...`): thin DRF views over validation and storage."""

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import errors, schemas
from .authentication import EventsTokenAuthentication
from .errors import ApiError
from .ingest import store_event
from .parsers import StrictJSONParser
from .renderers import JSONOnlyNegotiation, OrjsonRenderer
from .throttling import TokenRateThrottle, rate_limit_headers
from .validation import validate_event

DATABASE_RETRY_AFTER_SECONDS = 5


class IngestAPIView(APIView):
    """What every ingest endpoint shares: token auth, per-token rate limit, strict JSON, one error shape."""

    authentication_classes = [EventsTokenAuthentication]
    permission_classes: list = []
    throttle_classes = [TokenRateThrottle]
    parser_classes = [StrictJSONParser]
    renderer_classes = [OrjsonRenderer]
    content_negotiation_class = JSONOnlyNegotiation
    max_body_bytes = 32 * 1024

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            _require_json(request)

    def throttled(self, request, wait):
        raise ApiError(
            status.HTTP_429_TOO_MANY_REQUESTS, errors.RATE_LIMITED, headers=rate_limit_headers(request.rate_limit)
        )

    def handle_exception(self, exc):
        if isinstance(exc, OperationalError | InterfaceError):
            # The database is unreachable: tell the client to retry, never a 500. Nothing was stored.
            exc = ApiError(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                errors.DATABASE_UNAVAILABLE,
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        usage = getattr(request, "rate_limit", None)
        if usage is not None:
            for name, value in rate_limit_headers(usage).items():
                response.setdefault(name, value)
        return response


def _require_json(request) -> None:
    """415 for a body that is not declared JSON; 411 for a chunked body without a length."""
    content_type = request.content_type.split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, errors.UNSUPPORTED_MEDIA_TYPE)
    if "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH"):
        raise ApiError(status.HTTP_411_LENGTH_REQUIRED, errors.LENGTH_REQUIRED)


class EventIngestView(IngestAPIView):
    @extend_schema(
        operation_id="send_event",
        summary="Send one event",
        request=schemas.EventRequest,
        responses={
            200: schemas.EventStored,
            400: OpenApiResponse(schemas.ErrorResponse, description="Invalid JSON or event; `fields` has paths."),
            401: OpenApiResponse(schemas.ErrorResponse, description="Missing, malformed, unknown or revoked token."),
            403: OpenApiResponse(schemas.ErrorResponse, description="The team's Events API is not enabled."),
            413: OpenApiResponse(schemas.ErrorResponse, description="Body over 32 KB (after gzip expansion)."),
            415: OpenApiResponse(schemas.ErrorResponse, description="Body not sent as application/json."),
            429: OpenApiResponse(schemas.ErrorResponse, description="Rate limit reached; see Retry-After."),
            503: OpenApiResponse(schemas.ErrorResponse, description="Storage unavailable; retry after Retry-After."),
        },
    )
    def post(self, request):
        received_at = timezone.now()
        payload, problems = validate_event(request.data, received_at=received_at)
        if problems:
            raise ApiError(status.HTTP_400_BAD_REQUEST, errors.INVALID_PAYLOAD, fields=problems)
        stored = store_event(
            team_id=request.auth.team_id, token_id=request.auth.id, payload=payload, received_at=received_at
        )
        return Response({"id": stored.id, "duplicate": stored.duplicate})


def not_found(request, *args, **kwargs):
    """Unknown /v1/ paths answer in the API's error shape, not with an HTML page."""
    code, message = errors.NOT_FOUND
    return JsonResponse(errors.error_body(code, message), status=404)
