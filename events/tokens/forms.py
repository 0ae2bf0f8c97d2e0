"""The token-creation form of Settings → Events API, and the one-time ids that make each form create one token.

The rule a newcomer must know: a token is created only by a POST whose form id the session was issued and has
not used yet (`use_form_id`), so a reload, a resubmission or a double click creates nothing a second time.
"""

import secrets

from django import forms
from django.core.cache import cache
from django.http import HttpRequest

_SESSION_FORM_IDS = "token_form_ids"
_FORM_IDS_KEPT = 10
_FORM_ID_CLAIM_SECONDS = 24 * 3600
WRONG_PASSWORD_MESSAGE = "That is not your password."  # noqa: S105 (a message, not a password)
NAME_REQUIRED_MESSAGE = "Give the token a name."


def issue_form_id(request: HttpRequest) -> str:
    """A one-time id for a token-creation form, remembered in the session until it is used."""
    form_id = secrets.token_urlsafe(16)
    request.session[_SESSION_FORM_IDS] = [*request.session.get(_SESSION_FORM_IDS, [])[-_FORM_IDS_KEPT + 1 :], form_id]
    return form_id


def use_form_id(request: HttpRequest, form_id: str) -> bool:
    """True once per issued id: a reloaded or resubmitted POST finds its id used and creates nothing.

    The session says whether the id was issued; the cache's atomic add claims it, so two POSTs of one form
    at the same moment (a double click) cannot both pass before either has saved the session.
    """
    issued = request.session.get(_SESSION_FORM_IDS, [])
    if form_id not in issued:
        return False
    issued.remove(form_id)
    request.session[_SESSION_FORM_IDS] = issued
    return cache.add(f"events:token-form-used:{form_id}", True, _FORM_ID_CLAIM_SECONDS)


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Token name",
        help_text="Say where it will be used, e.g. 'Production event stream'.",
        widget=forms.TextInput(attrs={"placeholder": "Production event stream"}),
        # CharField strips whitespace first, so a name of only spaces gets this message too.
        error_messages={"required": NAME_REQUIRED_MESSAGE},
    )
    form_id = forms.CharField(widget=forms.HiddenInput, max_length=64)
    password = forms.CharField(
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="You logged in more than 15 minutes ago: confirm it is you before creating a key.",
    )

    def __init__(self, *args, needs_password: bool = False, **kwargs):
        # Other Settings forms have a `name` field too (the team's): prefixed ids cannot collide with theirs, or
        # the "Token name" label would point at the team's name were they ever on one page.
        kwargs.setdefault("auto_id", "id_token_%s")
        super().__init__(*args, **kwargs)
        if not needs_password:
            del self.fields["password"]


class AccessRequestForm(forms.Form):
    note = forms.CharField(
        label="What will you send? (optional)",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
