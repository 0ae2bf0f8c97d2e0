"""django-axes keeps what a failed login sent (the username, the form, the query string, the User-Agent), where
staff read it. A token pasted into the login form or its address by mistake must not be kept there."""

from axes.handlers.database import AxesDatabaseHandler
from django.http import QueryDict

from events.tokens.secret import scrub


def _scrubbed(query: QueryDict) -> QueryDict:
    clean = QueryDict(mutable=True)
    for key, values in query.lists():
        clean.setlist(scrub(key), [scrub(value) for value in values])
    return clean


class TokenScrubbingAxesHandler(AxesDatabaseHandler):
    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        credentials = {key: scrub(value) if isinstance(value, str) else value for key, value in credentials.items()}
        kept = request.GET, request.POST, request.axes_user_agent, request.axes_path_info
        request.GET, request.POST = _scrubbed(request.GET), _scrubbed(request.POST)
        request.axes_user_agent, request.axes_path_info = scrub(kept[2]), scrub(kept[3])
        try:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        finally:
            request.GET, request.POST, request.axes_user_agent, request.axes_path_info = kept
