"""The Queue admin: each queue's depth, running jobs, oldest due age, limits and paused state,
with pause/resume (permission "Can pause and resume queues") and editing of limits. Every change
is recorded in the admin's history (LogEntry) with who made it."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import flow
from ..models import Queue
from ..queues import ensure_queues, forget, queue_states
from ..schedules.text import relative


class QueueForm(forms.ModelForm):
    class Meta:
        model = Queue
        fields = ["paused", "concurrency", "rate_limit"]

    def clean_concurrency(self):
        value = self.cleaned_data.get("concurrency")
        if value is not None and not 1 <= value <= flow.MAX_LIMIT:
            raise ValidationError(_("A concurrency limit is from 1 to %(max)s.") % {"max": flow.MAX_LIMIT})
        return value

    def clean_rate_limit(self):
        value = (self.cleaned_data.get("rate_limit") or "").strip()
        if value:
            try:
                flow.parse_rate(value)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        return value


class QueueChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        states = {state.name: state for state in queue_states()}
        for row in self.result_list:
            row.state = states.get(row.name)


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    form = QueueForm
    list_display = ["name", "paused_badge", "limits", "ready", "due", "running", "waiting", "oldest_due"]
    list_display_links = ["name"]
    actions = ["pause", "resume"]
    readonly_fields = ["name", "updated_at"]
    fields = ["name", "paused", "concurrency", "rate_limit", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if self.has_pause_permission(request):
            return self.readonly_fields
        return [*self.readonly_fields, "paused"]

    def get_changelist(self, request, **kwargs):
        return QueueChangeList

    def changelist_view(self, request, extra_context=None):
        # A queue is made on first use: the ones that only have jobs (or a setting) get a row.
        ensure_queues(state.name for state in queue_states())
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        return False  # queues are made by their jobs, the workers and the settings

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("state"), ordering="paused")
    def paused_badge(self, queue):
        return _("paused") if queue.paused else _("active")

    @admin.display(description=_("limits"))
    def limits(self, queue):
        state = getattr(queue, "state", None)
        if state is None:
            return "-"
        parts = []
        if state.concurrency:
            parts.append(_("%(n)s at once (%(source)s)") % {"n": state.concurrency, "source": state.concurrency_from})
        if state.rate_limit:
            parts.append(_("%(rate)s (%(source)s)") % {"rate": state.rate_limit, "source": state.rate_limit_from})
        return ", ".join(str(part) for part in parts) or "-"

    def _count(self, queue, name):
        state = getattr(queue, "state", None)
        return getattr(state, name, 0) if state is not None else 0

    @admin.display(description=_("ready"))
    def ready(self, queue):
        return self._count(queue, "ready")

    @admin.display(description=_("due"))
    def due(self, queue):
        return self._count(queue, "due")

    @admin.display(description=_("running"))
    def running(self, queue):
        return self._count(queue, "running")

    @admin.display(description=_("waiting"))
    def waiting(self, queue):
        return self._count(queue, "waiting")

    @admin.display(description=_("oldest due"))
    def oldest_due(self, queue):
        state = getattr(queue, "state", None)
        if state is None or state.oldest_due is None:
            return "-"
        return relative(state.oldest_due, timezone.now())

    def has_pause_permission(self, request):
        return request.user.has_perm("djjobs.pause_queue")

    @admin.action(description=_("Pause selected queues"), permissions=["pause"])
    def pause(self, request, queryset):
        self._set_paused(request, queryset, True)

    @admin.action(description=_("Resume selected queues"), permissions=["pause"])
    def resume(self, request, queryset):
        self._set_paused(request, queryset, False)

    def _set_paused(self, request, queryset, paused: bool):
        changed = 0
        for queue in queryset.filter(paused=not paused):
            queue.paused = paused
            queue.save(update_fields=["paused", "updated_at"])
            self.log_change(request, queue, [{"changed": {"fields": ["paused"]}}])
            changed += 1
        forget()
        verb = _("paused") if paused else _("resumed")
        self.message_user(
            request,
            ngettext("%(n)d queue %(verb)s.", "%(n)d queues %(verb)s.", changed) % {"n": changed, "verb": verb},
            messages.SUCCESS,
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget()
