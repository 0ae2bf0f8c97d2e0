"""Serializers that describe the Events API in the OpenAPI schema. Validation itself is events.ingest.validation,
which checks what serializers cannot (duplicate keys, NUL, lone surrogates, depth) and reports JSON paths."""

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction
from rest_framework import serializers

from events.ingest import validation


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
    duplicate = serializers.BooleanField(help_text="True when this messageId was already stored; nothing new is.")


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
