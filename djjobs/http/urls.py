"""The endpoints: ``path("jobs/", include("djjobs.urls"))``."""

from django.urls import path

from . import views

app_name = "djjobs"

urlpatterns = [
    path("enqueue/<str:task_name>/", views.enqueue, name="enqueue"),
    path("<uuid:job_id>/", views.job_status, name="job-status"),
    path("health/", views.health_view, name="health"),
    path("metrics/", views.metrics_view, name="metrics"),
]
