"""Entries for the admin's index and navigation sidebar: the dashboard and the triggers list.

Django's admin lists registered models only, so each screen that is not a model's list gets a
proxy model: no table, no permissions of its own (it is shown to whoever may view jobs), one
admin view (djjobs.admin.screens).
"""

from django.utils.translation import gettext_lazy as _

from .job import Job


class Dashboard(Job):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboard")


class Trigger(Job):
    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = _("trigger")
        verbose_name_plural = _("triggers")
