from django.apps import AppConfig


class DjjobsConfig(AppConfig):
    name = "djjobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import compat  # noqa: F401  (the backport registers its checks and signals)
