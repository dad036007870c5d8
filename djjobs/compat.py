"""The one place that knows whether Tasks come from Django (>= 6.0) or the backport.

Django 6.0 ships ``django.tasks``; on Django 5.2 the ``django-tasks`` package provides the
same API as ``django_tasks`` with a few different names. Everything else in djjobs imports
these names from here.
"""

from django.core.exceptions import ImproperlyConfigured

try:  # Django >= 6.0
    from django.tasks import (
        DEFAULT_TASK_BACKEND_ALIAS,
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        task_backends,
    )
    from django.tasks import task as django_task
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, TaskError
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started

    BUILTIN_TASKS = True
except ImportError:  # Django 5.2 with the django-tasks backport
    try:
        import django_tasks.checks  # noqa: F401  (registers the backend checks)
        from django_tasks import (
            DEFAULT_TASK_BACKEND_ALIAS,
            DEFAULT_TASK_QUEUE_NAME,
            TaskContext,
            TaskResult,
            TaskResultStatus,
            task_backends,
        )
        from django_tasks import task as django_task
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError
        from django_tasks.exceptions import InvalidTaskError as InvalidTask
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImproperlyConfigured(
            "djjobs needs Django >= 6.0 (django.tasks) or, on Django 5.2, the django-tasks "
            "backport: pip install 'djjobs[django52]'"
        ) from exc

    BUILTIN_TASKS = False

__all__ = [
    "BUILTIN_TASKS",
    "BaseTaskBackend",
    "DEFAULT_TASK_BACKEND_ALIAS",
    "DEFAULT_TASK_QUEUE_NAME",
    "InvalidTask",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "django_task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
