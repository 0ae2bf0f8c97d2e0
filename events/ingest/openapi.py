"""Serializers that describe the Events API in the OpenAPI schema, each endpoint's request examples, and the
dry_run parameter. Validation itself is events.ingest.validation, which checks what serializers cannot (duplicate
keys, NUL, lone surrogates, depth) and reports JSON paths."""

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import Direction, OpenApiExample, OpenApiParameter
from rest_framework import serializers

from events.demo import EXAMPLE_EVENT
from events.ingest import validation

# Swagger UI's "Try it out" fills each parameter with its example: the docs page then validates and reports, and
# stores nothing unless the reader turns dry_run off. `example`, not `default`: without it the API does store.
DRY_RUN = OpenApiParameter(
    "dry_run",
    OpenApiTypes.BOOL,
    OpenApiParameter.QUERY,
    description="true: validate and report what would be stored (and which warehouse views and columns would "
    "change), store nothing. The docs page's Try it out sends true; choose false to store.",
    examples=[OpenApiExample("Dry run", value=True)],
)

SEGMENT_TRACK = {
    "userId": "user-1",
    "event": "Order Completed",
    "properties": {"revenue": 39.95, "currency": "USD", "coupon": "SPRING"},
    "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
}
SEGMENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "track": SEGMENT_TRACK,
    "identify": {"userId": "user-1", "traits": {"email": "ann@example.com", "plan": "pro"}},
    "page": {"userId": "user-1", "name": "Pricing", "properties": {"url": "https://example.com/pricing"}},
    "screen": {"userId": "user-1", "name": "Checkout", "properties": {"step": 2}},
    "group": {"userId": "user-1", "groupId": "acme", "traits": {"name": "Acme", "plan": "enterprise"}},
    "alias": {"userId": "user-1", "previousId": "anonymous-7f3a"},
}
REQUEST_EXAMPLES: dict[str, list[OpenApiExample]] = {
    "/v1/event": [
        OpenApiExample("Purchased an Item", value=EXAMPLE_EVENT, request_only=True,
                       description="The demo data's first event; without a timestamp, Canvas uses when it arrives."),
    ],
    **{
        f"/v1/{kind}": [OpenApiExample(f"Segment {kind}", value=message, request_only=True)]
        for kind, message in SEGMENT_EXAMPLES.items()
    },
    "/v1/batch": [
        OpenApiExample(
            "A Canvas event and a Segment track call",
            value={"batch": [EXAMPLE_EVENT, {"type": "track", **SEGMENT_TRACK}]},
            request_only=True,
            description="Items may mix Canvas events and Segment messages (which name their type in a batch).",
        ),
    ],
}  # fmt: skip


class IngestSchema(AutoSchema):
    """The schema of an ingest view (events.ingest.views): its endpoint's request examples and dry_run."""

    def get_examples(self) -> list[OpenApiExample]:
        return REQUEST_EXAMPLES[self.view.endpoint.name]  # type: ignore[attr-defined]  # IngestAPIView's

    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), DRY_RUN]


class EventRequest(serializers.Serializer[Any]):
    version = serializers.ChoiceField(choices=[1], help_text="Always 1.")
    type = serializers.ChoiceField(choices=["event"], help_text='Always "event".')
    event = serializers.CharField(
        min_length=1,
        max_length=validation.MAX_EVENT_NAME,
        validators=[RegexValidator(r"\S")],  # documented as the schema's pattern: not only whitespace
        help_text="The event's name, not blank.",
    )
    properties = serializers.DictField(
        required=False,
        help_text=f"Any JSON object: at most {validation.MAX_PROPERTIES_DEPTH} levels deep, "
        f"{validation.MAX_PROPERTIES_KEYS} keys in all, keys of 1 to {validation.MAX_KEY_LENGTH} characters.",
    )
    timestamp = serializers.DateTimeField(
        required=False,
        help_text="ISO-8601 with Z or an offset, from 1970 to 24 hours after Canvas receives it; "
        "default: when Canvas received it.",
    )
    messageId = serializers.CharField(
        required=False,
        min_length=1,
        max_length=validation.MAX_MESSAGE_ID,
        help_text="Resending the same id stores nothing.",
    )
    sentAt = serializers.DateTimeField(required=False, help_text="When the client sent it; corrects clock skew.")


class EventRequestIsClosed(OpenApiSerializerExtension):
    """Any other top-level field is refused (400 naming it): say so with additionalProperties: false."""

    target_class = EventRequest

    def map_serializer(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


class EventStored(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="The stored event's id.")
    duplicate = serializers.BooleanField(
        help_text="True when this messageId was already stored within the dedupe window (30 days); nothing new is."
    )


class FieldProblem(serializers.Serializer[Any]):
    path = serializers.CharField(help_text='JSON Pointer to the problem, e.g. "/properties/revenue".')
    message = serializers.CharField()


class ErrorDetail(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = FieldProblem(many=True)  # type: ignore[assignment]  # DRF's metaclass takes fields off the class


class ErrorResponse(serializers.Serializer[Any]):
    error = ErrorDetail()


class SegmentMessage(serializers.Serializer[Any]):
    type = serializers.ChoiceField(
        choices=list(validation.SEGMENT_TYPES),
        required=False,
        help_text="Implied by the endpoint; in a batch, required.",
    )
    userId = serializers.CharField(required=False, help_text="userId or anonymousId is required.")
    anonymousId = serializers.CharField(required=False)
    event = serializers.CharField(required=False, help_text="track: the event's name (required).")
    name = serializers.CharField(required=False, help_text="page/screen: the page or screen name.")
    properties = serializers.DictField(required=False)
    traits = serializers.DictField(required=False, help_text="identify/group.")
    groupId = serializers.CharField(required=False, help_text="group: required.")
    previousId = serializers.CharField(required=False, help_text="alias: required.")
    context = serializers.DictField(required=False)  # type: ignore[assignment]  # as ErrorDetail.fields
    integrations = serializers.DictField(required=False)
    timestamp = serializers.DateTimeField(required=False)
    sentAt = serializers.DateTimeField(required=False)
    messageId = serializers.CharField(required=False, max_length=validation.MAX_MESSAGE_ID)
    writeKey = serializers.CharField(required=False, help_text="Accepted and ignored: authenticate with the header.")


class SegmentStored(EventStored):
    success = serializers.BooleanField()


class BatchRequest(serializers.Serializer[Any]):
    batch = serializers.ListField(
        child=serializers.DictField(), max_length=2500, help_text="Segment messages or Canvas events."
    )
    context = serializers.DictField(  # type: ignore[assignment]  # as ErrorDetail.fields
        required=False, help_text="Applies to items without their own context."
    )
    sentAt = serializers.DateTimeField(required=False, help_text="Applies to items without their own sentAt.")


class BatchItemReceipt(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["stored", "duplicate", "rejected"])
    id = serializers.IntegerField(required=False)
    errors = FieldProblem(many=True, required=False)  # type: ignore[assignment]  # as ErrorDetail.fields


class BatchReceipt(serializers.Serializer[Any]):
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = BatchItemReceipt(many=True)


class EventsTokenScheme(OpenApiAuthenticationExtension):
    target_class = "events.tokens.authentication.EventsTokenAuthentication"
    name = "EventsToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
