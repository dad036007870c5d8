"""The public mount point, ``path("jobs/", include("djjobs.urls"))``: the endpoints live in djjobs.http.urls."""

from .http.urls import app_name, urlpatterns

__all__ = ["app_name", "urlpatterns"]
