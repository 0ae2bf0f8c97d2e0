"""The Events API (`/v1/...`) as DRF views: the documented contract (OpenAPI, through drf-spectacular), and the
adapter that serves every ingest request when the WSGI front end (events.ingest.wsgi) is off or passes it on.

A view only translates HTTP: events.ingest.pipeline decides the answer, and DRF renders it.
"""

from typing import Any

from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.ingest import errors, openapi
from events.ingest.pipeline import ROUTES, Endpoint, answer_request
from events.ingest.renderers import JSONOnlyNegotiation, OrjsonRenderer
from events.tokens.authentication import EventsTokenAuthentication

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
    """What every ingest endpoint shares: the pipeline answers a POST, and DRF renders the answer. Any other
    method is DRF's to answer: 401 without a valid token, else 405."""

    # These describe the API in the schema (the X-Auth-Token scheme, a JSON body); for a POST the pipeline
    # authenticates and reads the body itself.
    authentication_classes = [EventsTokenAuthentication]
    parser_classes = [JSONParser]
    permission_classes: list[type[BasePermission]] = []
    renderer_classes = [OrjsonRenderer]
    content_negotiation_class = JSONOnlyNegotiation
    schema = openapi.IngestSchema()
    endpoint: Endpoint = ROUTES["/v1/event"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method != "POST":  # a POST's authentication is the pipeline's first step
            super().initial(request, *args, **kwargs)

    def post(self, request: Request) -> Response:
        answer = answer_request(self.endpoint, request.META, request._request)
        return Response(answer.body, status=answer.status, headers=answer.headers)


@extend_schema_view(
    post=extend_schema(
        operation_id="send_event",
        summary="Send one event",
        request=openapi.EventRequest,
        responses={200: openapi.EventStored, **ERROR_RESPONSES},
    )
)
class EventIngestView(IngestAPIView):
    """POST /v1/event: one event in Canvas's format."""


@extend_schema_view(
    post=extend_schema(
        summary="Send one Segment message",
        request=openapi.SegmentMessage,
        responses={200: openapi.SegmentStored, **ERROR_RESPONSES},
    )
)
class SegmentMessageView(IngestAPIView):
    """POST /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias: Segment's HTTP Tracking API."""

    endpoint = ROUTES["/v1/track"]


@extend_schema_view(
    post=extend_schema(
        operation_id="send_batch",
        summary="Send up to 2,500 events",
        request=openapi.BatchRequest,
        responses={200: openapi.BatchReceipt, **ERROR_RESPONSES},
    )
)
class BatchIngestView(IngestAPIView):
    """POST /v1/batch: up to 2,500 events in one request, stored in one transaction."""

    endpoint = ROUTES["/v1/batch"]


VIEWS = {"event": EventIngestView, "segment": SegmentMessageView, "batch": BatchIngestView}


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown /v1/ paths answer in the API's error shape, not with an HTML page."""
    code, message = errors.NOT_FOUND
    return JsonResponse(errors.error_body(code, message), status=404)
