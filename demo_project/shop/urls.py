from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("orders/", views.place_order, name="place_order"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/report/", views.enqueue_report, name="enqueue_report"),
    path("jobs/flaky/", views.enqueue_flaky, name="enqueue_flaky"),
    path("jobs/poison/", views.enqueue_poison, name="enqueue_poison"),
    path("jobs/fulfilment/", views.start_fulfilment, name="start_fulfilment"),
]
