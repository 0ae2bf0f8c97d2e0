from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from events.ingest import views
from events.ingest.validation import SEGMENT_TYPES

urlpatterns = [
    # Both spellings answer directly: a redirect would turn a client's POST into a GET.
    path("v1/event", views.EventIngestView.as_view(), name="ingest-event"),
    path("v1/event/", views.EventIngestView.as_view(schema=None)),
    path("v1/batch", views.BatchIngestView.as_view(), name="ingest-batch"),
    path("v1/batch/", views.BatchIngestView.as_view(schema=None)),
    path("v1/import", views.BatchIngestView.as_view(schema=None)),  # Segment's alias of /v1/batch
    *[
        path(
            f"v1/{kind}{slash}",
            views.SegmentMessageView.as_view(segment_type=kind, **({"schema": None} if slash else {})),
        )
        for kind in SEGMENT_TYPES
        for slash in ("", "/")
    ],
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("v1/docs", SpectacularSwaggerSplitView.as_view(url_name="openapi-schema"), name="api-docs"),
    re_path(r"^v1/", views.not_found),
]
