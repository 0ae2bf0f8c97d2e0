"""How every Events API answer is written: JSON, with any token it quotes hidden."""

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from events.tokens import secret


def render_json(data: Any) -> bytes:
    # Receipts and error messages may quote what was sent, and clients log them.
    return secret.scrub(orjson.dumps(data).decode()).encode()


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259).

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        return b"" if data is None else render_json(data)


class JSONOnlyNegotiation(BaseContentNegotiation):
    """The API always answers JSON, whatever the client's Accept header says (no 406 for `Accept: text/html`)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        for parser in parsers:
            if self._matches(request.content_type, parser.media_type):
                return parser
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type

    @staticmethod
    def _matches(content_type: str, media_type: str) -> bool:
        return content_type.split(";", 1)[0].strip().lower() == media_type
