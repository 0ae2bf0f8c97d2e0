"""The site's URLs plus one view that fails, for the 500 page's test."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

FAILURE_DETAIL = "internal detail that must stay in the log"


def failing_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(FAILURE_DETAIL)


urlpatterns = [path("fail/", failing_view), path("", include("canvas.urls"))]
