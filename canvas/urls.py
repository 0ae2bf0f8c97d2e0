from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import views as account_views
from accounts import views_invitations as invitation_views
from events.metrics import metrics_view
from events.tokens import access_request_views
from events.tokens import views as event_views

from . import health

urlpatterns = [
    # The Events API first: it takes the most requests by far, and URL resolution tries patterns in order.
    path("", include("events.ingest.urls")),
    path("", RedirectView.as_view(pattern_name="settings", permanent=False)),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("settings/", account_views.settings_landing, name="settings"),
    path("settings/general/", account_views.general_page, name="settings_general"),
    path("settings/members/", account_views.members_page, name="settings_members"),
    path("settings/events-api/", event_views.events_api_page, name="settings_events_api"),
    path("settings/warehouse/", account_views.warehouse_page, name="settings_warehouse"),
    path("settings/team/", account_views.team_rename, name="team_rename"),
    path("settings/invitations/", invitation_views.invitation_send, name="invitation_send"),
    path("settings/invitations/<int:pk>/revoke/", invitation_views.invitation_revoke, name="invitation_revoke"),
    path("invitations/accept/", invitation_views.invitation_accept, name="invitation_accept"),
    path("invitations/<str:secret>/", invitation_views.invitation_open, name="invitation_open"),
    path("settings/members/<int:pk>/role/", account_views.member_change_role, name="member_change_role"),
    path(
        "settings/members/<int:pk>/remove/confirm/", account_views.member_remove_confirm, name="member_remove_confirm"
    ),
    path("settings/members/<int:pk>/remove/", account_views.member_remove, name="member_remove"),
    path(
        "settings/events-api/request-access/",
        access_request_views.access_request_create,
        name="events_api_request_access",
    ),
    path("settings/tokens/", event_views.token_create, name="token_create"),
    path("settings/tokens/<int:pk>/", event_views.token_detail, name="token_detail"),
    path("settings/tokens/<int:pk>/revoke/confirm/", event_views.token_revoke_confirm, name="token_revoke_confirm"),
    path("settings/tokens/<int:pk>/revoke/", event_views.token_revoke, name="token_revoke"),
    path("settings/tokens/<int:pk>/first-event", event_views.token_first_event, name="token_first_event"),
    path("teams/<slug:slug>/switch/", account_views.team_switch, name="team_switch"),
    path("events/", include("events.explorer.urls")),
]
