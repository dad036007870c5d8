from . import events, jobs, schedules, workers  # noqa: F401  (registers the admins)
