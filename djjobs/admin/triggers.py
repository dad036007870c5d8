"""The read-only list of triggers: a view of the admin, not a model.

Triggers are declarations in code, not rows, so there is nothing to store: the view reads the
registry (djjobs.triggers) and counts each trigger's jobs with one GROUP BY on the partial
index of Job.trigger. An unmanaged model would need a table or a database view to query, a
migration, and would offer list machinery (search, delete, history) that means nothing here.
"""

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.http import urlencode
from django.views.generic import TemplateView

from .. import triggers
from ..models import Trigger


class TriggerListView(TemplateView):
    template_name = "djjobs/admin/triggers.html"
    admin_site: AdminSite | None = None  # given by as_view(admin_site=...)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm("djjobs.view_job"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        declared = triggers.registered()
        stats = triggers.stats(t.name for t in declared)
        jobs_url = reverse("admin:djjobs_job_changelist")
        rows = [
            {
                "trigger": t,
                "task": t.task.module_path,
                "jobs": stats[t.name]["jobs"],
                "last_enqueued_at": stats[t.name]["last_enqueued_at"],
                "jobs_url": f"{jobs_url}?{urlencode({'trigger': t.name})}",
            }
            for t in declared
        ]
        return {
            **super().get_context_data(**kwargs),
            **self.admin_site.each_context(self.request),  # type: ignore[union-attr]  # as_view() gave it
            "title": "Triggers",
            "opts": Trigger._meta,
            "rows": rows,
        }
