"""Middleware that steps aside on the Events API.

`/v1/*` is called by machines with a token, at thousands of requests a second: sessions, CSRF, users and
flash messages are browser concerns and only cost time there. Each class below is Django's own, skipped for
those paths and unchanged everywhere else.
"""

from csp.middleware import CSPMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.csrf import CsrfViewMiddleware

EVENTS_API_PREFIX = "/v1/"
DOCS_PREFIX = "/v1/docs"  # a page for people: it keeps the browser middleware (its CSP above all)


def is_events_api(path: str) -> bool:
    return path.startswith(EVENTS_API_PREFIX) and not path.startswith(DOCS_PREFIX)


def _skips_events_api(middleware_class):
    class Skipping(middleware_class):
        def __call__(self, request):
            if is_events_api(request.path_info):
                return self.get_response(request)
            return super().__call__(request)

        def process_view(self, request, callback, callback_args, callback_kwargs):
            if is_events_api(request.path_info) or not hasattr(super(), "process_view"):
                return None
            return super().process_view(request, callback, callback_args, callback_kwargs)

    Skipping.__name__ = Skipping.__qualname__ = f"BrowserOnly{middleware_class.__name__}"
    return Skipping


BrowserOnlySessionMiddleware = _skips_events_api(SessionMiddleware)
BrowserOnlyCsrfViewMiddleware = _skips_events_api(CsrfViewMiddleware)
BrowserOnlyAuthenticationMiddleware = _skips_events_api(AuthenticationMiddleware)
BrowserOnlyMessageMiddleware = _skips_events_api(MessageMiddleware)
BrowserOnlyCSPMiddleware = _skips_events_api(CSPMiddleware)
