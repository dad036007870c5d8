"""The dashboard and the triggers list in the admin's index and navigation sidebar.

Each is the admin of a proxy model (djjobs.models.screens) whose list is the screen itself:
no rows, no add, change or delete; shown to a user who may view jobs (as the screens check).
Their earlier addresses (``job/dashboard/``, ``event/triggers/``) redirect here.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import path

from ..models import Dashboard, Job, Trigger
from . import dashboard
from . import triggers as triggers_view


class ScreenAdmin(admin.ModelAdmin):
    """A screen listed among the models: only its view."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("djjobs.view_job") or request.user.has_perm("djjobs.change_job")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_model_perms(self, request):
        return {"add": False, "change": False, "delete": False, "view": self.has_view_permission(request)}

    url_name: str = ""  # the screen's URL name (a subclass sets it)

    def screen(self, request):
        raise NotImplementedError

    def get_urls(self):
        view = self.admin_site.admin_view(self.changelist_view)
        changelist = f"{self.opts.app_label}_{self.opts.model_name}_changelist"  # the index's link
        return [path("", view, name=changelist), path("", view, name=self.url_name), *self.extra_urls()]

    def extra_urls(self) -> list:
        return []

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self.screen(request)


@admin.register(Dashboard)
class DashboardAdmin(ScreenAdmin):
    url_name = "djjobs_dashboard"

    def screen(self, request):
        return dashboard.render(self.admin_site._registry[Job], request)

    def extra_urls(self):
        return [path("live/", self.admin_site.admin_view(self.live_view), name="djjobs_dashboard_live")]

    def live_view(self, request):
        """The dashboard's panels as JSON, for the page's live updates."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return dashboard.live(self.admin_site._registry[Job], request)


@admin.register(Trigger)
class TriggerAdmin(ScreenAdmin):
    url_name = "djjobs_triggers"

    def screen(self, request):
        return triggers_view.TriggerListView.as_view(admin_site=self.admin_site)(request)
