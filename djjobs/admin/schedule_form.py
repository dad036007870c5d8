"""The Schedule admin form: JSON with messages that say where it breaks, run_at entered in the
schedule's own time zone, suggestions (datalists) for tasks and zones. The rules themselves
are the model's (``Schedule.clean()``), shared with ``manage.py schedules``."""

import json
import zoneinfo
from datetime import datetime
from functools import lru_cache

from django import forms
from django.contrib.admin import widgets
from django.utils import timezone

from ..models import Schedule
from ..registry import declared_tasks
from ..schedules.cron import TimingError, get_zone, localize


class JSONInput(forms.JSONField):
    """A JSONField whose error says what is wrong with the text, and where."""

    def __init__(self, *, empty, **kwargs):
        self.empty = empty
        super().__init__(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), **kwargs)

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(
                    f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).", code="invalid"
                ) from None
        value = super().to_python(value)
        return type(self.empty)() if value is None else value


class WallClockDateTimeField(forms.SplitDateTimeField):
    """A date and time as typed, without the active time zone: the form reads it in the
    schedule's own zone."""

    def compress(self, data_list):
        if data_list and data_list[0] is not None and data_list[1] is not None:
            return datetime.combine(*data_list)
        return None


class DatalistInput(forms.TextInput):
    """A text input with suggestions."""

    template_name = "djjobs/admin/datalist_input.html"

    def __init__(self, options, attrs=None):
        super().__init__(attrs)
        self.options = options

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["list"] = f"{context['widget']['attrs'].get('id', name)}-options"
        context["widget"]["options"] = self.options() if callable(self.options) else self.options
        return context


@lru_cache(maxsize=1)
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _tasks() -> list[str]:
    return sorted(declared_tasks())


class ScheduleForm(forms.ModelForm):
    args = JSONInput(empty=[], help_text='A JSON list, e.g. [42, "eu"].')
    kwargs = JSONInput(empty={}, help_text='A JSON object, e.g. {"days": 7}.')
    run_at = WallClockDateTimeField(
        required=False,
        widget=widgets.AdminSplitDateTime,
        label="Run once at",
        help_text="In the schedule's time zone. The schedule disables itself after this run.",
    )

    class Meta:
        model = Schedule
        fields = (
            "name",
            "task_path",
            "description",
            "enabled",
            "cron",
            "interval",
            "run_at",
            "time_zone",
            "args",
            "kwargs",
            "queue_name",
            "priority",
            "overlap",
            "misfire",
        )
        widgets = {
            "task_path": DatalistInput(_tasks, attrs={"size": 60}),
            "time_zone": DatalistInput(_zones),
            "description": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        run_at = self.instance.run_at
        if run_at is not None and not self.is_bound:
            self.initial["run_at"] = timezone.localtime(run_at, self.instance.zone).replace(tzinfo=None)

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None, "ModelForm.clean() returns cleaned_data"
        run_at = cleaned.get("run_at")
        if isinstance(run_at, datetime) and run_at.tzinfo is None:
            try:
                zone = get_zone(cleaned.get("time_zone") or "")
            except TimingError:
                zone = timezone.get_default_timezone()  # the time zone's own error is reported
            cleaned["run_at"] = localize(run_at, zone)
        return cleaned
