from django.db import models


class Execution(models.Model):
    """One row per execution of a test task, so tests can count runs exactly."""

    job_id = models.CharField(max_length=64)
    attempt = models.IntegerField()
    pid = models.IntegerField()
    label = models.CharField(max_length=100, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
