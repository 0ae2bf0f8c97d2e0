"""Recent authentication: sensitive actions (creating an API token) ask for the password again when the login
is older than settings.REAUTHENTICATE_AFTER, so a session left open on a shared screen cannot mint tokens."""

import time

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest

SESSION_KEY = "authenticated_at"


def mark_authenticated(request: HttpRequest) -> None:
    request.session[SESSION_KEY] = time.time()


def needs_reauthentication(request: HttpRequest) -> bool:
    authenticated_at = request.session.get(SESSION_KEY, 0)
    return time.time() - authenticated_at > settings.REAUTHENTICATE_AFTER.total_seconds()


def reauthenticate(request: HttpRequest, password: str) -> bool:
    """Check the password through the authentication backends, so django-axes counts failures here too."""
    user = authenticate(request, username=request.user.get_username(), password=password)
    if user is None or user.pk != request.user.pk:
        return False
    mark_authenticated(request)
    return True


def on_user_logged_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        mark_authenticated(request)
