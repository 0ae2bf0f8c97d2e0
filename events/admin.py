from django.contrib import admin, messages

from .models import ApiToken, AuditEntry
from .services import api_token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff can see and revoke tokens, never create one or see a secret (only the digest is stored)."""

    list_display = ["name", "team", "hint", "created_at", "created_by", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "team"]
    search_fields = ["name", "hint", "team__name"]
    list_select_related = ["team", "created_by"]
    fields = ["team", "name", "hint", "digest", "created_by", "created_at", "last_used_at", "revoked_at", "revoked_by"]
    readonly_fields = fields
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting would erase the history; revoke instead.
        return False

    @admin.action(description="Revoke the selected tokens (permanent)")
    def revoke_tokens(self, request, queryset):
        ip = request.META.get("REMOTE_ADDR") or None
        revoked = sum(api_token_revoke(token=token, by=request.user, ip=ip) for token in queryset)
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "team", "action", "actor", "token_hint", "ip_address"]
    list_filter = ["action", "team"]
    search_fields = ["team__name", "actor__email", "token_hint"]
    list_select_related = ["team", "actor"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
