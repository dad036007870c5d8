from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules

from . import compat, triggers  # noqa: F401  (compat: the backport registers its checks and signals)


class DjjobsConfig(AppConfig):
    name = "djjobs"
    verbose_name = "Job queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # These import the models, which cannot be imported before the app registry is ready.
        from . import checks  # noqa: F401  (registers the project-wide checks)
        from .lifecycle import finish
        from .models import Schedule
        from .schedules.sync import on_post_migrate
        from .schedules.validation import validate_schedule
        from .workflows import advance

        # The lower layers call these features through a hook rather than importing them: a
        # workflow's job advances its run in the transaction that writes it (lifecycle.finish),
        # and Schedule.clean() runs the validation the admin, the command and the sync share.
        finish.advance_runs_with(advance)
        Schedule.validate_with(validate_schedule)
        # A failed job's line on Django's task logger: one line, not a second copy of its traceback.
        finish.shorten_failure_lines()

        autodiscover_modules("tasks")  # every app's tasks.py: schedules, events and endpoints see them
        triggers.connect()  # the receivers of triggers declared so far; later ones connect at once

        # Code-declared schedules (@task(schedule=...), DJJOBS["SCHEDULES"]) are written after migrate.
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="djjobs.schedule_sync")
