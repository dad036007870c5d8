from django.contrib import admin
from django.urls import include, path

from demo_project.shop.views import favicon

urlpatterns = [
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    # djjobs' endpoints: /jobs/enqueue/<task>/, /jobs/<id>/, /jobs/health/, /jobs/metrics/
    # (the shop's own /jobs/ pages match none of them and fall through to it).
    path("jobs/", include("djjobs.urls")),
    path("", include("demo_project.shop.urls")),
]
