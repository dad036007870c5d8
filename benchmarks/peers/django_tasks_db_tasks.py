"""The django-tasks-db peer's tasks (Django's built-in django.tasks; peers' virtualenv only)."""

import time

from django.tasks import task


@task()
def noop():
    """Does nothing."""
    return None


@task()
def stamp():
    """Returns time.time() at its start; django-tasks-db stores it as the result (like djjobs' stamp)."""
    return time.time()
