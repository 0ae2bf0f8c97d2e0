"""Middleware that steps aside on the Events API, and the one that gives a 405 on the site's pages its page.

`/v1/*` is called by machines with a token, at thousands of requests a second: sessions, CSRF, users and
flash messages are browser concerns and only cost time there. Each class below is Django's own, skipped for
those paths and unchanged everywhere else.
"""

from csp.middleware import CSPMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponseNotAllowed
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render

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


class MethodNotAllowedPageMiddleware:
    """A 405 on the site's pages (require_POST, require_GET) gets templates/405.html, in the site's look.

    Those decorators answer an empty HttpResponseNotAllowed: this is the one place that gives it a page. The
    Events API answers its own 405s in its JSON error shape and is left alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not isinstance(response, HttpResponseNotAllowed) or is_events_api(request.path_info):
            return response
        allowed_methods = [method.strip() for method in response["Allow"].split(",")]
        page = render(request, "405.html", {"allowed_methods": allowed_methods}, status=405)
        page["Allow"] = response["Allow"]
        return page
