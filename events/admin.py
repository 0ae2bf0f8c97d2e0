import json

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.utils.functional import cached_property

from accounts.access import client_ip
from accounts.admin import ReadOnlyAdmin
from events.models import AccessRequest, ApiToken, AuditEntry, CatalogSyncState, Event, RejectedEvent, TeamWarehouse
from events.tokens.services import api_token_revoke, events_api_set_enabled
from events.warehouse.catalog import catalog_lag


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff can see and revoke tokens, never create one or see a secret (only the digest is stored)."""

    list_display = ["name", "team", "hint", "created_at", "created_by", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "team"]
    search_fields = ["name", "hint", "team__name"]
    list_select_related = ["team", "created_by"]
    fields = readonly_fields = (
        "team",
        "name",
        "hint",
        "digest",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting would erase the history; revoke instead.
        return False

    @admin.action(description="Revoke the selected tokens (permanent)")
    def revoke_tokens(self, request, queryset):
        ip = client_ip(request)
        revoked = sum(api_token_revoke(token=token, by=request.user, ip=ip) for token in queryset)
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "team", "action", "actor", "token_hint", "member_email", "role", "ip_address"]
    list_filter = ["action", "team"]
    search_fields = ["team__name", "actor__email", "token_hint", "member_email"]
    list_select_related = ["team", "actor"]
    date_hierarchy = "created_at"


class AccessRequestStatusFilter(admin.SimpleListFilter):
    """Pending requests first: what staff come here to act on."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    """Owners ask for the Events API from Settings; staff enable it here (or on the team's page) and that
    resolves the request."""

    list_display = ["created_at", "team", "requested_by", "note", "api_enabled", "resolved_at", "resolved_by"]
    list_filter = [AccessRequestStatusFilter]
    search_fields = ["team__name", "team__slug", "requested_by__email"]
    list_select_related = ["team", "requested_by", "resolved_by"]
    readonly_fields = ["team", "requested_by", "note", "created_at", "resolved_at", "resolved_by"]
    actions = ["enable_events_api"]

    @admin.display(boolean=True, description="API enabled")
    def api_enabled(self, access_request: AccessRequest) -> bool:
        return access_request.team.events_api_enabled

    def has_change_permission(self, request, obj=None):
        # Actions need it; every field stays read-only.
        return request.user.has_perm("events.change_accessrequest")

    @admin.action(description="Enable the Events API for the selected requests' teams", permissions=["change"])
    def enable_events_api(self, request, queryset):
        # The same service as the team's page: one home for the switch, its audit row and the token caches.
        teams = {access_request.team for access_request in queryset.select_related("team")}
        for team in teams:
            events_api_set_enabled(team=team, enabled=True, by=request.user, ip=client_ip(request))
        self.message_user(request, f"Events API enabled for {len(teams)} team(s).", messages.SUCCESS)


class EventNameFilter(admin.SimpleListFilter):
    """Event names of the team chosen in the Team filter (listing every name of every team would scan the table)."""

    title = "event name (choose a team first)"
    parameter_name = "event"
    MAX_NAMES = 100

    def lookups(self, request, model_admin):
        team_id = request.GET.get("team__id__exact")
        if not team_id or not team_id.isdigit():
            return []
        names = Event.objects.filter(team_id=int(team_id)).order_by("event").values_list("event", flat=True).distinct()
        return [(name, name) for name in names[: self.MAX_NAMES]]

    def queryset(self, request, queryset):
        return queryset.filter(event=self.value()) if self.value() else queryset


class EstimatedCountPaginator(Paginator):
    """Counts with the planner's estimate on PostgreSQL once the table is large.

    The changelist would otherwise run COUNT(*) over millions of events on every page load.
    """

    EXACT_BELOW = 10_000

    @cached_property
    def count(self) -> int:
        if connection.vendor != "postgresql" or not isinstance(self.object_list, QuerySet):
            return super().count
        plan = self.object_list.explain(format="json")
        estimate = int(json.loads(plan)[0]["Plan"]["Plan Rows"])
        return super().count if estimate < self.EXACT_BELOW else estimate


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Events are read-only evidence of what a team sent."""

    list_display = ["id", "received_at", "team", "type", "event", "timestamp", "message_id"]
    list_filter = ["team", "type", EventNameFilter]
    search_fields = ["event"]
    date_hierarchy = "timestamp"
    list_select_related = ["team"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Facet counts are COUNT(*) ... FILTER over the whole table, one per filter choice.
    show_facets = admin.ShowFacets.NEVER
    # By when they happened, as the Events page shows them: the index (team, timestamp, id) serves a team's list.
    ordering = ["-timestamp", "-id"]
    readonly_fields = [f.name for f in Event._meta.fields]


@admin.register(RejectedEvent)
class RejectedEventAdmin(ReadOnlyAdmin):
    list_display = ["last_received_at", "team", "endpoint", "status", "count", "token"]
    list_filter = ["endpoint", "status", "team"]
    list_select_related = ["team", "token"]
    readonly_fields = [
        "team",
        "token",
        "token_hint",
        "endpoint",
        "status",
        "count",
        "payload",
        "errors",
        "received_at",
        "last_received_at",
    ]


@admin.register(TeamWarehouse)
class TeamWarehouseAdmin(ReadOnlyAdmin):
    """Each team's warehouse and the health of its sync: a failing team is synced no further until its
    error is dealt with, while every other team goes on."""

    list_display = ["team", "schema_name", "sync_error_step", "sync_error", "sync_failing_since", "waiting_events"]
    list_filter = [("sync_failing_since", admin.EmptyFieldListFilter), "sync_error_step"]
    search_fields = ["team__name", "team__slug", "schema_name"]
    list_select_related = ["team"]
    ordering = ["-sync_failing_since", "team__name"]
    fields = readonly_fields = (
        "team",
        "schema_name",
        "role_name",
        "sync_error_step",
        "sync_error",
        "sync_failing_since",
        "sync_failures",
        "catalog_backlog",
        "catalog_version",
        "views_version",
        "views_synced_at",
        "credentials_rotated_at",
    )

    @admin.display(description="waiting ids")
    def waiting_events(self, warehouse: TeamWarehouse) -> int:
        """How many ids the team's backlog spans (events of other teams in those ranges are not counted)."""
        return sum(last - first + 1 for first, last in warehouse.catalog_backlog)


@admin.register(CatalogSyncState)
class CatalogSyncStateAdmin(ReadOnlyAdmin):
    """How far the catalog sync (`sync_warehouse --watch`) is behind ingest; /metrics exports the same lag."""

    list_display = ["__str__", "synced_at", "lag_events", "lag_seconds", "open_gap_count"]
    fields = readonly_fields = ("last_event_id", "synced_at", "lag_events", "lag_seconds", "open_gap_count")

    # Each reads the lag afresh (a few indexed queries): the page shows one row.
    @admin.display(description="events behind")
    def lag_events(self, state: CatalogSyncState) -> int:
        return catalog_lag().events

    @admin.display(description="seconds behind")
    def lag_seconds(self, state: CatalogSyncState) -> str:
        return f"{catalog_lag().seconds:.0f}"

    @admin.display(description="open gaps")
    def open_gap_count(self, state: CatalogSyncState) -> int:
        return len(state.open_gaps)
