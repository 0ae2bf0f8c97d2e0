"""The Events page (`/events/`) and its JSON endpoints, for every member of the current team; and the Settings
page's action for Owners to create or rotate the team's warehouse login.

The page is rendered whole on the server (latest events, catalog, filters, export link) and works without
JavaScript; static/js/events.js adds the live tail, the raw JSON panel and the volume chart by fetching the
JSON endpoints below. Every endpoint answers for the current team only (accounts.access.get_membership): an
event id of another team is a 404, exactly like an id that does not exist.
"""

import logging
from typing import TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.access import AuthenticatedHttpRequest, client_ip, get_membership, get_owner_membership
from accounts.views import WAREHOUSE, render_warehouse
from events.explorer import selectors
from events.explorer.selectors import VOLUME_RANGES, EventFilters
from events.ingest.errors import error_body
from events.warehouse.credentials import WarehouseLoginUnsafe, warehouse_credentials_rotate
from events.warehouse.sync import WarehouseUnavailable

logger = logging.getLogger(__name__)

INVALID_FILTERS = ("invalid_filters", "Some filters are not valid.")
EVENT_NOT_FOUND = ("not_found", "There is no such event.")
RANGE_REVERSED = "Must be later than From."
VALUE_WITHOUT_PROPERTY = "Name the property whose value to look for."
PROPERTY_PATH_INVALID = "Keys separated by dots, none empty: referrer.source"
EXPORT_UNAVAILABLE = ("export_unavailable", "CSV export needs PostgreSQL; this server uses another database.")
WAREHOUSE_NOT_SET_UP = "Warehouse logins are not set up on this server yet; its operators have been told why."


class EventFilterForm(forms.Form):
    event = forms.CharField(
        required=False,
        max_length=200,
        strip=False,
        label="Event name",
        widget=forms.TextInput(attrs={"list": "event-names", "placeholder": "All events", "autocomplete": "off"}),
    )
    since = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        required=False,
        label="To (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    user = forms.CharField(
        required=False,
        max_length=255,
        strip=False,
        label="User id",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "user or anonymous id", "autocomplete": "off"}),
    )
    property = forms.CharField(
        required=False,
        max_length=200,
        label="Property",
        widget=forms.TextInput(attrs={"placeholder": "e.g. plan or referrer.source", "autocomplete": "off"}),
    )
    value = forms.CharField(
        required=False,
        max_length=200,
        strip=False,
        label="Value",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "exact value", "autocomplete": "off"}),
    )

    def clean_property(self) -> tuple[str, ...]:
        path = self.cleaned_data["property"]
        keys = tuple(path.split(".")) if path else ()
        if any(not key for key in keys):
            raise forms.ValidationError(PROPERTY_PATH_INVALID)
        return keys

    def clean(self):
        cleaned = super().clean()
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        if since and until and until <= since:
            self.add_error("until", RANGE_REVERSED)
        if self.cleaned_data.get("value") and self.cleaned_data.get("property") == ():  # (a bad path has its error)
            self.add_error("property", VALUE_WITHOUT_PROPERTY)
        return cleaned

    def filters(self) -> EventFilters:
        data = self.cleaned_data
        return EventFilters(
            event=data["event"],
            since=data["since"],
            until=data["until"],
            user=data["user"],
            property_path=data["property"],
            property_value=data["value"],
        )


class EventsPageForm(EventFilterForm):
    """The filters, and the page of older events to show (`?before_id=N`, the "Older events" link)."""

    before_id = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class TailForm(EventsPageForm):
    after_id = forms.IntegerField(required=False, min_value=0)


class CatalogSearchForm(forms.Form):
    """The catalog's search box and page; the Events page gives it the prefix "catalog" (`?catalog-q=`)."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search event names",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name contains…", "autocomplete": "off"}),
    )
    page = forms.IntegerField(required=False, min_value=1)


class VolumeForm(EventFilterForm):
    period = forms.ChoiceField(required=False, choices=[(key, key) for key in VOLUME_RANGES])


def _json(data, *, status: int = 200, **dumps) -> JsonResponse:
    return JsonResponse(data, status=status, encoder=DjangoJSONEncoder, safe=False, json_dumps_params=dumps)


_Form = TypeVar("_Form", bound=forms.Form)


def _valid_form(form_class: type[_Form], request: HttpRequest) -> tuple[_Form, JsonResponse | None]:
    """The bound form, and the 400 answer to send instead when it is not valid."""
    form = form_class(request.GET)
    if form.is_valid():
        return form, None
    fields = [
        {"path": name, "message": error["message"]}
        for name, errors in form.errors.items()
        for error in errors.get_json_data()
    ]
    return form, _json(error_body(*INVALID_FILTERS, fields), status=400)


@login_required
@require_GET
def events_page(request: HttpRequest) -> HttpResponse:
    membership = get_membership(request)
    team = membership.team
    form = EventsPageForm(request.GET)
    catalog_form = CatalogSearchForm(request.GET, prefix="catalog")
    valid = form.is_valid()
    filters = form.filters() if valid else EventFilters()
    before_id = form.cleaned_data["before_id"] if valid else None
    tail = selectors.events_tail(team=team, filters=filters, before_id=before_id) if valid else None
    events = tail.events if tail else []
    search = catalog_form.cleaned_data if catalog_form.is_valid() else {}
    catalog = selectors.catalog_page(team=team, search=search.get("q", ""), number=search.get("page") or 1)
    filter_query = QueryDict(mutable=True)
    if valid:
        filter_query.update(
            {
                name: value
                for name, value in request.GET.items()
                if name in EventFilterForm.base_fields and isinstance(value, str) and value
            }
        )
    context = {
        "membership": membership,
        "team": team,
        "form": form,
        "catalog_form": catalog_form,
        "events": events,
        "before_id": before_id,
        "older_id": tail.older if tail else None,
        "last_id": max((event["id"] for event in events), default=0),
        "counts": selectors.event_counts(team=team, filters=filters),
        "filters": filters,
        "search_window": selectors.SEARCH_WINDOW,
        "catalog": catalog,
        "warehouse": selectors.warehouse_summary(team=team),
        "export_available": selectors.export_available(),
        "query": filter_query.urlencode(),
    }
    status = 200 if valid and catalog_form.is_valid() else 400
    return render(request, "events/events_page.html", context, status=status)


@login_required
@require_GET
def catalog_event_page(request: HttpRequest, event_id: int) -> HttpResponse:
    """One event name of the catalog with all its properties, a page at a time (`?page=N`)."""
    membership = get_membership(request)
    form = CatalogSearchForm(request.GET)
    number = (form.is_valid() and form.cleaned_data["page"]) or 1
    entry = selectors.catalog_event_page(team=membership.team, event_id=event_id, number=number)
    return render(
        request, "events/catalog_event.html", {"membership": membership, "team": membership.team, "entry": entry}
    )


@never_cache
@login_required
@require_GET
def events_tail(request: HttpRequest) -> JsonResponse:
    """The live tail: `?after_id=N` answers only events stored after event N, newest first; `?before_id=N` the
    page of older events before event N. `older` is the before_id of the page after this one, if there is one."""
    team = get_membership(request).team
    form, error = _valid_form(TailForm, request)
    if error:
        return error
    data = form.cleaned_data
    tail = selectors.events_tail(
        team=team, filters=form.filters(), after_id=data["after_id"], before_id=data["before_id"]
    )
    return _json({"events": tail.events, "older": tail.older})


@never_cache
@login_required
@require_GET
def event_counts_json(request: HttpRequest) -> JsonResponse:
    """The page's counters for its filters, and when the catalog was last synced: the page refreshes them as the
    tail brings new events."""
    team = get_membership(request).team
    form, error = _valid_form(EventFilterForm, request)
    if error:
        return error
    counts = selectors.event_counts(team=team, filters=form.filters())
    return _json({**counts, "catalog_synced_at": selectors.catalog_synced_at()})


@never_cache
@login_required
@require_GET
def event_json(request: HttpRequest, event_id: int) -> JsonResponse:
    """One event as stored, pretty-printed (the page's raw JSON panel, or opened directly)."""
    team = get_membership(request).team
    try:
        event = selectors.event_detail(team=team, event_id=event_id)
    except Http404:
        return _json(error_body(*EVENT_NOT_FOUND), status=404)
    return _json(event, indent=2)


@login_required
@require_GET
def catalog_json(request: HttpRequest) -> JsonResponse:
    """A page of the catalog, busiest names first: `?q=<part of a name>&page=N`."""
    team = get_membership(request).team
    form, error = _valid_form(CatalogSearchForm, request)
    if error:
        return error
    search, number = form.cleaned_data["q"], form.cleaned_data["page"] or 1
    return _json(selectors.catalog_as_json(team=team, search=search, number=number))


@login_required
@require_GET
def catalog_event_json(request: HttpRequest, event_id: int) -> JsonResponse:
    """Every property of one catalog name, PROPERTY_PAGE_SIZE at a time: `?page=N`."""
    team = get_membership(request).team
    form, error = _valid_form(CatalogSearchForm, request)
    if error:
        return error
    try:
        number = form.cleaned_data["page"] or 1
        entry = selectors.catalog_event_as_json(team=team, event_id=event_id, number=number)
    except Http404:
        return _json(error_body(*EVENT_NOT_FOUND), status=404)
    return _json(entry)


@login_required
@require_GET
def volume_json(request: HttpRequest) -> JsonResponse:
    """`?period=24h` (per hour, the default) or `30d` (per day), with the Events page's filters (`event`, `since`,
    `until`, `user`, `property`, `value`)."""
    team = get_membership(request).team
    form, error = _valid_form(VolumeForm, request)
    if error:
        return error
    period = form.cleaned_data["period"] or "24h"
    return _json(selectors.volume_series(team=team, period=period, filters=form.filters()))


@login_required
@require_GET
def events_export(request: HttpRequest) -> StreamingHttpResponse | JsonResponse:
    """The filtered events as CSV, oldest first, streamed as PostgreSQL writes it: never all held at once."""
    team = get_membership(request).team
    form, error = _valid_form(EventFilterForm, request)
    if error:
        return error
    if not selectors.export_available():
        return _json(error_body(*EXPORT_UNAVAILABLE), status=501)
    chunks = selectors.export_csv(team=team, filters=form.filters())
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    filename = f"events-{team.slug}-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@login_required
@require_POST
def warehouse_credentials_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Settings → Warehouse: create (or rotate) the team's read-only login. The URL with its password is in
    this one response only (never_cache sends Cache-Control: no-store)."""
    membership = get_owner_membership(request)
    try:
        url = warehouse_credentials_rotate(team=membership.team, by=request.user, ip=client_ip(request))
    except WarehouseLoginUnsafe:
        # The reason names the server's database, roles and SQL: for the operators' log, not for a team.
        logger.exception("Could not create or rotate the warehouse login of team %s.", membership.team.pk)
        messages.error(request, WAREHOUSE_NOT_SET_UP)
        return redirect(reverse(WAREHOUSE.url_name))
    except WarehouseUnavailable as error:
        messages.error(request, str(error))
        return redirect(reverse(WAREHOUSE.url_name))
    return render_warehouse(request, new_warehouse_url=url)
