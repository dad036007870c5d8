from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class DjjobsConfig(AppConfig):
    name = "djjobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import compat  # noqa: F401  (the backport registers its checks and signals)

        autodiscover_modules("tasks")  # every app's tasks.py: schedules, events and endpoints see them

        from . import checks, triggers  # noqa: F401  (checks registers the project-wide checks)

        triggers.connect()  # the receivers of triggers declared so far; later ones connect at once

        from django.db.models.signals import post_migrate

        from .schedules.sync import on_post_migrate

        # Code-declared schedules (@task(schedule=...), DJJOBS["SCHEDULES"]) are written after migrate.
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="djjobs.schedule_sync")
