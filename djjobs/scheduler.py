"""tick(): fire due schedules exactly once. (Placeholder until schedules land.)"""


def tick() -> int:
    """Fire every due schedule; returns how many jobs were enqueued."""
    return 0
