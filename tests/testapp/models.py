from django.db import models


class Execution(models.Model):
    """One row per execution of a test task, so tests can count runs exactly."""

    job_id = models.CharField(max_length=64)
    attempt = models.IntegerField()
    pid = models.IntegerField()
    label = models.CharField(max_length=100, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)


# -- Models of the trigger tests (tests/integration/test_triggers.py). --


class TrackedOrder(models.Model):
    """A model watched by triggers: status changes, amounts, JSON and text."""

    status = models.CharField(max_length=20, default="new")
    total = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    data = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True, default="")


class RushOrder(TrackedOrder):
    """A proxy: triggers on TrackedOrder fire for it too."""

    class Meta:
        proxy = True
