from http import HTTPStatus

from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from accounts.models import Role, Team
from events.warehouse.distinct_count import sketch_estimate


class ApiTokenQuerySet(models.QuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True)

    def for_team(self, team: Team):
        return self.filter(team=team)


class ApiToken(models.Model):
    """An Events API token. Only the SHA-256 digest of the secret is stored; the plaintext is shown once."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="The Owner's label, e.g. 'Production stream'.")
    hint = models.CharField(max_length=16, help_text="Prefix and last four characters, for recognising a token.")
    digest = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["digest"], name="events_apitoken_digest_unique"),
        ]
        indexes = [models.Index(fields=["team", "-created_at"], name="events_apitoken_team_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AuditAction(models.TextChoices):
    TOKEN_CREATED = "token_created", "Token created"
    TOKEN_REVOKED = "token_revoked", "Token revoked"
    API_ENABLED = "api_enabled", "Events API enabled"
    API_DISABLED = "api_disabled", "Events API disabled"
    WAREHOUSE_CREDENTIALS = "warehouse_credentials", "Warehouse login created or rotated"
    API_ACCESS_REQUESTED = "api_access_requested", "Events API access requested"
    INVITATION_SENT = "invitation_sent", "Invitation sent"
    INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
    INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
    MEMBER_ROLE_CHANGED = "member_role_changed", "Member's role changed"
    MEMBER_REMOVED = "member_removed", "Member removed"


class AuditEntry(models.Model):
    """Who did what to a team's access (Events API, tokens, members), from where, and when. Never edited."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=32, choices=AuditAction)
    token_hint = models.CharField(max_length=16, blank=True)
    member_email = models.EmailField(blank=True, help_text="The member or invitee concerned.")
    role = models.CharField(max_length=16, choices=Role, blank=True, help_text="The role given, if any.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["team", "-created_at"], name="events_audit_team_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"


class AccessRequestQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(resolved_at__isnull=True)


class AccessRequest(models.Model):
    """An Owner's request that staff enable the Events API for their team. Enabling the API resolves it
    (events.tokens.services.events_api_set_enabled), however staff enable it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="access_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True, max_length=1000, help_text="What the team plans to send, in its words.")
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"], condition=models.Q(resolved_at__isnull=True), name="events_accessrequest_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"Events API for {self.team}, requested {self.created_at:%Y-%m-%d}"


class EventType(models.TextChoices):
    TRACK = "track", "Track"
    IDENTIFY = "identify", "Identify"
    PAGE = "page", "Page"
    SCREEN = "screen", "Screen"
    GROUP = "group", "Group"
    ALIAS = "alias", "Alias"


class EventQuerySet(models.QuerySet):
    def for_team(self, team: Team):
        return self.filter(team=team)


class Event(models.Model):
    """One accepted event. Rows are only ever inserted (by events.ingest.storage), never updated, and deleted only
    by retention (events.retention).

    On PostgreSQL the table is partitioned by month of received_at and its primary key is (team_id, id,
    received_at) (migrations 0002 and 0014): team_id is in every unique key so the table can be distributed by
    team (Citus) without a schema change. Django still addresses rows by `id`, which the sequence keeps unique.
    A messageId is unique per team through its claim in EventMessageId, not through this table.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    token = models.ForeignKey(ApiToken, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    type = models.CharField(max_length=16, choices=EventType, default=EventType.TRACK)
    event = models.CharField(max_length=200)
    properties = models.JSONField(default=dict)
    timestamp = models.DateTimeField(help_text="Corrected for client clock skew.")
    original_timestamp = models.DateTimeField(null=True, blank=True, help_text="As the client sent it.")
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    # NULL, not "", means "not sent": only a sent messageId is claimed in EventMessageId.
    message_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    user_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    anonymous_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    context = models.JSONField(null=True, blank=True)
    # Segment fields without a column of their own: groupId, previousId, name, category, integrations.
    extra = models.JSONField(null=True, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [
            # "A team's events by when they happened": the Events page's tail, its time range, paging, counters and
            # CSV export, the admin's list. id makes the order total, so keyset paging stays on the index.
            models.Index(fields=["team", "timestamp", "id"], name="events_event_team_time_idx"),
            # "What a team received since …": retention's batches, a new token's first event.
            models.Index(fields=["team", "-received_at"], name="events_event_team_recv_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class EventMessageId(models.Model):
    """A team's messageId and the event that holds it, for the dedupe window (EVENTS_DEDUPE_WINDOW_DAYS).

    events.ingest.storage writes the claim in the transaction that stores its event, and the primary key
    (team_id, message_id) makes a resend a duplicate. Unlike the events table this one stays small:
    events.retention deletes claims older than the window, after which the same messageId is stored again.
    No foreign keys: a claim is checked on every ingest, and one left by a deleted team expires with the window.
    """

    pk = models.CompositePrimaryKey("team_id", "message_id")
    team_id = models.BigIntegerField()
    message_id = models.CharField(max_length=100)
    event_id = models.BigIntegerField(help_text="The event stored under this messageId.")
    received_at = models.DateTimeField(help_text="When that event was received; the window counts from here.")

    class Meta:
        db_table = "events_message_id"
        verbose_name = "event messageId"

    def __str__(self) -> str:
        return f"{self.message_id} of team {self.team_id}: event {self.event_id}"


class RejectedEvent(models.Model):
    """An event or request the API refused after recognising its token, kept so "200, but where is my data?" and
    "why was this refused?" can be answered on the Settings page. Capped per team (see events.ingest.rejections).

    A refusal that can repeat without limit (a 429, a revoked token's 401) is counted in one row per burst:
    `count` refusals from `received_at` to `last_received_at`."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    token = models.ForeignKey(ApiToken, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    token_hint = models.CharField(max_length=16, blank=True)
    endpoint = models.CharField(max_length=32)
    status = models.PositiveSmallIntegerField()
    payload = models.TextField(blank=True, help_text="What was sent, cut to 4 KB.")
    errors = models.JSONField(default=list)
    received_at = models.DateTimeField(default=timezone.now)
    last_received_at = models.DateTimeField(default=timezone.now, help_text="The latest refusal counted here.")
    count = models.PositiveBigIntegerField(default=1, help_text="Refusals counted in this row.")

    class Meta:
        ordering = ["-last_received_at", "-id"]
        indexes = [models.Index(fields=["team", "-id"], name="events_rejected_team_idx")]

    def __str__(self) -> str:
        return f"{self.status} on {self.endpoint} at {self.received_at:%Y-%m-%d %H:%M:%S}"

    @property
    def status_phrase(self) -> str:
        """The status's name in HTTP: "Unsupported Media Type" for 415."""
        return HTTPStatus(self.status).phrase


# --- Warehouse and catalog (events.warehouse.catalog keeps these current; events.warehouse.sync makes views) ---


class ColumnType(models.TextChoices):
    """The PostgreSQL type of a warehouse column, inferred from every value seen (see events.warehouse.column_types)."""

    NUMERIC = "numeric", "numeric"
    BOOLEAN = "boolean", "boolean"
    TIMESTAMPTZ = "timestamptz", "timestamptz"
    TEXT = "text", "text"


def infer_column_type(*, numeric: int, boolean: int, timestamp: int, text: int) -> str:
    """The one type every value had; anything mixed is text (as is a property that only ever was null)."""
    seen = [kind for kind, count in zip(ColumnType, (numeric, boolean, timestamp, text), strict=True) if count]
    return seen[0].value if len(seen) == 1 else ColumnType.TEXT.value


class SyncStep(models.TextChoices):
    CATALOG = "catalog", "Catalog"
    VIEWS = "views", "Views"


SYNC_ERROR_LENGTH = 2000


class TeamWarehouse(models.Model):
    """A team's warehouse: its schema, its read-only login, and how far its relations are behind the catalog.

    The catalog sync raises `catalog_version` whenever a relation or column appears or a column's type changes;
    bringing the tables in line (events.warehouse.tables) copies the version into `views_version`. `views`
    records what was built (per relation: its columns with types and property paths, and a digest of its views'
    SQL), so that the tables can be filled without reading the catalog, unchanged relations are left alone and
    a table whose columns only grew is altered in place.
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="warehouse")
    schema_name = models.CharField(max_length=63)
    role_name = models.CharField(max_length=63, blank=True, help_text="The team's read-only PostgreSQL login.")
    credentials_rotated_at = models.DateTimeField(null=True, blank=True)
    credentials_rotated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    catalog_version = models.PositiveBigIntegerField(default=0)
    views_version = models.PositiveBigIntegerField(default=0)
    views = models.JSONField(default=dict, blank=True)
    views_synced_at = models.DateTimeField(null=True, blank=True)
    # One team's failing sync holds back only that team (events.warehouse.catalog): its events wait here, and staff
    # see why in Django admin.
    catalog_backlog = models.JSONField(
        default=list,
        blank=True,
        help_text="[[first id, last id], ...]: this team's events not catalogued yet because its sync failed.",
    )
    sync_error = models.TextField(blank=True, help_text="Why this team's last sync failed; blank when it worked.")
    sync_error_step = models.CharField(max_length=16, choices=SyncStep, blank=True)
    sync_failing_since = models.DateTimeField(null=True, blank=True)
    sync_failures = models.PositiveBigIntegerField(default=0, help_text="Failed syncs of this team, ever.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["schema_name"], name="events_teamwarehouse_schema_unique"),
        ]

    def __str__(self) -> str:
        return self.schema_name

    def record_sync_failure(self, *, step: str, error: BaseException) -> None:
        """Remember why this team's sync failed; a failure that goes on keeps the time it began."""
        now = timezone.now()
        self.sync_error = f"{type(error).__name__}: {error}"[:SYNC_ERROR_LENGTH]
        self.sync_error_step = step
        self.sync_failing_since = self.sync_failing_since or now
        TeamWarehouse.objects.filter(pk=self.pk).update(
            sync_error=self.sync_error,
            sync_error_step=step,
            sync_failing_since=Coalesce("sync_failing_since", Value(now)),
            sync_failures=F("sync_failures") + 1,
        )

    def clear_sync_failure(self, *, step: str) -> None:
        """The step that failed has worked: forget the failure (a failure of the other step stays)."""
        if self.sync_error_step != step:
            return
        self.sync_error, self.sync_error_step, self.sync_failing_since = "", "", None
        TeamWarehouse.objects.filter(pk=self.pk, sync_error_step=step).update(
            sync_error="", sync_error_step="", sync_failing_since=None
        )


class CatalogEvent(models.Model):
    """One event name of a team (per Segment type), with the warehouse view that holds it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=16, choices=EventType)
    name = models.CharField(max_length=200)
    table_name = models.CharField(
        max_length=63, blank=True, help_text="The view holding these events; blank past the per-team view limit."
    )
    count = models.PositiveBigIntegerField(default=0)
    first_seen_at = models.DateTimeField(help_text="received_at of the first event of this name.")
    last_seen_at = models.DateTimeField(help_text="received_at of the latest event of this name.")
    # Set on the events of a page by events.explorer.selectors.catalog_page.
    property_count: int
    other_properties: "CatalogOther | None"

    class Meta:
        ordering = ["type", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "type", "name"], name="events_catalogevent_unique"),
            # Each track event name has a view of its own; other types share their type's view (pages, ...).
            models.UniqueConstraint(
                fields=["team", "table_name"],
                condition=models.Q(type=EventType.TRACK) & ~models.Q(table_name=""),
                name="events_catalogevent_track_table_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}"


class CatalogProperty(models.Model):
    """One property path of an event name: its column, how often it was present and with which types."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    catalog_event = models.ForeignKey(CatalogEvent, on_delete=models.CASCADE, related_name="properties")
    path = models.JSONField(help_text='The keys from the top of properties (traits): ["address", "city"].')
    # Keys may be long and nested deep, too long for an index: uniqueness is on a digest of the path.
    path_digest = models.CharField(max_length=64)
    column_name = models.CharField(max_length=63)
    count = models.PositiveBigIntegerField(default=0, help_text="Events in which it had a non-null value.")
    numeric_count = models.PositiveBigIntegerField(default=0)
    boolean_count = models.PositiveBigIntegerField(default=0)
    timestamp_count = models.PositiveBigIntegerField(default=0)
    text_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "catalog_event", "path_digest"], name="events_catalogproperty_unique"
            ),
        ]
        verbose_name_plural = "catalog properties"

    def __str__(self) -> str:
        return ".".join(self.path)

    @property
    def inferred_type(self) -> str:
        return infer_column_type(
            numeric=self.numeric_count,
            boolean=self.boolean_count,
            timestamp=self.timestamp_count,
            text=self.text_count,
        )


class CatalogOther(models.Model):
    """What the catalog counted past its caps, in one "Other" row instead of a row each (see events.warehouse.catalog):
    per team, the event names past MAX_CATALOG_EVENTS (`catalog_event` is null); per event name, its
    properties past MAX_CATALOG_PROPERTIES. The events themselves are stored and queryable like any other."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    catalog_event = models.ForeignKey(
        CatalogEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    count = models.PositiveBigIntegerField(
        default=0, help_text="Events under other names; or, for properties, values of other properties."
    )
    distinct_sketch = models.BinaryField(
        help_text="About how many other names or properties (events.warehouse.distinct_count)."
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team"], condition=models.Q(catalog_event__isnull=True), name="events_catalogother_names_unique"
            ),
            models.UniqueConstraint(
                fields=["team", "catalog_event"],
                condition=models.Q(catalog_event__isnull=False),
                name="events_catalogother_properties_unique",
            ),
        ]
        verbose_name_plural = "catalog others"

    def __str__(self) -> str:
        return f"other properties of {self.catalog_event}" if self.catalog_event_id else "other event names"

    @property
    def distinct(self) -> int:
        return sketch_estimate(self.distinct_sketch)


class _Volume(models.Model):
    """How many events of a name a team sent in one period (by the event's timestamp)."""

    # Blank is never an event name (validation refuses empty names): it holds the names counted as Other.
    OTHER_NAMES = ""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    event = models.CharField(max_length=200, blank=True, help_text="Blank: the names the catalog counts as Other.")
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True


class EventVolume(_Volume):
    """Events per name and hour: the volume chart."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "event", "hour"], name="events_eventvolume_unique"),
        ]
        indexes = [models.Index(fields=["team", "hour"], name="events_volume_team_hour_idx")]

    def __str__(self) -> str:
        return f"{self.event} @ {self.hour:%Y-%m-%d %H:00}: {self.count}"


class DailyEventVolume(_Volume):
    """EventVolume added up per day (from 00:00 UTC): what the 30-day chart reads, a 24th of the hourly rows."""

    day = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "event", "day"], name="events_dailyeventvolume_unique"),
        ]
        indexes = [models.Index(fields=["team", "day"], name="events_daily_volume_team_idx")]

    def __str__(self) -> str:
        return f"{self.event} @ {self.day:%Y-%m-%d}: {self.count}"


class CatalogSyncState(models.Model):
    """How far the catalog has read the events table (one row). Written once per sync, never on ingest.

    Ids come from a sequence but commit out of order (concurrent requests, group commits), so an id below
    the watermark can still appear after a sync passed it. `open_gaps` lists such missing ids with the time
    they were noticed; each sync looks for them again until they turn up or expire (see events.warehouse.catalog).
    """

    last_event_id = models.BigIntegerField(default=0)
    open_gaps = models.JSONField(default=list, blank=True, help_text="[[event id, unix time noticed], ...]")
    # Every team's events below this id (and below its backlog) are in its warehouse tables; the relations read
    # the rest live from events_event (events.warehouse.tables).
    live_from_id = models.BigIntegerField(default=0, help_text="The lowest event id not known to be catalogued.")
    synced_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"catalog up to event {self.last_event_id}"


class CatalogBackfill(models.Model):
    """An event stored with an id the catalog had already passed (a backfill with explicit ids, or an insert
    that committed late): written by a trigger on events_event, read and emptied by the catalog sync.

    The trigger (migration 0014) runs once per INSERT or COPY statement, not per row, and writes here only
    for rows at or below the catalog's watermark; it also moves the ids' sequence past any explicit id above
    it, so later ids stay unique and the sync's watermark reaches the row.
    """

    team_id = models.BigIntegerField()
    event_id = models.BigIntegerField()
    noted_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "events_backfill"

    def __str__(self) -> str:
        return f"event {self.event_id} of team {self.team_id}"
