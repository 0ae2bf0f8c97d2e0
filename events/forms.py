import secrets

from django import forms
from django.http import HttpRequest

_SESSION_FORM_IDS = "token_form_ids"
_FORM_IDS_KEPT = 10
NAME_REQUIRED_MESSAGE = "Give the token a name."


def issue_form_id(request: HttpRequest) -> str:
    """A one-time id for a token-creation form, remembered in the session until it is used."""
    form_id = secrets.token_urlsafe(16)
    request.session[_SESSION_FORM_IDS] = [*request.session.get(_SESSION_FORM_IDS, [])[-_FORM_IDS_KEPT + 1 :], form_id]
    return form_id


def use_form_id(request: HttpRequest, form_id: str) -> bool:
    """True once per issued id: a reloaded or resubmitted POST finds its id used and creates nothing."""
    issued = request.session.get(_SESSION_FORM_IDS, [])
    if form_id not in issued:
        return False
    issued.remove(form_id)
    request.session[_SESSION_FORM_IDS] = issued
    return True


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

    def __init__(self, *args, **kwargs):
        # The Settings page also has the team's rename form with a `name` field: ids must not collide, or the
        # "Token name" label would point at the team's name.
        kwargs.setdefault("auto_id", "id_token_%s")
        super().__init__(*args, **kwargs)
