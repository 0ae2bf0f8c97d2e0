from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from events.tokens.services import events_api_set_enabled

from .access import client_ip
from .models import Invitation, Membership, Team, User


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are evidence (the audit log, the events, invitations): staff read them, nobody edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeFormForEmail(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserCreationForm
    form = UserChangeFormForEmail
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["full_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "events_api_enabled",
        "event_retention_days",
        "events_api_changed_at",
        "events_api_changed_by",
    ]
    list_filter = ["events_api_enabled"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["events_api_changed_at", "events_api_changed_by", "created_at"]
    inlines = [MembershipInline]
    actions = ["enable_events_api", "disable_events_api"]

    def save_model(self, request, obj, form, change):
        # The switch goes through the service so that who and when are recorded and token caches are cleared.
        wanted = obj.events_api_enabled
        switching = "events_api_enabled" in form.changed_data
        if switching:
            obj.events_api_enabled = not wanted
        super().save_model(request, obj, form, change)
        if switching:
            events_api_set_enabled(team=obj, enabled=wanted, by=request.user, ip=client_ip(request))

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        changed = sum(
            events_api_set_enabled(team=team, enabled=enabled, by=request.user, ip=client_ip(request))
            for team in queryset
        )
        state = "enabled" if enabled else "disabled"
        self.message_user(request, f"Events API {state} for {changed} team(s).", messages.SUCCESS)

    @admin.action(description="Enable the Events API for the selected teams")
    def enable_events_api(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the Events API for the selected teams (tokens are kept)")
    def disable_events_api(self, request, queryset):
        self._set_enabled(request, queryset, False)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role", "team"]
    search_fields = ["user__email", "team__name"]
    autocomplete_fields = ["user", "team"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    """Staff see who was invited where; invitations are made and revoked by the team's Owners, in Settings."""

    list_display = ["email", "team", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = [("accepted_at", admin.EmptyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter), "team"]
    search_fields = ["email", "team__name"]
    list_select_related = ["team", "invited_by"]
    fields = readonly_fields = (
        "team",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
        "revoked_by",
    )
