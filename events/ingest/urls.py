from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from events.ingest import views
from events.ingest.pipeline import ROUTES

urlpatterns = [
    # One pattern per path of the pipeline's route table; only the documented spelling is in the schema.
    *[
        path(
            route.removeprefix("/"),
            views.VIEWS[endpoint.kind].as_view(endpoint=endpoint, **({} if endpoint.documented else {"schema": None})),
        )
        for route, endpoint in ROUTES.items()
    ],
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("v1/docs", SpectacularSwaggerSplitView.as_view(url_name="openapi-schema"), name="api-docs"),
    re_path(r"^v1/", views.not_found),
]
