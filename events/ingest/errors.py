"""One error shape for every Events API answer:

    {"error": {"code": "...", "message": "...", "fields": [{"path": "/timestamp", "message": "..."}]}}

Codes and messages are constants so tests and clients can rely on them.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from events.ingest.validation import FieldError

# Authentication and access
MISSING_TOKEN = ("missing_token", "Send your Events API token in the X-Auth-Token header.")
MALFORMED_TOKEN = ("malformed_token", "That is not a Canvas Events API token: check that it was copied whole.")
UNKNOWN_TOKEN = ("invalid_token", "That token is unknown or has been revoked.")
API_DISABLED = ("events_api_disabled", "The Events API is not enabled for this team. Ask the Canvas team to enable it.")
# Request shape
INVALID_JSON = ("invalid_json", "The body is not valid JSON.")
INVALID_PAYLOAD = ("invalid_payload", "The event is not valid.")
INVALID_EVENTS = ("invalid_events", "Some events of the batch were refused; the others were stored.")
BODY_TOO_LARGE = ("body_too_large", "The body is larger than the limit.")
UNSUPPORTED_MEDIA_TYPE = ("unsupported_media_type", "Send the body as JSON with Content-Type: application/json.")
UNSUPPORTED_ENCODING = ("unsupported_encoding", "Content-Encoding must be gzip or identity.")
LENGTH_REQUIRED = ("length_required", "Send a Content-Length header with the body.")
METHOD_NOT_ALLOWED = ("method_not_allowed", "Use POST.")
RATE_LIMITED = ("rate_limited", "Too many requests for this token. Retry after the time in Retry-After.")
DATABASE_UNAVAILABLE = ("service_unavailable", "Canvas cannot store events right now. Retry after Retry-After.")
NOT_FOUND = ("not_found", "There is no such endpoint.")
INTERNAL_ERROR = ("internal_error", "Canvas could not answer this request. Retry it later.")


class ApiError(exceptions.APIException):
    """An error answer in the one shape, with optional field errors and headers."""

    def __init__(
        self,
        status_code: int,
        code_and_message: tuple[str, str],
        *,
        fields: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        message: str | None = None,
    ):
        self.status_code = status_code
        self.code, default_message = code_and_message
        self.message = message or default_message
        self.fields = [{"path": f.path, "message": f.message} for f in fields]
        self.headers = headers or {}
        super().__init__(detail=self.message, code=self.code)


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or []}}


_DRF_CODES = {
    exceptions.NotAuthenticated: MISSING_TOKEN,
    exceptions.AuthenticationFailed: UNKNOWN_TOKEN,
    exceptions.MethodNotAllowed: METHOD_NOT_ALLOWED,
    exceptions.UnsupportedMediaType: UNSUPPORTED_MEDIA_TYPE,
    exceptions.ParseError: INVALID_JSON,
    exceptions.NotFound: NOT_FOUND,
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render every exception a DRF view raises in the one error shape."""
    if isinstance(exc, ApiError):
        answer = Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
        for name, value in exc.headers.items():
            answer[name] = value
        return answer
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code, message = _DRF_CODES.get(type(exc), (getattr(exc, "default_code", "error"), None))
    detail = exc.detail if isinstance(exc.detail, str) else None
    response.data = error_body(code, message or detail or str(exc.default_detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = 'X-Auth-Token realm="Canvas Events"'
    return response
