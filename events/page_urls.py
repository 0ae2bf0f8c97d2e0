"""The Events page and its JSON endpoints, under /events/ (see canvas/urls.py)."""

from django.urls import path

from . import pages

urlpatterns = [
    path("", pages.events_page, name="events_page"),
    path("tail.json", pages.events_tail, name="events_tail"),
    path("<int:event_id>.json", pages.event_json, name="events_detail"),
    path("catalog.json", pages.catalog_json, name="events_catalog"),
    path("catalog/<int:event_id>/", pages.catalog_event_page, name="events_catalog_event"),
    path("catalog/<int:event_id>.json", pages.catalog_event_json, name="events_catalog_event_json"),
    path("volume.json", pages.volume_json, name="events_volume"),
    path("export.csv", pages.events_export, name="events_export"),
    path("warehouse/credentials/", pages.warehouse_credentials_create, name="warehouse_credentials_create"),
]
