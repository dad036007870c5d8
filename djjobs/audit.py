"""Who did what to which row, and when: Django's admin ``LogEntry``, so that the row's History
page in the admin tells it, and a job's timeline lists it.

One place for every operator action, from the admin or from the command line. An action with
no user (a script, a command run without ``--user``) is not recorded here: ``LogEntry`` needs
one, and a made-up user would be a lie in the History.
"""

from collections.abc import Iterable
from typing import Any

from django.apps import apps

# LogEntry.action_flag values (django.contrib.admin.models), named here so that callers need
# not import the admin's models (the admin may not be installed).
CHANGE = 2
DELETION = 3


def enabled() -> bool:
    return apps.is_installed("django.contrib.admin") and apps.is_installed("django.contrib.contenttypes")


def record(user: Any, obj: Any, message: str, *, flag: int = CHANGE) -> None:
    """Record that ``user`` did ``message`` (plain words: "Retried", "Cancelled") to ``obj``."""
    record_many(user, [obj], message, flag=flag)


def record_many(user: Any, objects: Iterable[Any], message: str, *, flag: int = CHANGE) -> int:
    """Record the same action on each of ``objects`` (one INSERT); how many were recorded.

    Nothing is recorded without an authenticated user or without the admin installed.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not enabled():
        return 0
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    entries = [
        LogEntry(
            user_id=user.pk,
            content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=flag,
            change_message=message,
        )
        for obj in objects
    ]
    LogEntry.objects.bulk_create(entries, batch_size=500)
    return len(entries)


def history(obj: Any, limit: int = 100) -> list[Any]:
    """The recorded actions on ``obj``, oldest first, with their users (at most ``limit``, the
    newest)."""
    if not enabled():
        return []
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    entries = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False), object_id=str(obj.pk)
        )
        .select_related("user")
        .order_by("-action_time")[:limit]
    )
    return list(reversed(entries))
