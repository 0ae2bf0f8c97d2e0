from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from . import api

urlpatterns = [
    # Both spellings answer directly: a redirect would turn a client's POST into a GET.
    path("v1/event", api.EventIngestView.as_view(), name="ingest-event"),
    path("v1/event/", api.EventIngestView.as_view(schema=None)),
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("v1/docs", SpectacularSwaggerSplitView.as_view(url_name="openapi-schema"), name="api-docs"),
    re_path(r"^v1/", api.not_found),
]
