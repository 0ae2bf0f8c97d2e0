"""How every Events API answer is written: JSON, with any token it quotes hidden."""

import orjson
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer

from events.tokens import secret


def render_json(data) -> bytes:
    # Receipts and error messages may quote what was sent, and clients log them.
    return secret.scrub(orjson.dumps(data).decode()).encode()


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259).

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return b"" if data is None else render_json(data)


class JSONOnlyNegotiation(BaseContentNegotiation):
    """The API always answers JSON, whatever the client's Accept header says (no 406 for `Accept: text/html`)."""

    def select_parser(self, request, parsers):
        for parser in parsers:
            if self._matches(request.content_type, parser.media_type):
                return parser
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    @staticmethod
    def _matches(content_type: str, media_type: str) -> bool:
        return content_type.split(";", 1)[0].strip().lower() == media_type
