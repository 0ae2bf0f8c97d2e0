"""The Events page and its JSON endpoints, under /events/ (see canvas/urls.py).

The page is whole HTML from the server; the .json endpoints feed static/js/events.js (the live tail, the raw
JSON panel, the chart). Every route answers for the current team only.
"""

from django.urls import path

from events.explorer import views

urlpatterns = [
    path("", views.events_page, name="events_page"),
    path("tail.json", views.events_tail, name="events_tail"),
    path("counts.json", views.event_counts_json, name="events_counts"),
    path("<int:event_id>.json", views.event_json, name="events_detail"),
    path("catalog.json", views.catalog_json, name="events_catalog"),
    path("catalog/<int:event_id>/", views.catalog_event_page, name="events_catalog_event"),
    path("catalog/<int:event_id>.json", views.catalog_event_json, name="events_catalog_event_json"),
    path("volume.json", views.volume_json, name="events_volume"),
    path("export.csv", views.events_export, name="events_export"),
    path("warehouse/credentials/", views.warehouse_credentials_create, name="warehouse_credentials_create"),
]
